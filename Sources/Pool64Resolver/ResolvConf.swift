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

/// The parts of resolv.conf(5) the stub resolver honours: `nameserver`, `search`, `domain` and
/// `options ndots: timeout: attempts: rotate no-tld-query`, plus glibc's `LOCALDOMAIN` and
/// `RES_OPTIONS` environment overrides. Parsing is pure: the caller passes the file's text, the
/// environment and the host name in.
public struct ResolvConf: Hashable, Sendable {
    /// glibc's MAXNS: nameservers past the third are ignored.
    public static let maxNameservers = 3
    /// glibc's RES_MAXRETRANS: `timeout:` is capped at 30 seconds.
    public static let maxTimeoutSeconds = 30
    /// glibc's RES_MAXRETRY: `attempts:` is capped at 5.
    public static let maxAttempts = 5

    /// Nameservers in file order, at most three as glibc's MAXNS.
    public var nameservers: [DNSServer]
    /// The per-attempt, per-server timeout in milliseconds (`options timeout:n`, seconds,
    /// default 5, 1 to 30).
    public var timeoutMilliseconds: Int
    /// Rounds over all nameservers (`options attempts:n`, default 2, 1 to 5).
    public var attempts: Int
    /// The names a host name stands for (`search` / `domain`, `options ndots:n no-tld-query`).
    public var searchList: SearchList
    /// `options rotate`: each query starts at the next nameserver instead of the first.
    public var rotate: Bool

    /// Creates a configuration.
    public init(
        nameservers: [DNSServer], timeoutMilliseconds: Int = 5_000, attempts: Int = 2,
        searchList: SearchList = SearchList(), rotate: Bool = false
    ) {
        self.nameservers = nameservers
        self.timeoutMilliseconds = timeoutMilliseconds
        self.attempts = attempts
        self.searchList = searchList
        self.rotate = rotate
    }

    /// glibc's behaviour when resolv.conf lists no nameserver: the local host.
    public static let defaultNameservers = [
        DNSServer(address: .v4(IPv4Address(127, 0, 0, 1))), DNSServer(address: .v6(IPv6Address(high: 0, low: 1))),
    ]

    /// Parses resolv.conf text the way glibc's res_init does.
    ///
    /// - `#` and `;` start a comment (anywhere on the line, a little more lenient than glibc,
    ///   which only knows them at the start); unknown keywords, unknown options and garbage
    ///   lines are ignored.
    /// - `search` and `domain` both replace the search list: the last one in the file wins
    ///   (resolv.conf(5)). `domain x` is the one-entry list `x`.
    /// - `environment["LOCALDOMAIN"]` (space-separated domains; empty disables searching)
    ///   replaces the file's list, and `environment["RES_OPTIONS"]` is applied after the file's
    ///   `options` lines, as glibc does.
    /// - With neither, the search list is the part of `hostname` after its first dot, if any
    ///   (glibc's fallback from gethostname(2)).
    /// - Nameservers with a zone id are skipped (link-local servers are not supported); with no
    ///   usable nameserver the local host is used, as glibc does.
    public static func parse(
        _ text: String, environment: [String: String] = [:], hostname: String? = nil
    ) -> ResolvConf {
        var config = ResolvConf(nameservers: [])
        var domains: [String]?
        var ndots = SearchList.defaultNdots
        var noTLDQuery = false
        func apply(options: some Sequence<Substring>) {
            for option in options {
                if let value = Self.number(option, after: "ndots:") {
                    ndots = min(max(value, 0), SearchList.maxNdots)
                } else if let value = Self.number(option, after: "timeout:") {
                    // glibc treats timeout:0 as one second (res_send never waits less).
                    config.timeoutMilliseconds = min(max(value, 1), maxTimeoutSeconds) * 1_000
                } else if let value = Self.number(option, after: "attempts:") {
                    config.attempts = min(max(value, 1), maxAttempts)
                } else if option == "rotate" {
                    config.rotate = true
                } else if option == "no-tld-query" {
                    noTLDQuery = true
                }
            }
        }
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = rawLine.split(
                maxSplits: 1, omittingEmptySubsequences: false, whereSeparator: { $0 == "#" || $0 == ";" }
            ).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = fields.first else { continue }
            switch keyword {
            case "nameserver":
                guard fields.count >= 2, let address = IPAddress(fields[1]),
                    config.nameservers.count < maxNameservers
                else { continue }
                config.nameservers.append(DNSServer(address: address.unmapped))
            case "search":
                domains = fields.dropFirst().map(String.init)
            case "domain":
                domains = fields.dropFirst().prefix(1).map(String.init)
            case "options":
                apply(options: fields.dropFirst())
            default:
                continue
            }
        }
        if let override = environment["LOCALDOMAIN"] {
            domains = override.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        }
        if let override = environment["RES_OPTIONS"] {
            apply(options: override.split(whereSeparator: { $0 == " " || $0 == "\t" }))
        }
        if domains == nil, let hostname, let dot = hostname.firstIndex(of: ".") {
            let domain = hostname[hostname.index(after: dot)...]
            if !domain.isEmpty { domains = [String(domain)] }
        }
        config.searchList = SearchList(domains: domains ?? [], ndots: ndots, noTLDQuery: noTLDQuery)
        if config.nameservers.isEmpty { config.nameservers = defaultNameservers }
        return config
    }

    /// The decimal after `prefix`, or nil when `option` is another option or not a number
    /// (glibc would read garbage as 0; ignoring it keeps the default instead).
    private static func number(_ option: Substring, after prefix: String) -> Int? {
        guard option.hasPrefix(prefix) else { return nil }
        let digits = option.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy(\.isASCII), let value = Int(digits) else {
            return nil
        }
        return value
    }
}
