/// /etc/hosts: names to addresses of both families, in file order.
///
/// Like glibc's `files` source with `multi on`, every line that lists a name contributes its
/// address, and the search list never applies here: a name matches only as given.
public struct HostsFile: Hashable, Sendable {
    /// Addresses per normalized (lower-case, no trailing dot) name.
    public private(set) var entries: [String: [IPAddress]] = [:]

    /// Creates an empty table.
    public init() {}

    /// Parses hosts(5) text: an address, then a canonical name and aliases; `#` starts a
    /// comment. Lines with an unparsable address (or a zone id: a link-local address cannot be
    /// dialled without one, and pool64 does not carry zones) are skipped, and so are names that
    /// are not valid host names.
    public static func parse(_ text: String) -> HostsFile {
        var hosts = HostsFile()
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let address = IPAddress(fields[0]) else { continue }
            for name in fields.dropFirst() {
                guard let normalized = DNSMessage.normalize(String(name)) else { continue }
                if !hosts.entries[normalized, default: []].contains(address) {
                    hosts.entries[normalized, default: []].append(address)
                }
            }
        }
        return hosts
    }

    /// The addresses for `name` (any case, trailing dot allowed), or nil when not listed.
    /// IPv4-mapped IPv6 entries count as IPv4. A name listed with IPv4 addresses only comes
    /// back with `ipv6` empty, the same "A only" shape as a DNS name without AAAA records, so
    /// the planner synthesizes NAT64 addresses for it.
    public func lookup(_ name: String) -> (ipv6: [IPv6Address], ipv4: [IPv4Address])? {
        guard let normalized = DNSMessage.normalize(name), let addresses = entries[normalized] else { return nil }
        var ipv6: [IPv6Address] = []
        var ipv4: [IPv4Address] = []
        for address in addresses {
            switch address.unmapped {
            case .v4(let address): ipv4.append(address)
            case .v6(let address): ipv6.append(address)
            }
        }
        return (ipv6, ipv4)
    }
}
