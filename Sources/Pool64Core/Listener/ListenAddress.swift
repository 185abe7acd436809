/// A `--listen` value: `[::]:6432`, `127.0.0.1:6432`, `[fd64:1::2]:6432`, `*:6432` or `:6432`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing s: String) throws(ConfigurationError) {
        var host: Substring
        var portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError(key: "listen", value: s, reason: "expected [address]:port")
            }
            host = s[s.index(after: s.startIndex)..<close]
            portText = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":") else {
                throw ConfigurationError(key: "listen", value: s, reason: "expected address:port")
            }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
            if host.contains(":") {
                throw ConfigurationError(key: "listen", value: s, reason: "IPv6 addresses need brackets: [addr]:port")
            }
        }
        if host.isEmpty || host == "*" { host = "::" }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError(key: "listen", value: s, reason: "invalid port")
        }
        self.host = String(host)
        self.port = port
    }

    public var isIPv6: Bool { host.contains(":") }
    public var isWildcardIPv6: Bool { host == "::" }
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Peers of a dual-stack socket show IPv4 as `::ffff:a.b.c.d`; operators want `a.b.c.d` (DESIGN decision 6).
    public static func displayPeer(ip: String?, port: Int?) -> String {
        guard var ip else { return "unknown" }
        // On the UTF-8 view: Foundation's contains(_:) and lowercased() cost more than the rest of an accept.
        let mapped = Array("::ffff:".utf8)
        if ip.utf8.count > 7, ip.utf8.prefix(7).elementsEqual(mapped, by: { $0 | 0x20 == $1 | 0x20 }),
            ip.utf8.contains(UInt8(ascii: "."))
        {
            ip = String(ip.dropFirst(7))
        }
        let p = port.map(String.init) ?? "?"
        return ip.utf8.contains(UInt8(ascii: ":")) ? "[\(ip)]:\(p)" : "\(ip):\(p)"
    }
}
