/// RFC 7050 NAT64 prefix discovery: ask DNS64 for the AAAA of `ipv4only.arpa`, whose only A
/// records are the well-known 192.0.0.170 and 192.0.0.171, and see where they were embedded.
public enum NAT64PrefixDiscovery {
    /// The well-known name (RFC 7050 §2).
    public static let wellKnownName = "ipv4only.arpa"

    /// The well-known IPv4 addresses of `ipv4only.arpa` (RFC 7050 §2).
    public static let wellKnownIPv4Addresses = [IPv4Address(192, 0, 0, 170), IPv4Address(192, 0, 0, 171)]

    /// Finds the NAT64 prefixes revealed by the AAAA answers for `ipv4only.arpa`, in answer
    /// order and without duplicates. Empty means no DNS64 on the path.
    ///
    /// Each answer is searched for a well-known IPv4 at every RFC 6052 position (longest prefix
    /// first). RFC 7050 §3 notes the pattern may match in more than one position; a length
    /// that another answer confirms with either well-known address wins, otherwise the longest.
    public static func prefixes(fromAAAA answers: [IPv6Address]) -> [NAT64Prefix] {
        let matchesPerAnswer = answers.map(matches(in:))
        var found: [NAT64Prefix] = []
        for (index, matches) in matchesPerAnswer.enumerated() where !matches.isEmpty {
            let confirmed = matches.first { candidate in
                matchesPerAnswer.enumerated().contains { other in
                    other.offset != index && other.element.contains(candidate)
                }
            }
            let chosen = confirmed ?? matches[0]
            if !found.contains(chosen) { found.append(chosen) }
        }
        return found
    }

    private static func matches(in answer: IPv6Address) -> [NAT64Prefix] {
        NAT64Prefix.validLengths.reversed().compactMap { length in
            var bytes = answer.bytes
            for bit in length..<128 { bytes[bit / 8] &= ~(UInt8(0x80) >> UInt8(bit % 8)) }
            guard let prefix = try? NAT64Prefix(address: IPv6Address(bytes: bytes)!, length: length),
                let embedded = prefix.extract(answer),
                wellKnownIPv4Addresses.contains(embedded),
                prefix.synthesize(embedded) == answer
            else { return nil }
            return prefix
        }
    }

    /// Looks up `ipv4only.arpa` through `resolver` and extracts the prefixes. A name with no
    /// AAAA answer yields `.success([])`: the network has no DNS64.
    public static func discover(using resolver: DNSResolver) -> Result<[NAT64Prefix], ResolverError> {
        // Asked as an absolute name: RFC 7050 §3 queries exactly `ipv4only.arpa`, and a search
        // list (Kubernetes' ndots:5 would try `ipv4only.arpa.<ns>.svc.cluster.local` first)
        // must never turn it into another name.
        switch resolver.lookup(wellKnownName + ".") {
        case .success(let answer):
            return .success(prefixes(fromAAAA: answer.ipv6))
        case .failure(let error) where error.code == .nameNotFound || error.code == .noData:
            return .success([])
        case .failure(let error):
            return .failure(error)
        }
    }
}
