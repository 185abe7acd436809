/// A response the relay expects from a server, in request order. The queue of these is what lets pool64 add
/// requests the client never sent (a Parse of a statement the server lacks) and answer requests the server never
/// saw (a Parse of a statement the server already has) while keeping every response in the order the client expects.
///
/// A one-byte code rather than an enum with payloads: the relay queues and compares several per transaction, and
/// a code fits five bits of `ExpectationQueue`'s inline word (compares are byte compares, no witness calls).
struct Expectation: Equatable, CustomStringConvertible {
    /// 1...31 (0 is never a valid code).
    let code: UInt8

    private init(_ code: UInt8) { self.code = code }

    /// From a code stored in `ExpectationQueue` (always a valid one).
    init(storedCode: UInt8) { self.code = storedCode }

    /// ParseComplete; `swallow` when pool64 injected the Parse.
    static func parse(swallow: Bool) -> Expectation { Expectation(swallow ? 2 : 1) }
    /// ParseComplete the client expects but the server will not send: emit it when it reaches the head.
    static let fakeParseComplete = Expectation(3)
    static let bind = Expectation(4)
    /// Ends with RowDescription or NoData.
    static let describe = Expectation(5)
    /// Ends with CommandComplete, EmptyQueryResponse or PortalSuspended.
    static let execute = Expectation(6)
    /// CloseComplete for the client's own Close.
    static let close = Expectation(7)
    /// CloseComplete for a Close pool64 sends to evict a pool-named statement from a server's cache (swallowed); the
    /// tracker keeps the name (`ResponseTracker.expect(_:name:clientName:)`) in case the server skips it.
    static let evict = Expectation(8)
    static let fakeCloseComplete = Expectation(9)
    /// ReadyForQuery for a Sync.
    static let sync = Expectation(10)
    /// ReadyForQuery ending a simple Query or FunctionCall; `swallow` for queries pool64 sends itself
    /// (parameter synchronisation, `DISCARD ALL`), whose every response is dropped.
    static func query(swallow: Bool) -> Expectation { Expectation(swallow ? 12 : 11) }
    /// ParseComplete for a Parse of a pool-named statement (`pool64_N`) on a server; the tracker keeps the name so a
    /// Parse the server fails or skips is forgotten instead of being believed prepared. `swallow` when the client did
    /// not send that Parse (it was prepared on demand for a Bind or Describe).
    static func prepare(swallow: Bool) -> Expectation { Expectation(swallow ? 14 : 13) }
    /// ReadyForQuery ending the `DEALLOCATE` pool64 sends for a client's SQL `DEALLOCATE name` inside a transaction;
    /// the tracker keeps the names and reports the statement gone only when the server did not refuse it (in a
    /// failed transaction it answers 25P02 and the statement stays, on the server and for the client).
    static let deallocate = Expectation(15)
    /// RowDescription or NoData (after a dropped ParameterDescription) for the `Describe` pool64 sends behind each
    /// Parse of a pool-named statement, to learn the result shape that server's copy has; swallowed. The tracker
    /// keeps the names and reports the shape (`ResponseTracker.StatementEvent.described`). PostgreSQL fixes a
    /// prepared statement's result shape when it is prepared; pool64 prepares the same statement on other servers
    /// later, after DDL may have changed it, and compares shapes to answer as PostgreSQL would (0A000).
    static let describeShape = Expectation(16)
    /// The failing Bind pool64 sends in place of a client's Bind or Describe of a statement whose shape on this
    /// server differs from the one the client was given: the server's error (for a statement that does not exist)
    /// puts it in PostgreSQL's error state, and the relay replaces that error with PostgreSQL's 0A000 `cached plan
    /// must not change result type`.
    static let staleBind = Expectation(17)
    /// ParseComplete (forwarded as the client's own) for the Parse of a client's SQL into `pool64_check`, which
    /// pool64 sends when the client parses SQL the server already holds under its pool name: the server parses the
    /// text now, as PostgreSQL would, so an error (a dropped table) comes at Parse. Carries the pool name and the
    /// client's; a failure or skip forgets the client's statement (`ResponseTracker.StatementEvent.checkFailed`).
    static let checkParse = Expectation(18)
    /// RowDescription or NoData (after a dropped ParameterDescription) for the Describe of `pool64_check` behind a
    /// `.checkParse`, swallowed: the shape the client's statement has now (`StatementEvent.checked`).
    static let checkDescribe = Expectation(19)
    /// CloseComplete for the Close of `pool64_check` before a `.checkParse` (swallowed; a skip changes nothing).
    static let scratchClose = Expectation(20)

    var isFake: Bool { code == 3 || code == 9 }

    /// Ends at a ReadyForQuery.
    var isSyncPoint: Bool { (code >= 10 && code <= 12) || code == 15 }

    /// A ParseComplete or CloseComplete pool64 asked for itself and drops.
    var isSwallowedParseOrClose: Bool { code == 2 || code == 8 || code == 14 || code == 20 }

    var isParse: Bool { code == 1 || code == 2 || code == 13 || code == 14 || code == 18 }
    /// A Parse, Describe, Close or DEALLOCATE of a pool-named statement: the tracker holds its name.
    var carriesName: Bool { code == 8 || (code >= 13 && code <= 16) || code == 18 || code == 19 }
    var isClose: Bool { code == 7 || code == 8 || code == 20 }
    /// A swallowed Describe whose RowDescription or NoData the relay fingerprints.
    var isShapeDescribe: Bool { code == 16 || code == 19 }

    var description: String {
        switch code {
        case 1: return "parse"
        case 2: return "parse(swallow)"
        case 3: return "fakeParseComplete"
        case 4: return "bind"
        case 5: return "describe"
        case 6: return "execute"
        case 7: return "close"
        case 8: return "evict"
        case 9: return "fakeCloseComplete"
        case 10: return "sync"
        case 11: return "query"
        case 12: return "query(swallow)"
        case 13: return "prepare"
        case 14: return "prepare(swallow)"
        case 15: return "deallocate"
        case 16: return "describeShape"
        case 17: return "staleBind"
        case 18: return "checkParse"
        case 19: return "checkDescribe"
        case 20: return "scratchClose"
        default: return "invalid(\(code))"
        }
    }
}
