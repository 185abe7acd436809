import Foundation
import Glibc

/// Where and how to dial: the libpq overrides (`host`, `hostaddr`, `port` lists) chosen by the resolver, and the
/// route taken, for stats.
public struct DialPlan: Sendable {
    public var overrides: [String: String]
    /// `ipv6`, `nat64`, `ipv4` or `unix`.
    public var route: String
    /// The chosen address, e.g. `[::1]:5432`.
    public var description: String
    public var tried: [String]
    /// Host names involved, for re-resolution after a failure.
    public var names: [String]

    public init(overrides: [String: String], route: String, description: String, tried: [String], names: [String]) {
        self.overrides = overrides
        self.route = route
        self.description = description
        self.tried = tried
        self.names = names
    }
}

/// Chooses addresses for libpq so that it never resolves names itself (it would block): the result always carries
/// numeric `hostaddr` next to the original `host` (DESIGN decision 3).
public protocol DialPlanner: Sendable {
    /// Resolves `endpoints` off the event loop and calls back (on any thread).
    func plan(endpoints: [ConnectionString.Endpoint], completion: @escaping @Sendable (Result<DialPlan, PlanError>) -> Void)
    /// A dial with this plan failed: forget cached answers so the next dial re-resolves.
    func dialFailed(_ plan: DialPlan)
}

/// Resolution failed for every host.
public struct PlanError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
