import Logging
import NIOConcurrencyHelpers
import Testing

@testable import Pool64Systemd

/// The heartbeat pings only when its probe answers, and keeps the status line current.
@Suite struct HeartbeatServiceTests {
    let logger: Logger = {
        var l = Logger(label: "test")
        l.logLevel = .error  // the wedged-loop test warns on purpose, every beat
        return l
    }()

    func notifier(_ receiver: DatagramReceiver, watchdog: Bool) -> ServiceNotifier {
        var vars = ["NOTIFY_SOCKET": receiver.notifySocket]
        if watchdog { vars["WATCHDOG_USEC"] = "100000" }
        return ServiceNotifier(environment: NotifyEnvironment(environment: vars, pid: 1), logger: logger, pid: 1)
    }

    /// Runs `heartbeat` for `seconds`, then cancels it.
    func run(_ heartbeat: HeartbeatService, for seconds: Double) async throws {
        let task = Task { try await heartbeat.run() }
        try await Task.sleep(for: .milliseconds(Int(seconds * 1_000)))
        task.cancel()
        try await task.value
    }

    @Test func pingsWhileTheProbeAnswersAndSendsChangedStatusOnly() async throws {
        let receiver = try DatagramReceiver(abstract: true)
        let n = notifier(receiver, watchdog: true)
        let heartbeat = HeartbeatService(
            notifier: n, interval: .milliseconds(50), probeTimeout: .milliseconds(50), logger: logger,
            probe: { "serving 0 clients" })
        try await run(heartbeat, for: 0.3)
        var messages: [String] = []
        while let m = receiver.receive(timeout: 0.05) { messages.append(m) }
        #expect(messages.count >= 3)
        #expect(messages.first == "WATCHDOG=1\nSTATUS=serving 0 clients")
        #expect(messages.dropFirst().allSatisfy { $0 == "WATCHDOG=1" })
    }

    @Test func aWedgedLoopGetsNoPings() async throws {
        let receiver = try DatagramReceiver(abstract: true)
        let n = notifier(receiver, watchdog: true)
        let release = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        let probes = NIOLockedValueBox(0)
        let heartbeat = HeartbeatService(
            notifier: n, interval: .milliseconds(30), probeTimeout: .milliseconds(30), logger: logger,
            probe: {
                probes.withLockedValue { $0 += 1 }
                // Never answers until released: a relay loop stuck in a long turn.
                await withCheckedContinuation { c in release.withLockedValue { $0 = c } }
                return "late"
            })
        try await run(heartbeat, for: 0.3)
        #expect(receiver.receive(timeout: 0.05) == nil)
        // One stuck probe, not one per beat.
        #expect(probes.withLockedValue { $0 } == 1)
        release.withLockedValue { $0?.resume() }
    }

    @Test func withoutWatchdogOnlyStatusChangesAreSent() async throws {
        let receiver = try DatagramReceiver(abstract: false)
        let n = notifier(receiver, watchdog: false)
        let count = NIOLockedValueBox(0)
        let heartbeat = HeartbeatService(
            notifier: n, interval: .milliseconds(30), probeTimeout: .milliseconds(30), logger: logger,
            probe: {
                let c = count.withLockedValue { $0 += 1; return $0 }
                return c < 3 ? "serving 1 clients" : "serving 2 clients"
            })
        try await run(heartbeat, for: 0.3)
        #expect(receiver.receive() == "STATUS=serving 1 clients")
        #expect(receiver.receive() == "STATUS=serving 2 clients")
        #expect(receiver.receive(timeout: 0.05) == nil)
    }

    @Test func aThrowingProbeStillCountsAsAlive() async throws {
        struct Oops: Error {}
        let receiver = try DatagramReceiver(abstract: true)
        let heartbeat = HeartbeatService(
            notifier: notifier(receiver, watchdog: true), interval: .milliseconds(50), probeTimeout: .milliseconds(50),
            logger: logger, probe: { throw Oops() })
        try await run(heartbeat, for: 0.12)
        #expect(receiver.receive() == "WATCHDOG=1")
    }

    @Test func disabledNotifierHasNoHeartbeat() {
        #expect(HeartbeatService(notifier: .disabled(logger: logger), logger: logger, probe: { "" }) == nil)
    }

    @Test func probeTimeoutAndPending() async {
        let probe = Probe {
            try await Task.sleep(for: .seconds(1))
            return "slow"
        }
        #expect(await probe.answer(within: .milliseconds(20)) == .timedOut)
        #expect(await probe.answer(within: .milliseconds(20)) == .stillPending)
        #expect(await Probe({ "fast" }).answer(within: .seconds(5)) == .answered("fast"))
    }
}
