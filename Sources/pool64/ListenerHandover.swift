import Foundation
import Logging
import Pool64Core
import Pool64Handover
import Pool64Resolver
import Pool64Wire
import ServiceLifecycle
import UnixSignals

/// Why a pool64 process stops taking new clients.
enum StopReason: Sendable {
    /// SIGTERM: drain and exit.
    case signal
    /// A successor took the listening sockets: serve the clients still connected, then drain and exit.
    case handedOver
    /// Console `SHUTDOWN WAIT_FOR_CLIENTS`: stop accepting, wait for every client to leave, then exit.
    case waitForClients
    /// Console `SHUTDOWN`: end every connection now, without waiting for running transactions.
    case immediate
}

/// The first stop reason wins; later ones are ignored. Fired from signal handlers and the hand-over thread.
final class StopSignal: Sendable {
    private let stream: AsyncStream<StopReason>
    private let continuation: AsyncStream<StopReason>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: StopReason.self, bufferingPolicy: .bufferingOldest(1))
    }

    func fire(_ reason: StopReason) { continuation.yield(reason) }

    /// Waits for the first reason (`.signal` if the task is cancelled first).
    func wait() async -> StopReason {
        for await reason in stream { return reason }
        return .signal
    }
}

/// Zero-downtime replacement on one host. With `handover-socket` set, a starting pool64 first asks the process
/// listening on that Unix socket for its listening sockets (SCM_RIGHTS); the old process stops accepting, serves the
/// clients it has until they leave (at most `handover-timeout`), then drains as on SIGTERM. The kernel queue behind
/// each listening socket is never closed, so no connection is refused during the overlap. CancelRequests carry the
/// issuing process's tag (`CancelKey`) and are forwarded to the old process over the same Unix connection.
/// docs/OPERATIONS.md explains why this over SO_REUSEPORT.
struct ListenerHandover {
    let proxy: ProxyCore
    let logger: Logger
    let path: String?
    private(set) var server: HandoverServer?

    init(proxy: ProxyCore, logger: Logger) {
        self.proxy = proxy
        self.logger = logger
        self.path = proxy.config.handoverSocket
    }

    /// Takes the listeners from a running predecessor when there is one, binds them otherwise, and from then on
    /// offers them to a successor. `stop` fires `.handedOver` when a successor takes them.
    mutating func openListeners(_ addresses: [ListenAddress], stop: StopSignal) throws -> [BoundListener] {
        let proxy = self.proxy
        let logger = self.logger
        let predecessor = try path.flatMap { try Predecessor.request(path: $0, logger: logger) }
        let tag = predecessor.map { CancelKey.successor(of: $0.offer.cancelKeyTag) }
            ?? UInt8.random(in: 0...CancelKey.maximumTag)
        let forward = predecessor.map { p in { @Sendable (pid: Int32, key: Int32) in p.forwardCancel(processID: pid, secretKey: key) } }
        try proxy.loop.submit {
            proxy.cancelKeyTag = tag
            proxy.forwardCancel = forward
        }.wait()
        let listeners: [BoundListener]
        do {
            listeners = try Listener.bind(
                addresses, inherited: predecessor?.listeners ?? [:], loop: proxy.loop, logger: logger
            ) { fd, peer in
                proxy.acceptClient(fd: fd, peer: peer)
            }
        } catch {
            predecessor?.refuse()
            throw error
        }
        if let predecessor {
            try predecessor.accept()
            logger.notice(
                "took the listeners over from the running pool64; it serves its clients until they leave",
                metadata: [
                    "predecessor_pid": "\(predecessor.offer.pid)",
                    "inherited": "\(predecessor.listeners.keys.sorted())",
                ])
        }
        guard let path else { return listeners }
        let server = HandoverServer(
            path: path,
            handlers: .init(
                offer: {
                    (
                        HandoverOffer(
                            pid: getpid(), cancelKeyTag: tag, listeners: listeners.map(\.requested.description)),
                        listeners.map(\.descriptor)
                    )
                },
                handedOver: { successor in
                    logger.notice(
                        "listeners handed over to a new pool64; no longer accepting",
                        metadata: ["successor_pid": "\(successor.map(String.init) ?? "unknown")"])
                    for l in listeners { l.close() }
                    proxy.loop.execute { proxy.retire() }
                    stop.fire(.handedOver)
                },
                cancel: { pid, key in proxy.loop.execute { proxy.cancel(processID: pid, secretKey: key) } }),
            logger: logger)
        try server.start()
        self.server = server
        return listeners
    }

    /// After a hand-over (or SHUTDOWN WAIT_FOR_CLIENTS): waits until the clients still connected here have left,
    /// `timeout` has passed, or SIGTERM asks to drain now.
    func serveRemainingClients(timeout: Double) async {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !Task.isCancelled, !Task.isShuttingDownGracefully {
            let clients = (try? await proxy.loop.submit { [proxy] in proxy.connectedClients }.get()) ?? 0
            if clients == 0 { return }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        logger.info("clients still connected after the hand-over are drained now")
    }
}

/// SIGUSR2: start the binary now at this process's path (a package upgrade replaced it) with the same arguments and
/// environment; the new process takes the listeners over through `handover-socket` and this one retires. nginx's
/// binary upgrade, on pool64's hand-over. Under systemd the child announces itself with `MAINPID=` and `READY=1`
/// (the unit needs `NotifyAccess=all`), so the unit follows it: `systemctl kill -s USR2 --kill-whom=main
/// pool64@alpha` upgrades without dropping a connection.
struct UpgradeService: Service, CustomStringConvertible {
    var description: String { "UpgradeService" }
    let signals: UnixSignalsSequence
    let logger: Logger

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            spawnSuccessor()
        }
    }

    /// The running executable's path: /proc/self/exe names the file it was started from, with " (deleted)" added
    /// once an upgrade has replaced that file; the new binary is at the same path.
    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        var path = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        return path
    }

    func spawnSuccessor() {
        guard let path = Self.executablePath() else {
            logger.error("SIGUSR2: cannot find the pool64 executable's path; nothing started")
            return
        }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: path)
        child.arguments = Array(CommandLine.arguments.dropFirst())
        do {
            try child.run()
            logger.notice(
                "SIGUSR2: started a new pool64 to take the listeners over",
                metadata: ["successor_pid": "\(child.processIdentifier)", "executable": "\(path)"])
        } catch {
            logger.error("SIGUSR2: could not start the new pool64", metadata: ["error": "\(error)"])
        }
    }
}
