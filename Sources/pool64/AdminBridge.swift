import Foundation
import NIOCore
import Pool64Admin
import Pool64Core
import Pool64Stats
import ServiceLifecycle

/// Answers the admin server's questions from the proxy core.
struct CoreAdminProvider: AdminProvider {
    let proxy: ProxyCore
    let planner: any DialPlanner

    func stats() async -> StatsSnapshot {
        (try? await proxy.snapshot(resolver: planner.snapshot()).get())
            ?? StatsSnapshot(
                process: .init(
                    version: pool64Version, project: proxy.config.project, uptimeSeconds: 0, listeners: [],
                    adminListeners: [], draining: true, poolMode: proxy.config.poolMode.rawValue),
                pools: [], resolver: planner.snapshot(), totals: .init())
    }

    /// The console views; when the proxy loop cannot answer, the stats fallback with no connections listed.
    func consoleSnapshot() async -> ConsoleSnapshot {
        if let snapshot = try? await proxy.consoleSnapshot(resolver: planner.snapshot()).get() { return snapshot }
        let now = Date()
        return ConsoleSnapshot(
            stats: await stats(), clients: [], servers: [], databases: [], config: [], startedAt: now, takenAt: now)
    }

    func readiness() async -> Readiness {
        (try? await proxy.readiness().get()) ?? Readiness(ready: false, reason: "proxy event loop unavailable")
    }

    /// Alive when the proxy event loop runs a task.
    func isAlive() async -> Bool {
        (try? await proxy.loop.submit { true }.get()) ?? false
    }

    /// The console's PAUSE / RESUME / RECONNECT, with its errors carried over as they are.
    func control(_ action: AdminControl, database: String?) async throws {
        let done: EventLoopFuture<Void>
        switch action {
        case .pause: done = proxy.pause(database: database)
        case .resume: done = proxy.resume(database: database)
        case .reconnect: done = proxy.reconnect(database: database)
        }
        do {
            try await done.get()
        } catch let error as ConsoleControlError {
            throw AdminControlError(sqlstate: error.sqlstate, message: error.message)
        }
    }
}

extension AdminServer: Service {}
