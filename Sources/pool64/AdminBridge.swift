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

    func readiness() async -> Readiness {
        (try? await proxy.readiness().get()) ?? Readiness(ready: false, reason: "proxy event loop unavailable")
    }

    /// Alive when the proxy event loop runs a task.
    func isAlive() async -> Bool {
        (try? await proxy.loop.submit { true }.get()) ?? false
    }
}

extension AdminServer: Service {}
