import Foundation
import Logging
import NIOCore
import Pool64Stats
import Pool64Wire

extension ProxyCore {
    /// Takes an accepted client socket (relay loop).
    public func acceptClient(fd: Int32, peer: PeerAddress) {
        clientCount += 1
        counters.clientsAccepted &+= 1
        let conn = SocketConnection(fd: fd, loop: loop, exclusive: true)
        let session = ClientSession(proxy: self, id: newClientID(), peer: peer)
        session.transport = conn
        conn.delegate = session
        guard conn.start() else {
            conn.delegate = nil
            session.transportClosed("cannot watch socket")
            return
        }
        session.connected()
        // The listener defers accepts until the client's first bytes arrive (TCP_DEFER_ACCEPT): read them now, in
        // this turn, rather than after another epoll_wait. A client with nothing sent yet costs one EAGAIN.
        conn.readable()
    }

    /// Records the bound listener addresses for stats.
    public func setListeners(_ proxy: [String], admin: [String]) {
        loop.execute {
            self.listeners = proxy
            self.adminListeners = admin
        }
    }

    /// A consistent copy of every counter, taken on the proxy loop.
    public func snapshot(resolver: ResolverSnapshot) -> EventLoopFuture<StatsSnapshot> {
        loop.submit {
            let now = NIODeadline.now()
            var totals = self.counters
            totals.clientsCurrent = self.clientCount
            let pools = self.pools.values.map { $0.snapshot(now: now) }.sorted {
                ($0.database, $0.user) < ($1.database, $1.user)
            }
            return StatsSnapshot(
                process: ProcessInfoSnapshot(
                    version: pool64Version, project: self.config.project,
                    uptimeSeconds: Date().timeIntervalSince(self.startedAt), listeners: self.listeners,
                    adminListeners: self.adminListeners, draining: self.draining,
                    poolMode: self.config.poolMode.rawValue),
                pools: pools, resolver: resolver, totals: totals)
        }
    }

    /// Ready when not draining and a server connection of the default pool works now: one in the pool, a recent
    /// successful dial, or a fresh dial within `timeout`.
    public func readiness(timeout: TimeAmount = .seconds(3)) -> EventLoopFuture<Readiness> {
        loop.flatSubmit {
            if self.draining { return self.loop.makeSucceededFuture(Readiness(ready: false, reason: "draining")) }
            if self.retiring {
                return self.loop.makeSucceededFuture(Readiness(ready: false, reason: "handed over to a new process"))
            }
            let pool = self.pool(database: self.connectionString.database, user: self.connectionString.user)
            if pool.idle.contains(where: { $0.state == .idle && $0.transport?.isOpen == true })
                || pool.all.values.contains(where: { $0.state == .active })
            {
                return self.loop.makeSucceededFuture(Readiness(ready: true))
            }
            return self.probe(pool: pool, timeout: timeout)
        }
    }

    private func probe(pool: Pool, timeout: TimeAmount) -> EventLoopFuture<Readiness> {
        let promise = loop.makePromise(of: Readiness.self)
        let probe = ReadinessProbe(promise: promise)
        pool.probes.append(probe)
        if pool.dialing == 0 { pool.launchProbeDial() }
        loop.scheduleTask(in: timeout) {
            probe.complete(Readiness(ready: false, reason: pool.lastDialError?.message ?? "no server connection within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        return promise.futureResult
    }
}

/// A pending `/readyz` check completed by the next dial result (or its timeout).
final class ReadinessProbe: @unchecked Sendable {
    private var promise: EventLoopPromise<Readiness>?
    init(promise: EventLoopPromise<Readiness>) { self.promise = promise }
    func complete(_ r: Readiness) {
        promise?.succeed(r)
        promise = nil
    }
}

/// pool64's version, reported in stats and `--version`.
public let pool64Version = "0.1.0"

extension ProxyCore {
    /// Server connections leased or resetting (the drain waits for these to finish).
    public var busyServers: Int {
        pools.values.reduce(0) { n, p in n + p.allServers.filter { $0.state == .active || $0.state == .resetting }.count }
    }
}
