import CPool64Sys
import Glibc

/// An error of the hand-over exchange, with the step that failed.
public struct HandoverError: Error, CustomStringConvertible, Sendable {
    public var step: String
    public var reason: String
    public init(_ step: String, _ reason: String) {
        self.step = step
        self.reason = reason
    }
    init(_ step: String, errno code: Int32) {
        self.init(step, String(cString: strerror(code)))
    }
    public var description: String { "hand-over \(step): \(reason)" }
}

/// One blocking Unix stream socket of the hand-over exchange. Used on the hand-over's own threads only: the
/// exchange is a handful of small messages per process lifetime, never on the relay loop.
final class ControlSocket: @unchecked Sendable {
    let fd: Int32
    private var closed = false

    init(fd: Int32) { self.fd = fd }

    /// A receive timeout, so a peer that connects and says nothing cannot hold the exchange forever.
    func setReceiveTimeout(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func writeAll(_ bytes: [UInt8]) throws(HandoverError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HandoverError("write", errno: errno)
            }
            offset += n
        }
    }

    /// Reads up to a newline (included), at most `limit` bytes; nil at end of stream before a full line.
    func readLine(limit: Int) throws(HandoverError) -> [UInt8]? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < limit {
            let n = recv(fd, &byte, 1, 0)
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR { continue }
                throw HandoverError("read", errno: errno)
            }
            line.append(byte)
            if byte == UInt8(ascii: "\n") { return line }
        }
        throw HandoverError("read", "line longer than \(limit) bytes")
    }

    /// Reads exactly `count` bytes; nil at end of stream.
    func readExactly(_ count: Int) throws(HandoverError) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR { continue }
                throw HandoverError("read", errno: errno)
            }
            got += n
        }
        return out
    }

    func sendWithDescriptors(_ payload: [UInt8], _ fds: [Int32]) throws(HandoverError) {
        guard fds.count <= Int(CPOOL64_MAX_PASSED_FDS) else {
            throw HandoverError("offer", "more than \(CPOOL64_MAX_PASSED_FDS) listeners")
        }
        let n = payload.withUnsafeBytes { p in
            fds.withUnsafeBufferPointer { cpool64_send_fds(fd, $0.baseAddress, Int32(fds.count), p.baseAddress, UInt(p.count)) }
        }
        if n < 0 { throw HandoverError("offer", errno: Int32(-n)) }
        if n != payload.count { throw HandoverError("offer", "short write") }
    }

    /// One message with descriptors: the payload bytes and the descriptors (which the caller then owns).
    func receiveWithDescriptors(maximum: Int) throws(HandoverError) -> (payload: [UInt8], fds: [Int32]) {
        var payload = [UInt8](repeating: 0, count: maximum)
        var fds = [Int32](repeating: -1, count: Int(CPOOL64_MAX_PASSED_FDS))
        var count: Int32 = 0
        let n = payload.withUnsafeMutableBytes { p in
            fds.withUnsafeMutableBufferPointer {
                cpool64_recv_fds(fd, $0.baseAddress, CPOOL64_MAX_PASSED_FDS, &count, p.baseAddress, UInt(p.count))
            }
        }
        if n < 0 { throw HandoverError("receive offer", errno: Int32(-n)) }
        if n == 0 { throw HandoverError("receive offer", "predecessor closed the connection") }
        return (Array(payload[..<n]), Array(fds[..<Int(count)]))
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    deinit { close() }
}
