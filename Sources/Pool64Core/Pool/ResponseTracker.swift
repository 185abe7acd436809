import NIOCore
import Pool64Wire

/// Follows one server connection's response stream against the requests sent on it (see `Expectation`).
/// Pure value type: the relay feeds it message types and applies its decisions, so it is tested without sockets.
struct ResponseTracker {
    /// What to do with one server message.
    enum Decision: Equatable {
        case forward
        case drop
        /// Drop it, and hand its result shape to `described(shape:)`: the RowDescription or NoData answering a
        /// `.describeShape`.
        case dropDescription
        /// Drop it and send the client `CommandComplete DEALLOCATE` instead: the tag of the `DEALLOCATE ALL` that
        /// stood in for a client's `DEALLOCATE name` on a server that never prepared the statement.
        case replaceWithDeallocate
    }

    /// What became of a pool-named statement a server was asked to prepare or close (`Expectation.carriesName`).
    enum StatementEvent: Equatable {
        /// ParseComplete: the server holds it.
        case prepared(String)
        /// The Parse failed or was skipped after an earlier error: the server does not hold it. `clientName` is the
        /// client's own name when the client sent that Parse (it does not hold the statement either).
        case failed(String, clientName: String?)
        /// The eviction Close was skipped after an error: the server still holds it.
        case evictionSkipped(String)
        /// A client's `DEALLOCATE clientName` ran: the server dropped the statement (`DEALLOCATE pool64_N`), or every
        /// statement when the server name is empty (`DEALLOCATE ALL` stood in on a server that never prepared it).
        case deallocated(String, clientName: String)
        /// A `.describeShape` was answered: the server's copy of the statement has result shape `shape`
        /// (`ResponseTracker.shape(ofRowDescription:)`); `clientName` when the client's own Parse prepared it.
        case described(String, clientName: String?, shape: Int)
        /// The client's Parse of SQL held under pool name `String`, parsed afresh into `pool64_check`, failed or was
        /// skipped: as on PostgreSQL, the client holds no statement `clientName`.
        case checkFailed(String, clientName: String)
        /// That fresh parse succeeded, with result shape `shape`.
        case checked(String, clientName: String, shape: Int)
    }

    private(set) var expected = ExpectationQueue()
    /// Names of the name-carrying expectations in `expected`, in the same order (with the client's name for a
    /// Parse the client sent).
    private var names: [(server: String, client: String?)] = []
    /// Outcomes for the relay to apply to its statement bookkeeping (`takeStatementEvents`); empty nearly always.
    private var events: [StatementEvent] = []
    /// Fake expectations in `expected` (most of the time none: `emitReadyFakes` then returns at once).
    private var fakes = 0
    /// An ErrorResponse came while a `.deallocate` was the head: the server refused it.
    private var deallocateRefused = false
    /// `.describeShape` and `.checkDescribe` expectations outstanding (a client held for a shape resumes when none
    /// is left).
    private(set) var shapeChecks = 0
    /// The shape-describing expectation just answered and its names, waiting for `described(shape:)`.
    private var describedNames: (expectation: Expectation, server: String, client: String?)?
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

    /// True while the head is pool64's failing Bind standing in for a stale statement (its error is replaced).
    var headIsStaleBind: Bool { mutating get { expected.first == .staleBind } }

    /// Records a request; a fake response with nothing outstanding before it is written to `out` at once.
    // Inlined: the relay records one per forwarded message (five per extended-protocol transaction), and the call
    // cost more than the append; fakes take the out-of-line path.
    @inline(__always)
    mutating func expect(_ e: Expectation, out: inout ByteBuffer) {
        // Name-carrying expectations go through `expect(_:name:clientName:)`, which keeps `names` in step.
        assert(!e.carriesName, "\(e) recorded without its name")
        expected.append(e)
        if e.isFake { expectedFake(out: &out) }
    }

    /// Records a Parse or Close of the pool-named statement `name` (`Expectation.prepare`, `.evict`); `clientName`
    /// for a Parse the client sent under that name, or for the client's statement a `.deallocate` drops.
    mutating func expect(_ e: Expectation, name: String, clientName: String? = nil) {
        precondition(e.carriesName)
        names.append((name, clientName))
        expected.append(e)  // never a fake
        if e.isShapeDescribe { shapeChecks += 1 }
    }

    /// The result shape of the RowDescription or NoData `receive` answered `.dropDescription` for.
    mutating func described(shape: Int) {
        guard let (e, name, clientName) = describedNames else { return }
        describedNames = nil
        if e == .checkDescribe, let clientName {
            events.append(.checked(name, clientName: clientName, shape: shape))
        } else {
            events.append(.described(name, clientName: clientName, shape: shape))
        }
    }

    /// A fingerprint of the result shape a RowDescription (header included) describes: each column's name, type,
    /// length and modifier, which is what PostgreSQL compares (`equalTupleDescs`) before it answers 0A000; not the
    /// table OID and column number, which DROP and CREATE change without changing the shape. NoData is 0.
    static func shape(ofRowDescription raw: UnsafeRawBufferPointer) -> Int {
        guard raw.count >= 7, raw[0] == BackendType.rowDescription else { return 0 }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        @inline(__always) func mix(_ b: UInt8) { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        var i = 7
        let fields = Int(raw[5]) << 8 | Int(raw[6])
        mix(raw[5])
        mix(raw[6])
        for _ in 0..<fields {
            while i < raw.count, raw[i] != 0 { mix(raw[i]); i += 1 }
            // NUL, table OID (4), column number (2): skipped; type OID (4), length (2), modifier (4): mixed;
            // format (2): always text for a statement Describe.
            i += 1 + 6
            guard i + 10 <= raw.count else { break }
            for j in i..<(i + 10) { mix(raw[j]) }
            i += 12
        }
        return Int(truncatingIfNeeded: h) | 1
    }

    /// True when `takeStatementEvents` has something (one compare per ReadyForQuery on the relay).
    var hasStatementEvents: Bool { mutating get { !events.isEmpty } }

    /// Hands over what became of named Parses and Closes since the last call.
    mutating func takeStatementEvents() -> [StatementEvent] {
        defer { events.removeAll() }
        return events
    }

    @inline(never)
    private mutating func expectedFake(out: inout ByteBuffer) {
        fakes += 1
        emitReadyFakes(out: &out)
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

    /// Removes the head, which got its response (`answered`) or was skipped after an error.
    private mutating func dropHead(answered: Bool = false) {
        let e = expected.removeFirst()
        if e.isFake { fakes -= 1 }
        if e.carriesName { settleName(e, answered: answered) }
    }

    @inline(never)
    private mutating func settleName(_ e: Expectation, answered: Bool) {
        let (name, clientName) = names.removeFirst()
        if e.isShapeDescribe {
            shapeChecks -= 1
            // Skipped after an error: the Parse it follows failed too, which its own event reports.
            if answered { describedNames = (e, name, clientName) }
        } else if e == .checkParse {
            if !answered, let clientName { events.append(.checkFailed(name, clientName: clientName)) }
        } else if e.isParse {
            events.append(answered ? .prepared(name) : .failed(name, clientName: clientName))
        } else if e == .deallocate {
            if answered, let clientName { events.append(.deallocated(name, clientName: clientName)) }
        } else if !answered {
            events.append(.evictionSkipped(name))
        }
    }

    /// Drops expectations up to (not including) the next sync point, fakes included.
    private mutating func dropToSyncPoint() {
        while let h = expected.first, !h.isSyncPoint { dropHead() }
    }

    /// Decides the fate of a server message of `type`; for ReadyForQuery pass its status byte.
    mutating func receive(_ type: UInt8, readyStatus: UInt8 = 0) -> Decision {
        let head = expected.first
        let swallowing = head == .query(swallow: true)
        switch type {
        case BackendType.readyForQuery:
            transactionStatus = TransactionStatus(rawValue: readyStatus) ?? .failed
            // Requests the server skipped after an error never get responses; a ReadyForQuery ends them.
            if let head, !head.isSyncPoint { dropToSyncPoint() }
            // `answered` only matters to a `.deallocate`: it ran unless an error came first.
            if !expected.isEmpty { dropHead(answered: !deallocateRefused) }
            deallocateRefused = false
            return swallowing ? .drop : .forward
        case BackendType.errorResponse:
            if swallowing { return .drop }
            if head == .deallocate { deallocateRefused = true }
            // After an error in extended protocol the server discards messages until Sync (PostgreSQL
            // "Extended Query"): drop expectations up to the next sync point, fakes included.
            dropToSyncPoint()
            return .forward
        case BackendType.parseComplete:
            if let head, head.isParse {
                dropHead(answered: true)
                return head.isSwallowedParseOrClose ? .drop : .forward
            }
        case BackendType.bindComplete:
            if head == .bind || head == .staleBind { expected.removeFirst() }
        case BackendType.closeComplete:
            if let head, head.isClose {
                dropHead(answered: true)
                return head.isSwallowedParseOrClose ? .drop : .forward
            }
        case BackendType.rowDescription, BackendType.noData:
            if head == .describe { expected.removeFirst() }
            if let head, head.isShapeDescribe {
                dropHead(answered: true)
                return .dropDescription
            }
        case BackendType.parameterDescription:
            if let head, head.isShapeDescribe { return .drop }
        case BackendType.commandComplete, BackendType.emptyQueryResponse, BackendType.portalSuspended:
            if head == .execute {
                expected.removeFirst()
            } else if head == .deallocate, type == BackendType.commandComplete, names.first?.server.isEmpty == true {
                return .replaceWithDeallocate
            }
        default:
            break
        }
        return swallowing ? .drop : .forward
    }

    /// Forgets everything (the connection was reset or is being closed).
    mutating func reset() {
        expected.removeAll()
        names.removeAll()
        events.removeAll()
        fakes = 0
        deallocateRefused = false
        shapeChecks = 0
        describedNames = nil
        transactionStatus = .idle
    }
}

/// FIFO of expectations. The first 12 live in one machine word, five bits each with the head in the low bits (a
/// transaction rarely has more than five outstanding); deeper pipelines spill into an array in order. The relay
/// appends and removes several per transaction: a word shift is a few instructions, where an array ring cost
/// bounds checks and uniqueness checks on every write (callgrind: ~10% of an extended-protocol transaction).
struct ExpectationQueue {
    private static let inlineCapacity = 12
    private static let bits: UInt64 = 5
    private static let mask: UInt64 = 0x1F
    /// Codes of the first `inlineCount` expectations, the head in bits 0-4.
    private var inline: UInt64 = 0
    private var inlineCount = 0
    /// Expectations after the first 12, oldest at `spillHead`. Only used while `inline` is full.
    private var spill: [UInt8] = []
    private var spillHead = 0
    private var spillCount = 0

    var count: Int { inlineCount + spillCount }
    var isEmpty: Bool { inlineCount == 0 }
    /// The head's code (meaningless when the queue is empty).
    private var firstCode: UInt8 { UInt8(truncatingIfNeeded: inline & Self.mask) }
    var first: Expectation? { inlineCount == 0 ? nil : Expectation(storedCode: firstCode) }

    // Inlined: the relay appends and removes several per transaction, and the call cost more than the shift.
    @inline(__always)
    mutating func append(_ e: Expectation) {
        if inlineCount < Self.inlineCapacity {
            inline |= UInt64(e.code) << (Self.bits * UInt64(inlineCount))
            inlineCount += 1
        } else {
            appendSpilled(e)
        }
    }

    @inline(never)
    private mutating func appendSpilled(_ e: Expectation) {
        spill.append(e.code)
        spillCount += 1
    }

    @inline(__always)
    @discardableResult
    mutating func removeFirst() -> Expectation {
        precondition(inlineCount > 0, "removeFirst on an empty ExpectationQueue")
        let e = Expectation(storedCode: firstCode)
        inline >>= Self.bits
        inlineCount -= 1
        if spillCount > 0 { refillFromSpill() }
        return e
    }

    /// Keeps the inline word full while anything is spilled, so order holds.
    @inline(never)
    private mutating func refillFromSpill() {
        inline |= UInt64(spill[spillHead]) << (Self.bits * UInt64(Self.inlineCapacity - 1))
        inlineCount += 1
        spillHead += 1
        spillCount -= 1
        if spillCount == 0 {
            spill.removeAll(keepingCapacity: true)
            spillHead = 0
        }
    }

    mutating func removeAll() {
        inline = 0
        inlineCount = 0
        if spillCount > 0 || spillHead > 0 { spill.removeAll() }
        spillHead = 0
        spillCount = 0
    }
}
