/// A nameserver address and port (53 unless a test says otherwise).
public struct DNSServer: Hashable, Sendable, CustomStringConvertible {
    /// The server's address.
    public var address: IPAddress
    /// The server's UDP and TCP port.
    public var port: UInt16

    /// Creates a server entry.
    public init(address: IPAddress, port: UInt16 = 53) {
        self.address = address
        self.port = port
    }

    /// `address:port`, IPv6 in brackets.
    public var description: String { "\(address.bracketedDescription):\(port)" }
}

/// The parts of resolv.conf(5) the stub resolver honours.
public struct ResolvConf: Hashable, Sendable {
    /// Nameservers in file order, at most three as glibc's MAXNS.
    public var nameservers: [DNSServer]
    /// The per-attempt timeout in milliseconds (`options timeout:n`, seconds, default 5, max 30).
    public var timeoutMilliseconds: Int
    /// Rounds over all nameservers (`options attempts:n`, default 2, max 5).
    public var attempts: Int

    /// Creates a configuration.
    public init(nameservers: [DNSServer], timeoutMilliseconds: Int = 5_000, attempts: Int = 2) {
        self.nameservers = nameservers
        self.timeoutMilliseconds = timeoutMilliseconds
        self.attempts = attempts
    }

    /// glibc's behaviour when resolv.conf lists no nameserver: the local host.
    public static let defaultNameservers = [
        DNSServer(address: .v4(IPv4Address(127, 0, 0, 1))), DNSServer(address: .v6(IPv6Address(high: 0, low: 1))),
    ]

    /// Parses resolv.conf text. Unknown keywords and options (`search`, `ndots` …) are ignored,
    /// and so are nameservers with a zone id (link-local servers are not supported).
    public static func parse(_ text: String) -> ResolvConf {
        var config = ResolvConf(nameservers: [])
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.split(
                maxSplits: 1, omittingEmptySubsequences: false, whereSeparator: { $0 == "#" || $0 == ";" }
            ).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = fields.first else { continue }
            switch keyword {
            case "nameserver":
                guard fields.count >= 2, let address = IPAddress(fields[1]), config.nameservers.count < 3 else {
                    continue
                }
                config.nameservers.append(DNSServer(address: address.unmapped))
            case "options":
                for option in fields.dropFirst() {
                    if option.hasPrefix("timeout:"), let seconds = Int(option.dropFirst(8)) {
                        config.timeoutMilliseconds = min(max(seconds, 1), 30) * 1_000
                    } else if option.hasPrefix("attempts:"), let attempts = Int(option.dropFirst(9)) {
                        config.attempts = min(max(attempts, 1), 5)
                    }
                }
            default:
                continue
            }
        }
        if config.nameservers.isEmpty { config.nameservers = defaultNameservers }
        return config
    }
}

/// /etc/hosts: names to addresses of both families, in file order.
public struct HostsFile: Hashable, Sendable {
    /// Addresses per normalized (lower-case, no trailing dot) name.
    public private(set) var entries: [String: [IPAddress]] = [:]

    /// Creates an empty table.
    public init() {}

    /// Parses hosts(5) text: an address, then a canonical name and aliases; `#` starts a
    /// comment. Lines with an unparsable address (or a zone id) are skipped.
    public static func parse(_ text: String) -> HostsFile {
        var hosts = HostsFile()
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
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
