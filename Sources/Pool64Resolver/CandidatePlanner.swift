/// Which address families an instance prefers; operators switch it to roll out region by
/// region and to revert without a rebuild.
public enum IPPolicy: String, Hashable, Sendable, CaseIterable {
    /// Native IPv6 first, then NAT64, then plain IPv4 only where the host has IPv4 and no NAT64.
    case ipv6First = "ipv6-first"
    /// Legacy: IPv4 (A records) first, then IPv6; never synthesizes.
    case ipv4 = "ipv4"
    /// IPv6 and NAT64 only; never plain IPv4.
    case ipv6Only = "ipv6-only"
}

/// How a candidate address is reached; reported per pool in stats.
public enum Route: String, Hashable, Sendable, CaseIterable {
    /// Native IPv6.
    case ipv6
    /// IPv6 into the NAT64 prefix, translated to IPv4 by the gateway.
    case nat64
    /// Plain IPv4.
    case ipv4
}

/// One address to dial and how it is reached.
public struct Candidate: Hashable, Sendable, CustomStringConvertible {
    /// The address to pass to libpq as `hostaddr`.
    public var address: IPAddress
    /// The route this address takes.
    public var route: Route

    /// Creates a candidate.
    public init(address: IPAddress, route: Route) {
        self.address = address
        self.route = route
    }

    /// `address (route)`.
    public var description: String { "\(address) (\(route.rawValue))" }
}

/// What the configured host turned out to be before any DNS.
public enum HostLiteral: Hashable, Sendable {
    /// A name that was resolved.
    case none
    /// An IPv4 literal (`a`, with one element, holds it).
    case ipv4
    /// An IPv6 literal (`aaaa`, with one element, holds it).
    case ipv6
}

/// Turns resolution results into an ordered list of candidates to race. Pure: no I/O.
public enum CandidatePlanner {
    /// Orders the candidates for one host.
    ///
    /// - ipv6-first: native AAAA, then A synthesized into `nat64` (unless the prefix cannot
    ///   reach that IPv4, RFC 6052 §3.1), then plain IPv4 only when `hasIPv4Connectivity` and
    ///   the address was not synthesized. When IPv6 and plain IPv4 both remain they are
    ///   interleaved, IPv6 first (RFC 8305 §4).
    /// - ipv4: A records first, interleaved with AAAA (RFC 8305 §4 with IPv4 preferred).
    /// - ipv6-only: AAAA, then synthesized; never plain IPv4.
    ///
    /// IPv4-mapped AAAA answers count as A records, and AAAA answers already inside the NAT64
    /// prefix (a DNS64 did the synthesis) are routed as `nat64`.
    public static func order(
        aaaa: [IPv6Address],
        a: [IPv4Address],
        literal: HostLiteral = .none,
        policy: IPPolicy,
        nat64: NAT64Prefix?,
        hasIPv4Connectivity: Bool
    ) -> [Candidate] {
        var native: [IPv6Address] = []
        var dns64: [IPv6Address] = []
        var ipv4 = a
        for address in aaaa {
            if let mapped = address.mappedIPv4 {
                ipv4.append(mapped)
            } else if let nat64, nat64.contains(address), nat64.extract(address) != nil {
                dns64.append(address)
            } else {
                native.append(address)
            }
        }
        let v6Candidates = unique(
            native.map { Candidate(address: .v6($0), route: .ipv6) }
                + dns64.map { Candidate(address: .v6($0), route: .nat64) })
        ipv4 = unique(ipv4)

        switch policy {
        case .ipv4:
            let v4Candidates = ipv4.map { Candidate(address: .v4($0), route: .ipv4) }
            return interleave(preferred: v4Candidates, other: v6Candidates)
        case .ipv6First, .ipv6Only:
            var synthesized: [Candidate] = []
            var plain: [Candidate] = []
            for address in ipv4 {
                if let nat64, nat64.canReach(address) {
                    synthesized.append(Candidate(address: .v6(nat64.synthesize(address)), route: .nat64))
                } else if policy == .ipv6First && hasIPv4Connectivity {
                    plain.append(Candidate(address: .v4(address), route: .ipv4))
                }
            }
            return interleave(preferred: unique(v6Candidates + synthesized), other: plain)
        }
    }

    /// RFC 8305 §4: alternate families, starting with the preferred one ("First Address
    /// Family Count" of 1).
    static func interleave(preferred: [Candidate], other: [Candidate]) -> [Candidate] {
        var result: [Candidate] = []
        result.reserveCapacity(preferred.count + other.count)
        for index in 0..<max(preferred.count, other.count) {
            if index < preferred.count { result.append(preferred[index]) }
            if index < other.count { result.append(other[index]) }
        }
        return result
    }

    private static func unique<T: Hashable>(_ items: [T]) -> [T] {
        var seen = Set<T>()
        return items.filter { seen.insert($0).inserted }
    }
}
