/// An IPv4 address, stored as its 32 bits in network (big-endian) order of significance.
///
/// Text parsing is deliberately strict: exactly four decimal octets, no leading zeros, no
/// shorthand. glibc's `inet_aton` accepts `10.1` or `010.0.0.1` (octal), and `getaddrinfo`
/// with `AI_ADDRCONFIG` rejects every IPv4 literal on an IPv6-only host, so pool64 never
/// hands literals to libc.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address as a 32-bit integer; `a.b.c.d` is `a << 24 | b << 16 | c << 8 | d`.
    public let value: UInt32

    /// Creates an address from its 32-bit integer value.
    public init(value: UInt32) {
        self.value = value
    }

    /// Creates `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Creates an address from exactly four bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        var value: UInt32 = 0
        for byte in bytes { value = value << 8 | UInt32(byte) }
        self.value = value
    }

    /// Parses a strict dotted quad such as `192.0.2.33`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // A leading zero would be octal to inet_aton; refuse the ambiguity.
                if leadingZero { return nil }
                if digits == 0 && byte == UInt8(ascii: "0") { leadingZero = true }
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || current > 255 { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
                leadingZero = false
            default:
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        self.value = value << 8 | current
    }

    /// The four bytes in network order.
    public var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    /// Dotted-quad text, e.g. `192.0.2.33`.
    public var description: String {
        bytes.map { String($0) }.joined(separator: ".")
    }

    /// True when the address lies in `network/prefixLength`.
    public func isIn(_ network: IPv4Address, prefixLength: Int) -> Bool {
        guard prefixLength > 0 else { return true }
        let mask = prefixLength >= 32 ? UInt32.max : ~(UInt32.max >> UInt32(prefixLength))
        return value & mask == network.value & mask
    }

    /// True for 127.0.0.0/8.
    public var isLoopback: Bool { isIn(IPv4Address(127, 0, 0, 0), prefixLength: 8) }

    /// Orders addresses numerically.
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}
