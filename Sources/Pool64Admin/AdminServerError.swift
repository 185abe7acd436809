/// An error raised while starting the admin server. The message always names the listen address involved.
public struct AdminServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, extensible without breaking callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case invalidAddress
            case addressInUse
            case bindFailed
        }

        private let base: Base

        /// The listen address could not be parsed (`[::]:9090`, `127.0.0.1:9090` and `*:9090` are valid).
        public static let invalidAddress = Code(base: .invalidAddress)
        /// Another socket already holds the address (`EADDRINUSE`).
        public static let addressInUse = Code(base: .addressInUse)
        /// Binding failed for another reason (permissions, no such interface address, …).
        public static let bindFailed = Code(base: .bindFailed)

        /// A short, stable name for the code.
        public var description: String {
            switch self.base {
            case .invalidAddress: "invalid address"
            case .addressInUse: "address already in use"
            case .bindFailed: "bind failed"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// The listen address as configured, e.g. `[::]:9090`.
    public var address: String
    /// The underlying reason (an errno description or a parse error), if any.
    public var detail: String

    /// Creates an error for `address`.
    public init(code: Code, address: String, detail: String = "") {
        self.code = code
        self.address = address
        self.detail = detail
    }

    /// `admin listener [::]:9090: address already in use (bind: Address already in use (errno: 98))`.
    public var description: String {
        let base = "admin listener \(self.address): \(self.code)"
        return self.detail.isEmpty ? base : "\(base) (\(self.detail))"
    }
}
