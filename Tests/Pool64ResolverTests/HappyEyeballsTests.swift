import Testing
@testable import Pool64Resolver

@Suite("Happy Eyeballs state machine (RFC 8305)")
struct HappyEyeballsTests {
    typealias Machine = HappyEyeballsStateMachine<NanosecondInstant, String>
    static func at(_ milliseconds: UInt64) -> NanosecondInstant { NanosecondInstant(nanoseconds: milliseconds * 1_000_000) }

    @Test func secondAttemptStartsAtExactly250Milliseconds() {
        var machine = Machine(candidateCount: 3)
        #expect(machine.start(now: Self.at(1_000)) == [.startAttempt(index: 0), .scheduleTimer(deadline: Self.at(1_250))])
        #expect(machine.timerFired(now: Self.at(1_249)) == [])  // early fire starts nothing
        #expect(machine.timerFired(now: Self.at(1_250)) == [.startAttempt(index: 1), .scheduleTimer(deadline: Self.at(1_500))])
        // The last candidate arms no timer.
        #expect(machine.timerFired(now: Self.at(1_500)) == [.startAttempt(index: 2)])
        #expect(machine.timerFired(now: Self.at(1_750)) == [])
    }

    @Test func failureStartsTheNextAttemptAtOnce() {
        var machine = Machine(candidateCount: 3)
        _ = machine.start(now: Self.at(0))
        #expect(machine.attemptFailed(index: 0, error: "refused", now: Self.at(20))
            == [.startAttempt(index: 1), .scheduleTimer(deadline: Self.at(270))])
        // The stale 250 ms timer does nothing now that the deadline moved.
        #expect(machine.timerFired(now: Self.at(250)) == [])
        #expect(machine.attemptFailed(index: 1, error: "unreachable", now: Self.at(40))
            == [.startAttempt(index: 2), .cancelTimer])
    }

    @Test func successCancelsTheRest() {
        var machine = Machine(candidateCount: 4)
        _ = machine.start(now: Self.at(0))
        _ = machine.timerFired(now: Self.at(250))
        _ = machine.timerFired(now: Self.at(500))
        #expect(machine.attemptSucceeded(index: 1) == [.cancelAttempts([0, 2]), .cancelTimer, .succeeded(index: 1)])
        #expect(machine.winner == 1)
        #expect(machine.isFinished)
        #expect(machine.timerFired(now: Self.at(750)) == [])
        #expect(machine.attemptSucceeded(index: 0) == [.cancelAttempts([0])])  // lost the race late
        #expect(machine.attemptFailed(index: 2, error: "cancelled", now: Self.at(760)) == [])
    }

    @Test func singleCandidateSucceedsWithoutTimers() {
        var machine = Machine(candidateCount: 1)
        #expect(machine.start(now: Self.at(0)) == [.startAttempt(index: 0)])
        #expect(machine.attemptSucceeded(index: 0) == [.succeeded(index: 0)])
    }

    @Test func allFailuresAreReportedInIndexOrder() {
        var machine = Machine(candidateCount: 2)
        _ = machine.start(now: Self.at(0))
        _ = machine.timerFired(now: Self.at(250))
        #expect(machine.attemptFailed(index: 1, error: "b", now: Self.at(300)) == [])
        #expect(machine.attemptFailed(index: 0, error: "a", now: Self.at(310))
            == [.failed([.init(index: 0, error: "a"), .init(index: 1, error: "b")])])
        #expect(machine.isFinished)
        #expect(machine.winner == nil)
    }

    @Test func emptyListFailsImmediately() {
        var machine = Machine(candidateCount: 0)
        #expect(machine.start(now: Self.at(0)) == [.failed([])])
    }

    @Test func unknownIndicesAndRepeatedStartsAreIgnored() {
        var machine = Machine(candidateCount: 2, attemptDelay: .milliseconds(100))
        #expect(machine.attemptSucceeded(index: 0) == [])
        _ = machine.start(now: Self.at(0))
        #expect(machine.start(now: Self.at(1)) == [])
        #expect(machine.attemptSucceeded(index: 1) == [])  // not started yet
        #expect(machine.attemptFailed(index: 7, error: "x", now: Self.at(5)) == [])
        #expect(machine.timerFired(now: Self.at(100)) == [.startAttempt(index: 1)])
    }

    @Test func worksWithContinuousClockInstants() {
        var machine = HappyEyeballsStateMachine<ContinuousClock.Instant, String>(candidateCount: 2)
        let now = ContinuousClock.now
        #expect(machine.start(now: now) == [.startAttempt(index: 0), .scheduleTimer(deadline: now + .milliseconds(250))])
    }

    @Test func nanosecondInstantArithmetic() {
        let start = NanosecondInstant(nanoseconds: 5_000_000_000)
        #expect(start.advanced(by: .milliseconds(250)).nanoseconds == 5_250_000_000)
        #expect(start.advanced(by: .seconds(-6)).nanoseconds == 0)
        #expect(start.duration(to: start.advanced(by: .seconds(2))) == .seconds(2))
    }
}
