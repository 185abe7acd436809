/// An IPv6 address: 128 bits, kept as two 64-bit halves so it stays a cheap `Hashable` value.
///
/// Text output follows RFC 5952 (lower case, no leading zeros, the longest run of two or more
/// zero groups shortened to `::`, the first such run on a tie) and uses the mixed
/// `::ffff:a.b.c.d` form for IPv4-mapped addresses (RFC 5952 §5).
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bits 0–63 (the first eight bytes).
    public let high: UInt64
    /// Bits 64–127 (the last eight bytes).
    public let low: UInt64

    /// Creates an address from its two 64-bit halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Creates an address from exactly sixteen bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// Creates an address from eight 16-bit groups; nil for any other count.
    public init?(words: [UInt16]) {
        guard words.count == 8 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for word in words { bytes += [UInt8(word >> 8), UInt8(truncatingIfNeeded: word)] }
        self.init(bytes: bytes)
    }

    /// The IPv4-mapped address `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2).
    public init(mapping ipv4: IPv4Address) {
        self.init(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(ipv4.value))
    }

    /// Parses IPv6 text: full or `::`-compressed groups, an optional trailing dotted quad, and
    /// optional surrounding brackets (`[2001:db8::1]`). Zone ids (`%eth0`) are rejected: pool64
    /// dials database hosts, never link-local ones.
    public init?(_ text: some StringProtocol) {
        var body = Substring(text)
        if body.hasPrefix("[") {
            guard body.hasSuffix("]"), body.count >= 2 else { return nil }
            body = body.dropFirst().dropLast()
        }
        guard !body.isEmpty, !body.contains("%") else { return nil }
        let halves = body.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        if halves.count == 1 {
            guard let words = Self.parseGroups(halves[0], allowsIPv4Tail: true), words.count == 8 else { return nil }
            self.init(words: words)
        } else {
            guard let head = Self.parseGroups(halves[0], allowsIPv4Tail: false),
                let tail = Self.parseGroups(halves[1], allowsIPv4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            let zeros = [UInt16](repeating: 0, count: 8 - head.count - tail.count)
            self.init(words: head + zeros + tail)
        }
    }

    private static func parseGroups(_ text: Substring, allowsIPv4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        var words: [UInt16] = []
        for (index, group) in groups.enumerated() {
            if group.contains(".") {
                guard allowsIPv4Tail, index == groups.count - 1, let ipv4 = IPv4Address(group) else { return nil }
                words.append(UInt16(truncatingIfNeeded: ipv4.value >> 16))
                words.append(UInt16(truncatingIfNeeded: ipv4.value))
            } else {
                guard (1...4).contains(group.count), let word = UInt16(group, radix: 16) else { return nil }
                words.append(word)
            }
        }
        return words
    }

    /// The sixteen bytes in network order.
    public var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for half in [high, low] {
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: half >> UInt64(shift)))
            }
        }
        return bytes
    }

    /// The eight 16-bit groups.
    public var words: [UInt16] {
        let bytes = self.bytes
        return (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
    }

    /// True for `::ffff:0:0/96`, the form in which a dual-stack socket reports IPv4 peers.
    public var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The IPv4 address inside an IPv4-mapped address, else nil.
    public var mappedIPv4: IPv4Address? {
        isIPv4Mapped ? IPv4Address(value: UInt32(truncatingIfNeeded: low)) : nil
    }

    /// True for `::1`.
    public var isLoopback: Bool { high == 0 && low == 1 }

    /// True for `::`.
    public var isUnspecified: Bool { high == 0 && low == 0 }

    /// True for `fe80::/10`.
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }

    /// True when the first `prefixLength` bits equal those of `network`.
    public func isIn(_ network: IPv6Address, prefixLength: Int) -> Bool {
        let highMask: UInt64 = prefixLength >= 64 ? .max : (prefixLength <= 0 ? 0 : ~(UInt64.max >> UInt64(prefixLength)))
        let lowBits = prefixLength - 64
        let lowMask: UInt64 = lowBits >= 64 ? .max : (lowBits <= 0 ? 0 : ~(UInt64.max >> UInt64(lowBits)))
        return high & highMask == network.high & highMask && low & lowMask == network.low & lowMask
    }

    /// RFC 5952 canonical text.
    public var description: String {
        if let ipv4 = mappedIPv4 { return "::ffff:\(ipv4)" }
        let words = self.words
        // RFC 5952 §4.2: shorten the longest run of zero groups, only if it is two or more long,
        // and the first run when two are equally long.
        var bestStart = -1
        var bestLength = 1
        var index = 0
        while index < 8 {
            guard words[index] == 0 else {
                index += 1
                continue
            }
            let start = index
            while index < 8 && words[index] == 0 { index += 1 }
            if index - start > bestLength {
                bestStart = start
                bestLength = index - start
            }
        }
        func hex(_ range: Range<Int>) -> String {
            words[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// Orders addresses numerically.
    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}
