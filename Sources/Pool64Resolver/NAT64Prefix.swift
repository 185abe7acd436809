/// A NAT64 prefix and the RFC 6052 address arithmetic that embeds IPv4 addresses in it.
///
/// pool64 synthesizes `prefix + IPv4` itself for A-only names and IPv4 literals, instead of
/// relying on a DNS64 server, so that IPv4 literals (which DNS64 never sees) reach their
/// database through the NAT64 gateway too.
public struct NAT64Prefix: Hashable, Sendable, CustomStringConvertible {
    /// The prefix lengths RFC 6052 §2.2 allows.
    public static let validLengths: [Int] = [32, 40, 48, 56, 64, 96]

    /// The Well-Known Prefix `64:ff9b::/96` (RFC 6052 §2.1).
    public static let wellKnown = NAT64Prefix(
        uncheckedAddress: IPv6Address(high: 0x0064_FF9B_0000_0000, low: 0), length: 96)

    /// The prefix bits; every bit past `length` is zero.
    public let address: IPv6Address
    /// The prefix length, one of `validLengths`.
    public let length: Int

    private init(uncheckedAddress: IPv6Address, length: Int) {
        self.address = uncheckedAddress
        self.length = length
    }

    /// Validates a prefix: the length must be one of 32, 40, 48, 56, 64 or 96, no bit past the
    /// length may be set, and bits 64–71 must be zero (RFC 6052 §2.2).
    public init(address: IPv6Address, length: Int) throws(NAT64PrefixError) {
        guard Self.validLengths.contains(length) else { throw .invalidLength(length) }
        guard Self.masked(address, length) == address else {
            throw .hostBitsSet("\(address)/\(length)")
        }
        // RFC 6052 §2.2: bits 64–71 are the "u" octet, reserved for compatibility with the
        // RFC 4291 interface identifier format, and MUST be zero. Only a /96 can carry them.
        guard address.bytes[8] == 0 else { throw .reservedBitsSet("\(address)/\(length)") }
        self.address = address
        self.length = length
    }

    /// Parses `address/length`, e.g. `64:ff9b::/96` or `2001:db8:122::/48`.
    public init(_ text: some StringProtocol) throws(NAT64PrefixError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv6Address(parts[0]) else { throw .malformed(String(text)) }
        guard let length = Int(parts[1]) else { throw .malformed(String(text)) }
        try self.init(address: address, length: length)
    }

    private static func masked(_ address: IPv6Address, _ length: Int) -> IPv6Address {
        var bytes = address.bytes
        for bit in length..<128 { bytes[bit / 8] &= ~(UInt8(0x80) >> UInt8(bit % 8)) }
        return IPv6Address(bytes: bytes)!
    }

    /// `address/length` in RFC 5952 text.
    public var description: String { "\(address)/\(length)" }

    /// True for `64:ff9b::/96`.
    public var isWellKnown: Bool { self == .wellKnown }

    // RFC 6052 §2.2: the IPv4 bytes follow the prefix, skipping byte 8 (bits 64–71, the u octet).
    private var ipv4ByteOffsets: [Int] {
        var offsets: [Int] = []
        var index = length / 8
        while offsets.count < 4 {
            if index != 8 { offsets.append(index) }
            index += 1
        }
        return offsets
    }

    /// Embeds `ipv4` in this prefix (RFC 6052 §2.2); the u octet and the suffix are zero.
    public func synthesize(_ ipv4: IPv4Address) -> IPv6Address {
        var bytes = address.bytes
        for (offset, byte) in zip(ipv4ByteOffsets, ipv4.bytes) { bytes[offset] = byte }
        return IPv6Address(bytes: bytes)!
    }

    /// True when `ipv6` starts with this prefix.
    public func contains(_ ipv6: IPv6Address) -> Bool {
        ipv6.isIn(address, prefixLength: length)
    }

    /// The IPv4 address embedded in `ipv6` (RFC 6052 §2.3), or nil when `ipv6` is outside this
    /// prefix or its u octet is not zero. A non-zero suffix is tolerated on input, as §2.3 only
    /// requires it to be zero when synthesizing.
    public func extract(_ ipv6: IPv6Address) -> IPv4Address? {
        guard contains(ipv6) else { return nil }
        let bytes = ipv6.bytes
        if length < 96 && bytes[8] != 0 { return nil }
        return IPv4Address(bytes: ipv4ByteOffsets.map { bytes[$0] })
    }

    /// True when RFC 6052 §3.1 forbids representing `ipv4` with the Well-Known Prefix: the
    /// non-global ranges of RFC 5735 §3 (RFC 1918 private space, loopback, link local, "this
    /// network", IETF protocol assignments, documentation, benchmarking, multicast, reserved).
    /// NAT64 gateways such as tayga refuse to translate them. 100.64.0.0/10 (RFC 6598 shared
    /// address space) postdates RFC 5735 and tayga accepts it, so it is not listed.
    public static func wellKnownPrefixCannotReach(_ ipv4: IPv4Address) -> Bool {
        nonGlobalIPv4Ranges.contains { ipv4.isIn($0.network, prefixLength: $0.length) }
    }

    private static let nonGlobalIPv4Ranges: [(network: IPv4Address, length: Int)] = [
        (IPv4Address(0, 0, 0, 0), 8),
        (IPv4Address(10, 0, 0, 0), 8),
        (IPv4Address(127, 0, 0, 0), 8),
        (IPv4Address(169, 254, 0, 0), 16),
        (IPv4Address(172, 16, 0, 0), 12),
        (IPv4Address(192, 0, 0, 0), 24),
        (IPv4Address(192, 0, 2, 0), 24),
        (IPv4Address(192, 168, 0, 0), 16),
        (IPv4Address(198, 18, 0, 0), 15),
        (IPv4Address(198, 51, 100, 0), 24),
        (IPv4Address(203, 0, 113, 0), 24),
        (IPv4Address(224, 0, 0, 0), 4),
        (IPv4Address(240, 0, 0, 0), 4),
    ]

    /// True when a gateway using this prefix can translate to `ipv4`: always for a
    /// network-specific prefix, and only for global addresses with the Well-Known Prefix.
    public func canReach(_ ipv4: IPv4Address) -> Bool {
        !isWellKnown || !Self.wellKnownPrefixCannotReach(ipv4)
    }
}

/// Why a NAT64 prefix or setting was refused.
public enum NAT64PrefixError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not `ipv6-address/length`.
    case malformed(String)
    /// The length is not 32, 40, 48, 56, 64 or 96.
    case invalidLength(Int)
    /// Bits past the prefix length are set.
    case hostBitsSet(String)
    /// Bits 64–71 are set (RFC 6052 §2.2).
    case reservedBitsSet(String)

    /// A message fit for a configuration error.
    public var description: String {
        switch self {
        case .malformed(let text):
            return "NAT64 prefix '\(text)' is not of the form ipv6-address/length, 'auto' or 'off'"
        case .invalidLength(let length):
            return "NAT64 prefix length \(length) is not one of 32, 40, 48, 56, 64, 96 (RFC 6052 §2.2)"
        case .hostBitsSet(let text):
            return "NAT64 prefix \(text) has bits set past its length"
        case .reservedBitsSet(let text):
            return "NAT64 prefix \(text) has bits 64-71 set; RFC 6052 §2.2 requires them to be zero"
        }
    }
}

/// The `nat64` configuration value: a fixed prefix, RFC 7050 discovery, or no NAT64.
public enum NAT64Setting: Hashable, Sendable, CustomStringConvertible {
    /// Use this prefix.
    case prefix(NAT64Prefix)
    /// Discover the prefix from the network (RFC 7050, AAAA of `ipv4only.arpa`).
    case auto
    /// Never synthesize; A-only names are reached over IPv4 if at all.
    case off

    /// The default: the Well-Known Prefix `64:ff9b::/96`.
    public static let `default` = NAT64Setting.prefix(.wellKnown)

    /// Parses `"64:ff9b::/96"` (any valid prefix), `"auto"` or `"off"` (case-insensitive).
    public init(parsing text: String) throws(NAT64PrefixError) {
        let trimmed = text.trimmingASCIIWhitespace().lowercased()
        switch trimmed {
        case "auto": self = .auto
        case "off", "none", "disabled": self = .off
        default: self = .prefix(try NAT64Prefix(trimmed))
        }
    }

    /// The configuration text that parses back to this value.
    public var description: String {
        switch self {
        case .prefix(let prefix): return prefix.description
        case .auto: return "auto"
        case .off: return "off"
        }
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
