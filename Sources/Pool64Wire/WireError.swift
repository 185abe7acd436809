/// A malformed or unacceptable message from a peer. Carries the SQLSTATE to answer with.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong; extensible without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }
        public static let messageTooLarge = Code(raw: "message too large")
        public static let invalidLength = Code(raw: "invalid message length")
        public static let malformed = Code(raw: "malformed message")
        public static let unsupportedProtocol = Code(raw: "unsupported protocol version")
        public static let unexpectedMessage = Code(raw: "unexpected message")
    }

    public var code: Code
    /// The message type (ASCII letter) or startup packet the error is about.
    public var message: String
    public var detail: String
    /// The SQLSTATE to report to the peer: `08P01` protocol violation unless said otherwise.
    public var sqlstate: String

    public init(_ code: Code, message: String, detail: String = "", sqlstate: String = "08P01") {
        self.code = code
        self.message = message
        self.detail = detail
        self.sqlstate = sqlstate
    }

    public var description: String {
        detail.isEmpty ? "\(code) (\(message))" : "\(code) (\(message)): \(detail)"
    }
}
