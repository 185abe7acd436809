import Foundation
import Logging
import NIOCore
import Pool64Console
import Pool64Core
import Pool64Stats

/// Connects the admin console engine (Pool64Console) to the running proxy: the core hands it each console query,
/// and it reads snapshots and runs maintenance commands on the proxy, the reloader and the stop signal.
struct ConsoleBridge: AdminConsole, ConsoleBackend {
    let proxy: ProxyCore
    let planner: any DialPlanner
    let reloader: ReloadService
    let stop: StopSignal
    let logger: Logger

    private var engine: ConsoleEngine {
        ConsoleEngine(backend: self, version: "pool64 \(pool64Version) (PgBouncer 1.18 console)", logger: logger)
    }

    func execute(
        query: String, user: String, client: String, isAdmin: Bool,
        reply: @escaping @Sendable (ByteBuffer) -> Void
    ) {
        let engine = self.engine
        Task {
            reply(await engine.execute(query, session: ConsoleSessionInfo(user: user, client: client, isAdmin: isAdmin)))
        }
    }

    /// The same snapshot (and fallback while the loop is gone) as the admin server's paged views.
    func snapshot() async -> ConsoleSnapshot {
        await CoreAdminProvider(proxy: proxy, planner: planner).consoleSnapshot()
    }

    func control(_ command: ControlCommand, by session: ConsoleSessionInfo) async -> ControlOutcome {
        do {
            switch command {
            case .pause(let db): try await proxy.pause(database: db).get()
            case .resume(let db): try await proxy.resume(database: db).get()
            case .reconnect(let db): try await proxy.reconnect(database: db).get()
            case .waitClose(let db): try await proxy.waitClose(database: db).get()
            case .kill(let db): try await proxy.kill(database: db).get()
            case .killClient(let id): try await proxy.killClient(id: id).get()
            case .disable(let db): try await proxy.setEnabled(false, database: db).get()
            case .enable(let db): try await proxy.setEnabled(true, database: db).get()
            case .reload:
                guard reloader.reload() else {
                    return .failed(ConsoleError("F0000", "configuration reload rejected; nothing changed (see the log)"))
                }
            case .set(let key, let value):
                return set(key, value)
            case .shutdown(let mode):
                switch mode {
                case .immediate: stop.fire(.immediate)
                case .waitForServers: stop.fire(.signal)
                case .waitForClients: stop.fire(.waitForClients)
                }
            }
            return .done
        } catch let e as ConsoleControlError {
            return .failed(ConsoleError(e.sqlstate, e.message))
        } catch {
            return .failed(ConsoleError("XX000", "\(error)"))
        }
    }

    /// SET key = value: reloadable settings only, applied like a reload (a later SIGHUP or RELOAD re-reads the
    /// configuration sources and replaces it, as in PgBouncer).
    private func set(_ rawKey: String, _ value: String) -> ControlOutcome {
        let key = ConfigurationLoader.normalize(rawKey)
        guard Configuration.keys.contains(where: { $0.key == key }) else {
            return .failed(ConsoleError("08P01", "unknown config parameter: \(rawKey)"))
        }
        guard Configuration.reloadableKeys.contains(key) else {
            return .failed(ConsoleError("08P01", "\(key) cannot be changed at run time (restart pool64)"))
        }
        do {
            let current = (try? proxy.loop.submit { proxy.config }.wait()) ?? Configuration()
            var settings = current.settings.filter { !$0.value.isEmpty }
            settings[key] = value
            try reloader.apply(try Configuration(settings: settings))
            return .done
        } catch let e as ConfigurationError {
            return .failed(ConsoleError("22023", e.description))
        } catch {
            return .failed(ConsoleError("22023", "\(error)"))
        }
    }
}
