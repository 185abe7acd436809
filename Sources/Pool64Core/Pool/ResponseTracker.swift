import NIOCore
import Pool64Wire

/// Follows one server connection's response stream against the requests sent on it (see `Expectation`).
/// Pure value type: the relay feeds it message types and applies its decisions, so it is tested without sockets.
struct ResponseTracker {
    /// What to do with one server message.
    enum Decision: Equatable {
        case forward
        case drop
    }

    private(set) var expected = ExpectationQueue()
    /// Fake expectations in `expected` (most of the time none: `emitReadyFakes` then returns at once).
    private var fakes = 0
    /// Status of the last ReadyForQuery.
    private(set) var transactionStatus: TransactionStatus = .idle

    /// True when no response is outstanding and the server is outside a transaction block.
    // `mutating get`: the tracker lives in a class; a plain getter would copy it (retaining and releasing its queue)
    // on every message the relay looks at.
    var isIdle: Bool { mutating get { expected.isEmpty && transactionStatus == .idle } }

    /// True when fake responses are queued (they must go out right after the response they follow).
    var hasFakes: Bool { mutating get { fakes > 0 } }

    /// True while the head request is a query pool64 sent for itself.
    var isSwallowing: Bool { mutating get { expected.first == .query(swallow: true) } }

    /// Records a request; a fake response with nothing outstanding before it is written to `out` at once.
    mutating func expect(_ e: Expectation, out: inout ByteBuffer) {
        expected.append(e)
        if e.isFake {
            fakes += 1
            emitReadyFakes(out: &out)
        }
    }

    /// Writes fake responses that have reached the head of the queue.
    mutating func emitReadyFakes(out: inout ByteBuffer) {
        guard fakes > 0 else { return }
        while let head = expected.first, head.isFake {
            expected.removeFirst()
            fakes -= 1
            out.writeEmptyMessage(head == .fakeParseComplete ? BackendType.parseComplete : BackendType.closeComplete)
        }
    }

    private mutating func dropHead() {
        if expected.removeFirst().isFake { fakes -= 1 }
    }

    /// Decides the fate of a server message of `type`; for ReadyForQuery pass its status byte.
    mutating func receive(_ type: UInt8, readyStatus: UInt8 = 0) -> Decision {
        let swallowing = isSwallowing
        switch type {
        case BackendType.readyForQuery:
            transactionStatus = TransactionStatus(rawValue: readyStatus) ?? .failed
            // Requests the server skipped after an error never get responses; a ReadyForQuery ends them.
            while let h = expected.first, !h.isSyncPoint { dropHead() }
            if !expected.isEmpty { dropHead() }
            return swallowing ? .drop : .forward
        case BackendType.errorResponse:
            if swallowing { return .drop }
            // After an error in extended protocol the server discards messages until Sync (PostgreSQL
            // "Extended Query"): drop expectations up to the next sync point, fakes included.
            while let h = expected.first, !h.isSyncPoint { dropHead() }
            return .forward
        case BackendType.parseComplete:
            if case .parse(let swallow)? = expected.first {
                expected.removeFirst()
                return swallow ? .drop : .forward
            }
            return swallowing ? .drop : .forward
        case BackendType.bindComplete:
            if expected.first == .bind { expected.removeFirst() }
        case BackendType.closeComplete:
            if case .close(let swallow)? = expected.first {
                expected.removeFirst()
                return swallow ? .drop : .forward
            }
        case BackendType.rowDescription, BackendType.noData:
            if expected.first == .describe { expected.removeFirst() }
        case BackendType.commandComplete, BackendType.emptyQueryResponse, BackendType.portalSuspended:
            if expected.first == .execute { expected.removeFirst() }
        default:
            break
        }
        return swallowing ? .drop : .forward
    }

    /// Forgets everything (the connection was reset or is being closed).
    mutating func reset() {
        expected.removeAll()
        fakes = 0
        transactionStatus = .idle
    }
}

/// FIFO of expectations: a power-of-two ring over a plain array. NIO's `CircularBuffer` did the same job at several
/// times the instructions per operation (its index arithmetic), and the relay does a few per message.
struct ExpectationQueue {
    private var items = [Expectation](repeating: .sync, count: 16)
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: Expectation? { count == 0 ? nil : items[head] }

    mutating func append(_ e: Expectation) {
        if count == items.count { grow() }
        items[(head + count) & (items.count - 1)] = e
        count += 1
    }

    @discardableResult
    mutating func removeFirst() -> Expectation {
        precondition(count > 0, "removeFirst on an empty ExpectationQueue")
        let e = items[head]
        head = (head + 1) & (items.count - 1)
        count -= 1
        return e
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }

    private mutating func grow() {
        var bigger = [Expectation](repeating: .sync, count: items.count * 2)
        for i in 0..<count { bigger[i] = items[(head + i) & (items.count - 1)] }
        items = bigger
        head = 0
    }
}
