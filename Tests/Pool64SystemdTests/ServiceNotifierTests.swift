#if canImport(Glibc)
import Glibc
#endif
import Logging
import Testing

@testable import Pool64Systemd

/// The notifier against real AF_UNIX datagram sockets, at a path and in the abstract namespace.
@Suite struct ServiceNotifierTests {
    let logger = Logger(label: "test")

    func notifier(for receiver: DatagramReceiver, extra: [String: String] = [:]) -> ServiceNotifier {
        let vars = ["NOTIFY_SOCKET": receiver.notifySocket].merging(extra) { $1 }
        let env = NotifyEnvironment(environment: vars, pid: 77)
        return ServiceNotifier(environment: env, logger: logger, pid: 77, monotonicMicroseconds: { 5_000_000 })
    }

    @Test(arguments: [false, true])
    func sendsEachNotification(abstract: Bool) throws {
        let receiver = try DatagramReceiver(abstract: abstract)
        let n = notifier(for: receiver)
        #expect(n.isEnabled)
        n.ready(status: "listening")
        #expect(receiver.receive() == "READY=1\nMAINPID=77\nSTATUS=listening")
        n.reloading(status: "reloading")
        #expect(receiver.receive() == "RELOADING=1\nMONOTONIC_USEC=5000000\nSTATUS=reloading")
        n.ready()
        #expect(receiver.receive() == "READY=1\nMAINPID=77")
        n.status("serving 2 clients")
        #expect(receiver.receive() == "STATUS=serving 2 clients")
        n.watchdog()
        #expect(receiver.receive() == "WATCHDOG=1")
        n.stopping(status: "draining")
        #expect(receiver.receive() == "STOPPING=1\nSTATUS=draining")
        #expect(receiver.receive(timeout: 0.05) == nil)
    }

    @Test func withoutNotifySocketNothingIsSent() {
        let n = ServiceNotifier(environment: NotifyEnvironment(environment: [:], pid: 1), logger: logger)
        #expect(!n.isEnabled)
        #expect(n.watchdogInterval == nil)
        #expect(n.send(.ready(mainPID: 1, status: nil)) == false)
        #expect(ServiceNotifier.disabled(logger: logger).isEnabled == false)
    }

    @Test func aVanishedManagerIsNotAnError() {
        // Nobody listens at this path: sendto fails (ENOENT) and the notifier reports false, nothing more.
        let env = NotifyEnvironment(environment: ["NOTIFY_SOCKET": "/nonexistent/pool64/notify"], pid: 1)
        let n = ServiceNotifier(environment: env, logger: logger)
        #expect(n.isEnabled)
        #expect(n.send(.watchdog(status: nil)) == false)
        let abstract = ServiceNotifier(
            environment: NotifyEnvironment(environment: ["NOTIFY_SOCKET": "@pool64-nobody-listens-here"], pid: 1),
            logger: logger)
        #expect(abstract.send(.stopping(status: nil)) == false)
    }

    @Test func watchdogIntervalFollowsTheEnvironment() throws {
        let receiver = try DatagramReceiver(abstract: true)
        #expect(notifier(for: receiver, extra: ["WATCHDOG_USEC": "2000000"]).watchdogInterval == .seconds(1))
        let other = notifier(for: receiver, extra: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "78"])
        #expect(other.watchdogInterval == nil)
        #expect(notifier(for: receiver).watchdogInterval == nil)
    }

    @Test func monotonicClockIsCLOCK_MONOTONIC() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let before = UInt64(ts.tv_sec) * 1_000_000
        let now = ServiceNotifier.monotonicNow()
        #expect(now >= before)
        #expect(now < before + 5_000_000)
    }
}
