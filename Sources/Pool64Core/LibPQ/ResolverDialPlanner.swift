import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import Pool64Resolver
import Pool64Stats

/// The IPv6-first planner (DESIGN decision 5): pool64's own DNS stub (AAAA and A concurrently, TTL cache), NAT64
/// synthesis for A-only names and IPv4 literals, the `ip-policy` switch, and RFC 7050 prefix discovery. All lookups
/// run on a background queue, never on an event loop.
public final class ResolverDialPlanner: DialPlanner {
    private struct NAT64State {
        var prefix: NAT64Prefix?
        /// `configured`, `discovered`, `off`, `not-found`.
        var source: String
        var connectivity: HostConnectivity
        var attempts: [String: UInt64] = [:]
        var failures: [String: UInt64] = [:]
    }

    let resolver: DNSResolver
    private let settings: NIOLockedValueBox<(policy: IPPolicy, nat64: NAT64Setting, delay: Double)>
    var policy: IPPolicy { settings.withLockedValue { $0.policy } }
    var setting: NAT64Setting { settings.withLockedValue { $0.nat64 } }
    public var attemptDelay: Double { settings.withLockedValue { $0.delay } }
    private let state: NIOLockedValueBox<NAT64State>
    private let logger: Logger
    private let queue = DispatchQueue(label: "pool64.resolver", attributes: .concurrent)

    public init(policy: String, nat64: String, attemptDelay: Double, ttlCap: Double, logger: Logger) throws(ConfigurationError) {
        let (p, setting) = try Self.validate(policy: policy, nat64: nat64)
        settings = NIOLockedValueBox((p, setting, attemptDelay))
        self.logger = logger
        var options = DNSResolverOptions()
        options.maxTTL = UInt32(max(1, ttlCap))
        resolver = DNSResolver(options: options)
        let connectivity = HostConnectivity.probe()
        switch setting {
        case .prefix(let prefix):
            state = NIOLockedValueBox(NAT64State(prefix: prefix, source: "configured", connectivity: connectivity))
        case .off:
            state = NIOLockedValueBox(NAT64State(prefix: nil, source: "off", connectivity: connectivity))
        case .auto:
            state = NIOLockedValueBox(NAT64State(prefix: nil, source: "not-found", connectivity: connectivity))
            rediscover()
        }
        scheduleRediscovery()
        logger.info(
            "resolver ready",
            metadata: ["policy": "\(policy)", "nat64": "\(setting)", "connectivity": "\(connectivity)"])
    }

    /// Validates policy and NAT64 settings without applying them.
    public static func checked(policy: String, nat64: String) throws(ConfigurationError) -> Bool {
        _ = try validate(policy: policy, nat64: nat64)
        return true
    }

    static func validate(policy: String, nat64: String) throws(ConfigurationError) -> (IPPolicy, NAT64Setting) {
        guard let p = IPPolicy(rawValue: policy) else {
            throw ConfigurationError(key: "ip-policy", value: policy, reason: "expected ipv6-first, ipv4 or ipv6-only")
        }
        do {
            return (p, try NAT64Setting(parsing: nat64))
        } catch {
            throw ConfigurationError(key: "nat64-prefix", value: nat64, reason: "\(error)")
        }
    }

    /// SIGHUP: switch address policy, NAT64 prefix and attempt delay at run time (the migration's rollback lever).
    /// Cached answers are dropped so the next dial uses the new policy.
    public func update(policy: String, nat64: String, attemptDelay: Double) throws(ConfigurationError) {
        let (p, n) = try Self.validate(policy: policy, nat64: nat64)
        settings.withLockedValue { $0 = (p, n, attemptDelay) }
        state.withLockedValue { s in
            s.connectivity = HostConnectivity.probe()
            switch n {
            case .prefix(let prefix):
                s.prefix = prefix
                s.source = "configured"
            case .off:
                s.prefix = nil
                s.source = "off"
            case .auto:
                s.source = s.source == "discovered" ? "discovered" : "not-found"
            }
        }
        resolver.invalidateAll()
        rediscover()
    }

    /// RFC 7050 §3: the prefix is re-checked periodically (networks renumber).
    private func scheduleRediscovery() {
        queue.asyncAfter(deadline: .now() + 600) { [weak self] in
            self?.rediscover()
            self?.scheduleRediscovery()
        }
    }

    /// RFC 7050 discovery through `ipv4only.arpa`; re-run periodically by the owner and after failures.
    public func rediscover() {
        guard case .auto = setting else { return }
        queue.async { [self] in
            let found = NAT64PrefixDiscovery.discover(using: resolver)
            state.withLockedValue { s in
                switch found {
                case .success(let prefixes) where !prefixes.isEmpty:
                    if s.prefix != prefixes[0] {
                        logger.info("NAT64 prefix discovered", metadata: ["prefix": "\(prefixes[0])"])
                    }
                    s.prefix = prefixes[0]
                    s.source = "discovered"
                case .success, .failure:
                    if s.prefix == nil { s.source = "not-found" }
                }
            }
        }
    }

    public func plan(
        endpoints: [ConnectionString.Endpoint], completion: @escaping @Sendable (Result<DialPlan, PlanError>) -> Void
    ) {
        queue.async { [self] in
            let (prefix, connectivity) = state.withLockedValue { ($0.prefix, $0.connectivity) }
            var perHost: [[DialPlan.Attempt]] = []
            var errors: [String] = []
            for e in endpoints {
                if e.host.hasPrefix("/") {
                    perHost.append([DialPlan.Attempt(overrides: ["host": e.host, "port": String(e.port)], route: "unix", address: "\(e.host)/.s.PGSQL.\(e.port)")])
                    continue
                }
                let candidates: [Candidate]
                if let literal = IPAddress(e.host) {
                    switch literal.unmapped {
                    case .v4(let v4) where v4.isLoopback:
                        // Loopback never goes through NAT64 (and must never leave the host).
                        candidates = [Candidate(address: .v4(v4), route: .ipv4)]
                    case .v4(let v4):
                        candidates = CandidatePlanner.order(
                            aaaa: [], a: [v4], literal: .ipv4, policy: policy, nat64: prefix,
                            hasIPv4Connectivity: connectivity.hasIPv4 || isLoopback(v4))
                    case .v6(let v6):
                        candidates = [Candidate(address: .v6(v6), route: .ipv6)]
                    }
                } else {
                    switch resolver.lookup(e.host) {
                    case .success(let answer):
                        if answer.source == .dns, answer.fqdn != answer.name {
                            logger.debug(
                                "resolved through the search list",
                                metadata: ["host": "\(e.host)", "fqdn": "\(answer.fqdn)"])
                        }
                        let loopback = answer.ipv4.filter(isLoopback)
                        let other = answer.ipv4.filter { !isLoopback($0) }
                        candidates = CandidatePlanner.order(
                            aaaa: answer.ipv6, a: other, policy: policy, nat64: prefix,
                            hasIPv4Connectivity: connectivity.hasIPv4)
                            + loopback.map { Candidate(address: .v4($0), route: .ipv4) }
                    case .failure(let err):
                        errors.append("\(e.host): \(err)")
                        continue
                    }
                }
                if candidates.isEmpty {
                    var why = "no usable address under ip-policy \(policy.rawValue)"
                    if let prefix, prefix.isWellKnown {
                        why += "; the well-known NAT64 prefix \(prefix) cannot reach non-global IPv4 (RFC 6052 §3.1):"
                            + " set --nat64-prefix to the gateway's network-specific prefix"
                    } else if prefix == nil {
                        why += " and no NAT64 prefix"
                    }
                    errors.append("\(e.host): \(why)")
                    continue
                }
                perHost.append(candidates.map { c in
                    let addr = "\(c.address)"
                    return DialPlan.Attempt(
                        overrides: ["host": e.host, "hostaddr": addr, "port": String(e.port)], route: c.route.rawValue,
                        address: c.address.isIPv4 ? "\(addr):\(e.port)" : "[\(addr)]:\(e.port)")
                })
            }
            guard !perHost.isEmpty else {
                completion(.failure(PlanError(errors.joined(separator: "; "))))
                return
            }
            let names = endpoints.map(\.host)
            if perHost.count == 1 {
                completion(.success(DialPlan(attempts: perHost[0], names: names)))
                return
            }
            // Several hosts: libpq walks the list itself (target_session_attrs needs that); each host gets its best
            // address.
            let firsts = perHost.map { $0[0] }
            let merged = DialPlan.Attempt(
                overrides: [
                    "host": firsts.map { $0.overrides["host"] ?? "" }.joined(separator: ","),
                    "hostaddr": firsts.map { $0.overrides["hostaddr"] ?? "" }.joined(separator: ","),
                    "port": firsts.map { $0.overrides["port"] ?? "" }.joined(separator: ","),
                ], route: firsts[0].route, address: firsts.map(\.address).joined(separator: ","))
            completion(.success(DialPlan(attempts: [merged], names: names)))
        }
    }

    private func isLoopback(_ v4: IPv4Address) -> Bool { v4.isLoopback }

    public func record(route: String, failed: Bool, names: [String]) {
        state.withLockedValue { s in
            if failed { s.failures[route, default: 0] &+= 1 } else { s.attempts[route, default: 0] &+= 1 }
        }
        if failed {
            for n in names { resolver.invalidate(n) }
            if route == "nat64" { rediscover() }
        }
    }

    public func snapshot() -> ResolverSnapshot {
        let s = state.withLockedValue { $0 }
        let cache = resolver.cacheSnapshot().map { e in
            ResolverCacheEntry(
                name: e.name, addresses: e.ipv6.map { "\($0)" } + e.ipv4.map { "\($0)" },
                ttlRemainingSeconds: Double(e.remainingTTL.components.seconds)
                    + Double(e.remainingTTL.components.attoseconds) / 1e18,
                negative: e.isNegative, fqdn: e.isNegative || e.fqdn == e.name || e.fqdn + "." == e.name ? nil : e.fqdn)
        }
        return ResolverSnapshot(
            policy: policy.rawValue, nat64Prefix: s.prefix.map { "\($0)" } ?? "", nat64Source: s.source,
            cache: cache, attemptsByFamily: s.attempts, failuresByFamily: s.failures)
    }
}
