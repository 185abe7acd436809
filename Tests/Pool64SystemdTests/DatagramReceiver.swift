#if canImport(Glibc)
import Glibc
#endif
import Foundation

@testable import Pool64Systemd

/// A stand-in for systemd's notification socket: an AF_UNIX datagram socket bound at a temp path or an abstract
/// name, read with a timeout.
final class DatagramReceiver {
    let fd: Int32
    /// The value to put in NOTIFY_SOCKET.
    let notifySocket: String
    private let directory: String?

    /// Binds at a fresh path in a temp directory, or (`abstract`) at a fresh abstract name.
    init(abstract: Bool) throws {
        let name = "pool64-notify-test-\(UUID().uuidString.prefix(8))"
        var directory: String?
        if abstract {
            notifySocket = "@" + name
        } else {
            let dir = NSTemporaryDirectory() + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            directory = dir
            notifySocket = dir + "/notify"
        }
        self.directory = directory
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        guard let address = try NotifySocketAddress(environmentValue: notifySocket) else { throw POSIXError(.EINVAL) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = address.sunPath
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: path) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? 2) + socklen_t(path.count)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard rc == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(fd)
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// The next datagram, or nil when none arrives within `timeout` seconds.
    func receive(timeout: Double = 2) -> String? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1_000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 8_192)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }
}
