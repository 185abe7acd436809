/// Why a name could not be resolved. Follows the `Code` + context shape of postgres-nio's
/// `PSQLError`, so new codes do not break callers' switches.
public struct ResolverError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable text, used in logs and stats.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// NXDOMAIN: the name does not exist (RFC 1035 §4.1.1 RCODE 3).
        public static let nameNotFound = Code("name-not-found")
        /// The name exists but has neither AAAA nor A records (RFC 2308 §2.2 NODATA).
        public static let noData = Code("no-data")
        /// No nameserver answered within the timeout, over every attempt.
        public static let timeout = Code("timeout")
        /// Nameservers answered SERVFAIL, REFUSED or another error code.
        public static let serverFailure = Code("server-failure")
        /// Replies could not be parsed or did not match the question.
        public static let malformedResponse = Code("malformed-response")
        /// The name is not a valid DNS name.
        public static let invalidName = Code("invalid-name")
        /// resolv.conf lists no usable nameserver.
        public static let noNameservers = Code("no-nameservers")
        /// A socket call failed (no route to any nameserver, descriptor exhaustion …).
        public static let socketError = Code("socket-error")

        /// The stable text.
        public var description: String { rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// The name being resolved.
    public var name: String
    /// Extra detail for logs (the server, the rcode, the errno).
    public var detail: String

    /// Creates an error.
    public init(code: Code, name: String, detail: String = "") {
        self.code = code
        self.name = name
        self.detail = detail
    }

    /// `resolving NAME: CODE (DETAIL)`.
    public var description: String {
        "resolving \(name): \(code)" + (detail.isEmpty ? "" : " (\(detail))")
    }
}
