import NIOCore

/// The untyped first packet(s) a client sends (PostgreSQL "Message Formats": StartupMessage, SSLRequest,
/// GSSENCRequest, CancelRequest). Decoded by `StartupPacket.decode(from:)` before typed messages begin.
public enum StartupPacket: Sendable, Equatable {
    /// Protocol 3.x startup with its parameters (`user`, `database`, `options`, …) in arrival order.
    case startup(major: UInt16, minor: UInt16, parameters: [(String, String)])
    /// The client asks whether TLS is available.
    case sslRequest
    /// The client asks whether GSSAPI encryption is available.
    case gssEncRequest
    /// Cancel the query running for the connection that owns this key.
    case cancel(processID: Int32, secretKey: Int32)

    public static func == (lhs: StartupPacket, rhs: StartupPacket) -> Bool {
        switch (lhs, rhs) {
        case let (.startup(a, b, p), .startup(c, d, q)):
            return a == c && b == d && p.map { $0.0 } == q.map { $0.0 } && p.map { $0.1 } == q.map { $0.1 }
        case (.sslRequest, .sslRequest), (.gssEncRequest, .gssEncRequest): return true
        case let (.cancel(a, b), .cancel(c, d)): return a == c && b == d
        default: return false
        }
    }

    /// PostgreSQL's own limit for startup packets (`MAX_STARTUP_PACKET_LENGTH`).
    public static let maximumLength = 10_000

    static let sslRequestCode: Int32 = 80_877_103
    static let gssEncRequestCode: Int32 = 80_877_104
    static let cancelRequestCode: Int32 = 80_877_102

    /// Decodes one startup packet. Returns nil (consuming nothing) until the whole packet has arrived.
    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> StartupPacket? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        // Bound the length before waiting for (or allocating) the body.
        guard length >= 8, Int(length) <= maximumLength else {
            throw WireError(.invalidLength, message: "startup packet", detail: "length \(length)")
        }
        guard buffer.readableBytes >= Int(length) else { return nil }
        var packet = buffer.readSlice(length: Int(length))!
        packet.moveReaderIndex(forwardBy: 4)
        let code = packet.readInteger(as: Int32.self)!
        switch code {
        case sslRequestCode:
            return .sslRequest
        case gssEncRequestCode:
            return .gssEncRequest
        case cancelRequestCode:
            guard let pid = packet.readInteger(as: Int32.self), let key = packet.readInteger(as: Int32.self) else {
                throw WireError(.malformed, message: "CancelRequest")
            }
            return .cancel(processID: pid, secretKey: key)
        default:
            let major = UInt16(truncatingIfNeeded: UInt32(bitPattern: code) >> 16)
            let minor = UInt16(truncatingIfNeeded: UInt32(bitPattern: code) & 0xFFFF)
            guard major == 3 else {
                throw WireError(
                    .unsupportedProtocol, message: "StartupMessage",
                    detail: "unsupported frontend protocol \(major).\(minor): server supports 3.0", sqlstate: "0A000")
            }
            var parameters: [(String, String)] = []
            parameters.reserveCapacity(8)
            while true {
                guard let key = packet.readNullTerminatedString() else {
                    throw WireError(.malformed, message: "StartupMessage", detail: "missing terminator")
                }
                if key.isEmpty { break }
                guard let value = packet.readNullTerminatedString() else {
                    throw WireError(.malformed, message: "StartupMessage", detail: "no value for \(key)")
                }
                parameters.append((key, value))
            }
            return .startup(major: major, minor: minor, parameters: parameters)
        }
    }
}
