import Logging
import Pool64Core
import Pool64Resolver
import Pool64Systemd

extension Runner {
    /// The heartbeat for systemd's watchdog and `systemctl status`, or nil outside a notify service. Its probe takes a
    /// stats snapshot, which runs on the relay loop: a ping proves that loop still turns, and the status line comes
    /// from the same hop.
    static func heartbeat(
        notifier: ServiceNotifier, proxy: ProxyCore, planner: ResolverDialPlanner, logger: Logger
    ) -> HeartbeatService? {
        HeartbeatService(notifier: notifier, logger: logger) {
            let snapshot = try await proxy.snapshot(resolver: planner.snapshot()).get()
            let clients = snapshot.totals.clientsCurrent
            return snapshot.process.draining ? "draining, \(clients) clients left" : "serving \(clients) clients"
        }
    }
}
