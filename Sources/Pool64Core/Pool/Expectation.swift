/// A response the relay expects from a server, in request order. The queue of these is what lets pool64 add
/// requests the client never sent (a Parse of a statement the server lacks) and answer requests the server never
/// saw (a Parse of a statement the server already has) while keeping every response in the order the client expects.
enum Expectation: Equatable {
    /// ParseComplete; `swallow` when pool64 injected the Parse.
    case parse(swallow: Bool)
    /// ParseComplete the client expects but the server will not send: emit it when it reaches the head.
    case fakeParseComplete
    case bind
    /// Ends with RowDescription or NoData.
    case describe
    /// Ends with CommandComplete, EmptyQueryResponse or PortalSuspended.
    case execute
    /// CloseComplete; `swallow` when pool64 injected the Close (prepared-statement cache eviction).
    case close(swallow: Bool)
    case fakeCloseComplete
    /// ReadyForQuery for a Sync.
    case sync
    /// ReadyForQuery ending a simple Query or FunctionCall; `swallow` for queries pool64 sends itself
    /// (parameter synchronisation, `DISCARD ALL`), whose every response is dropped.
    case query(swallow: Bool)

    var isFake: Bool {
        switch self {
        case .fakeParseComplete, .fakeCloseComplete: return true
        case .parse, .bind, .describe, .execute, .close, .sync, .query: return false
        }
    }

    /// Ends at a ReadyForQuery.
    var isSyncPoint: Bool {
        switch self {
        case .sync, .query: return true
        case .parse, .fakeParseComplete, .bind, .describe, .execute, .close, .fakeCloseComplete: return false
        }
    }
}
