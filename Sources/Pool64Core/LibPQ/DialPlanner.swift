import Pool64Stats

/// Where and how to dial: candidate attempts raced Happy-Eyeballs style (RFC 8305), each a set of libpq overrides
/// (`host`, `hostaddr`, `port`) that always pairs numeric `hostaddr` with the original `host` (DESIGN decision 3).
public struct DialPlan: Sendable {
    /// One candidate connection attempt.
    public struct Attempt: Sendable {
        public var overrides: [String: String]
        /// `ipv6`, `nat64`, `ipv4` or `unix`.
        public var route: String
        /// The address in `[v6]:port` / `v4:port` form, for stats and logs.
        public var address: String

        public init(overrides: [String: String], route: String, address: String) {
            self.overrides = overrides
            self.route = route
            self.address = address
        }
    }

    public var attempts: [Attempt]
    /// Host names involved, for re-resolution after a failure.
    public var names: [String]

    public init(attempts: [Attempt], names: [String]) {
        self.attempts = attempts
        self.names = names
    }
}

/// Chooses addresses for libpq so that it never resolves names itself (it would block the dial thread).
public protocol DialPlanner: Sendable {
    /// Resolves `endpoints` off the event loop and calls back (on any thread).
    func plan(endpoints: [ConnectionString.Endpoint], completion: @escaping @Sendable (Result<DialPlan, PlanError>) -> Void)
    /// Counts an attempt starting on a route (`failed` false) or failing (`failed` true); a failure forgets cached
    /// answers for `names`. Attempts abandoned by Happy Eyeballs count as attempts, not failures.
    func record(route: String, failed: Bool, names: [String])
    /// Resolver and NAT64 state for `/stats`.
    func snapshot() -> ResolverSnapshot
    /// RFC 8305 "Connection Attempt Delay".
    var attemptDelay: Double { get }
}

/// Resolution failed for every host.
public struct PlanError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
