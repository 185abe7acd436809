/// The admin token and its check: `Authorization: Bearer <token>` (RFC 6750 §2.1), compared in constant time so
/// response timing does not reveal how much of a guess was right.
struct BearerToken: Sendable {
    private let expected: [UInt8]

    init(_ token: String) {
        self.expected = Array(token.utf8)
    }

    /// Whether `authorization` (the raw header value, if any) carries this token.
    func accepts(authorization: String?) -> Bool {
        guard let authorization else { return false }
        let bytes = Array(authorization.utf8)
        let scheme = Array("bearer ".utf8)
        guard bytes.count > scheme.count else { return false }
        // The scheme name is case-insensitive (RFC 9110 §11.1); the token is not.
        for (byte, expected) in zip(bytes[..<scheme.count], scheme) where (byte | 0x20) != expected {
            return false
        }
        var credentials = bytes[scheme.count...]
        while credentials.first == UInt8(ascii: " ") { credentials = credentials.dropFirst() }
        while credentials.last == UInt8(ascii: " ") { credentials = credentials.dropLast() }
        return Self.constantTimeEqual(Array(credentials), self.expected)
    }

    /// Compares every byte of the longer input whatever the contents, so the time depends on lengths only.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count)
        difference |= lhs.count == rhs.count ? 0 : 1
        let length = max(lhs.count, rhs.count)
        for index in 0..<length {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }
}
