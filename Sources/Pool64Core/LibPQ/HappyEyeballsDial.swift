import NIOCore
import Pool64Resolver

/// Races a plan's attempts through libpq (RFC 8305): the first starts at once, the next after the attempt delay
/// or as soon as one fails; the first authenticated connection wins and the rest are abandoned. Confined to the
/// proxy event loop; libpq work happens on the dialer thread.
/// `@unchecked Sendable`: confined to the proxy event loop; dial callbacks hop there first.
final class HappyEyeballsDial: @unchecked Sendable {
    typealias Machine = HappyEyeballsStateMachine<NanosecondInstant, DialError>

    private let proxy: ProxyCore
    private let plan: DialPlan
    private let base: [String: String]
    private let timeout: Double
    /// Called once with the winner or the combined failure.
    var completion: (Result<(LibPQConnection, DialPlan.Attempt), DialError>) -> Void = { _ in }
    private var machine: Machine
    private var dialIDs: [Int: Int] = [:]
    private var timer: Scheduled<Void>?
    private var done = false
    /// The attempt whose TCP connection came up first.
    private var connectedWinner: Int?
    /// Addresses of the attempts started so far, in order, for `/stats`.
    private(set) var tried: [String] = []

    init(proxy: ProxyCore, plan: DialPlan, base: [String: String], timeout: Double) {
        self.proxy = proxy
        self.plan = plan
        self.base = base
        self.timeout = timeout
        machine = Machine(
            candidateCount: plan.attempts.count,
            attemptDelay: .nanoseconds(Int64(proxy.planner.attemptDelay * 1e9)))
    }

    private static var now: NanosecondInstant { NanosecondInstant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    func start() { run(machine.start(now: Self.now)) }

    private func run(_ actions: [Machine.Action]) {
        for action in actions {
            switch action {
            case .startAttempt(let i):
                let attempt = plan.attempts[i]
                tried.append(attempt.address)
                proxy.planner.record(route: attempt.route, failed: false, names: plan.names)
                var params = base
                for (k, v) in attempt.overrides { params[k] = v }
                let loop = proxy.loop
                dialIDs[i] = proxy.dialer.dial(
                    parameters: params.map { ($0.key, $0.value) }, timeout: timeout,
                    onConnected: { [self] in loop.execute { self.attemptConnected(i) } }
                ) { [self] result in
                    loop.execute { self.attemptFinished(i, result) }
                }
            case .scheduleTimer(let deadline):
                timer?.cancel()
                let delay = Int64(deadline.nanoseconds) - Int64(Self.now.nanoseconds)
                timer = proxy.loop.scheduleTask(in: .nanoseconds(max(0, delay))) { [self] in
                    run(machine.timerFired(now: Self.now))
                }
            case .cancelTimer:
                timer?.cancel()
                timer = nil
            case .cancelAttempts(let list):
                for i in list {
                    if let id = dialIDs.removeValue(forKey: i) { proxy.dialer.cancel(id) }
                }
            case .succeeded:
                break
            case .failed(let failures):
                finish(.failure(DialError(message: failures.map { "\(plan.attempts[$0.index].address): \($0.error)" }.joined(separator: "; "))))
            }
        }
    }

    /// TCP is up for attempt `i`: it wins the race (RFC 8305 §5); the others are abandoned and its login finishes.
    private func attemptConnected(_ i: Int) {
        guard !done, connectedWinner == nil else { return }
        connectedWinner = i
        run(machine.attemptSucceeded(index: i))
    }

    private func attemptFinished(_ i: Int, _ result: Result<LibPQConnection, DialError>) {
        dialIDs[i] = nil
        let attempt = plan.attempts[i]
        if case .failure = result { proxy.planner.record(route: attempt.route, failed: true, names: plan.names) }
        switch result {
        case .success(let pq):
            if done || (connectedWinner != nil && connectedWinner != i) {
                pq.finish()  // lost the race after the winner was chosen
                return
            }
            let actions = connectedWinner == nil ? machine.attemptSucceeded(index: i) : []
            finish(.success((pq, attempt)))
            run(actions)
        case .failure(let e):
            if done { return }
            if connectedWinner == i {
                // The connection came up but the login failed: the server said no; other addresses of the same
                // host would say the same.
                finish(.failure(DialError(message: "\(attempt.address): \(e)")))
                return
            }
            run(machine.attemptFailed(index: i, error: e, now: Self.now))
        }
    }

    private func finish(_ r: Result<(LibPQConnection, DialPlan.Attempt), DialError>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        completion(r)
    }
}
