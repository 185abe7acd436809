import Pool64Resolver

extension ListenAddress {
    /// Peers of a dual-stack socket show IPv4 as `::ffff:a.b.c.d`; operators want `a.b.c.d` (DESIGN decision 6).
    public static func displayPeer(ip: String?, port: Int?) -> String {
        guard let ip = ip.map(unmapped) else { return "unknown" }
        let p = port.map(String.init) ?? "?"
        return ip.utf8.contains(UInt8(ascii: ":")) ? "[\(ip)]:\(p)" : "\(ip):\(p)"
    }

    /// `a.b.c.d` for an IPv4-mapped `::ffff:a.b.c.d`, any other address as it is.
    public static func unmapped(_ ip: String) -> String {
        // On the UTF-8 view: Foundation's contains(_:) and lowercased() cost more than the rest of an accept.
        let mapped = Array("::ffff:".utf8)
        if ip.utf8.count > 7, ip.utf8.prefix(7).elementsEqual(mapped, by: { $0 | 0x20 == $1 | 0x20 }),
            ip.utf8.contains(UInt8(ascii: "."))
        {
            return String(ip.dropFirst(7))
        }
        return ip
    }
}
