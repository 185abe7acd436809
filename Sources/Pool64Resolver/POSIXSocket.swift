#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A socket address built from an `IPAddress` and a port, ready for `connect(2)`.
struct POSIXSocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t
    var family: Int32

    init(_ address: IPAddress, port: UInt16) {
        switch address {
        case .v4(let ipv4):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = ipv4.value.bigEndian
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            family = AF_INET
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) }
            }
        case .v6(let ipv6):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
                for (index, byte) in ipv6.bytes.enumerated() { raw[index] = byte }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: sin6) { raw.copyMemory(from: $0) }
            }
        }
    }

    /// Reads back an IP address from a `sockaddr_storage` filled by the kernel.
    static func address(of storage: sockaddr_storage) -> IPAddress? {
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: storage) { raw -> IPAddress? in
            switch family {
            case AF_INET:
                let sin = raw.load(as: sockaddr_in.self)
                return .v4(IPv4Address(value: UInt32(bigEndian: sin.sin_addr.s_addr)))
            case AF_INET6:
                let sin6 = raw.load(as: sockaddr_in6.self)
                return withUnsafeBytes(of: sin6.sin6_addr) { IPv6Address(bytes: Array($0)).map(IPAddress.v6) }
            default:
                return nil
            }
        }
    }
}

/// An `errno` value carried as an error.
struct POSIXErrno: Error, Hashable {
    var code: Int32
}

/// Thin wrappers over the POSIX calls the stub resolver needs. Every descriptor is
/// non-blocking and close-on-exec, and every wait goes through `poll(2)` with a deadline.
enum POSIXSocket {
    #if canImport(Glibc) || canImport(Musl)
    static let datagram = Int32(SOCK_DGRAM.rawValue)
    static let stream = Int32(SOCK_STREAM.rawValue)
    #else
    static let datagram = SOCK_DGRAM
    static let stream = SOCK_STREAM
    #endif

    /// Opens a non-blocking socket connected to `address`; for UDP this only fixes the peer,
    /// so the kernel drops datagrams from anyone else (RFC 5452 §9.1 spoofing defence).
    /// For TCP the connect may still be in progress; wait for writability.
    static func connected(to address: POSIXSocketAddress, type: Int32) -> Result<Int32, POSIXErrno> {
        let fd = socket(address.family, type, 0)
        guard fd >= 0 else { return .failure(POSIXErrno(code: errno)) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var address = address
        let rc = withUnsafePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
        }
        if rc != 0 && errno != EINPROGRESS {
            let error = errno
            close(fd)
            return .failure(POSIXErrno(code: error))
        }
        return .success(fd)
    }

    /// The local address the kernel picked for a connected socket.
    static func localAddress(_ fd: Int32) -> IPAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return rc == 0 ? POSIXSocketAddress.address(of: storage) : nil
    }

    /// Waits until some descriptor is ready or `timeoutMilliseconds` pass; returns the
    /// `revents` per descriptor (all zero on timeout).
    static func waitReady(_ fds: [(fd: Int32, events: Int16)], timeoutMilliseconds: Int32) -> [Int16] {
        var pollfds = fds.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        while true {
            let rc = poll(&pollfds, nfds_t(pollfds.count), timeoutMilliseconds)
            if rc < 0 && errno == EINTR { continue }
            return pollfds.map { $0.revents }
        }
    }

    /// One `recv(2)`; `.success([])` never happens for UDP, and means EOF for TCP.
    static func receive(_ fd: Int32, maxLength: Int) -> Result<[UInt8], POSIXErrno> {
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, maxLength, 0) }
        guard count >= 0 else { return .failure(POSIXErrno(code: errno)) }
        return .success(Array(buffer[0..<count]))
    }

    /// One `send(2)`; returns the bytes written.
    static func sendBytes(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Result<Int, POSIXErrno> {
        #if canImport(Glibc) || canImport(Musl)
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, flags) }
        return count >= 0 ? .success(count) : .failure(POSIXErrno(code: errno))
    }

    /// Monotonic time in nanoseconds, for I/O deadlines.
    static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// Milliseconds left until `deadline`, rounded up so poll never spins at zero early.
    static func millisecondsUntil(_ deadline: UInt64) -> Int32 {
        let now = monotonicNanoseconds()
        guard deadline > now else { return 0 }
        return Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }
}
