import Foundation
@testable import Pool64Resolver

#if canImport(Glibc)
import Glibc
#endif

/// A tiny authoritative DNS server on loopback (UDP and TCP on one ephemeral port) that
/// answers from a closure, for exercising the stub resolver without any network.
final class FakeDNSServer: @unchecked Sendable {
    struct Record {
        var name: String
        var type: UInt16
        var ttl: UInt32
        var rdata: [UInt8]

        static func a(_ name: String, _ address: String, ttl: UInt32 = 60) -> Record {
            Record(name: name, type: 1, ttl: ttl, rdata: IPv4Address(address)!.bytes)
        }
        static func aaaa(_ name: String, _ address: String, ttl: UInt32 = 60) -> Record {
            Record(name: name, type: 28, ttl: ttl, rdata: IPv6Address(address)!.bytes)
        }
        static func cname(_ name: String, _ target: String, ttl: UInt32 = 60) -> Record {
            Record(name: name, type: 5, ttl: ttl, rdata: FakeDNSServer.encode(target))
        }
    }

    struct Reply {
        var rcode: UInt8 = 0
        var answers: [Record] = []
        /// Over UDP send only the header with TC set; TCP gets the full answer.
        var truncateOverUDP = false
        /// Send nothing (the client times out).
        var drop = false
        /// Send a reply with the wrong ID first (the client must ignore it).
        var wrongIDFirst = false
        /// Add an SOA to the authority section with this MINIMUM (and TTL).
        var soaMinimum: UInt32?
    }

    struct Query: Equatable {
        var name: String
        var type: UInt16
        var overTCP: Bool
    }

    let address: IPAddress
    private(set) var port: UInt16 = 0
    private let handler: @Sendable (String, UInt16) -> Reply
    private let queries = Locked<[Query]>([])
    private let stopped = Locked(false)
    private var udp: Int32 = -1
    private var tcp: Int32 = -1
    private let done = DispatchSemaphore(value: 0)

    var server: DNSServer { DNSServer(address: address, port: port) }
    var received: [Query] { queries.withLock { $0 } }

    init(address: IPAddress = .v4(IPv4Address(127, 0, 0, 1)), handler: @escaping @Sendable (String, UInt16) -> Reply) throws {
        self.address = address
        self.handler = handler
        let family: Int32 = address.isIPv4 ? AF_INET : AF_INET6
        // The TCP listener must share the UDP port; another socket may hold that TCP port,
        // so pick a new UDP port until both binds succeed.
        for _ in 0..<50 {
            udp = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
            var bindAddress = POSIXSocketAddress(address, port: 0)
            guard udp >= 0, Self.bind(udp, &bindAddress) else { throw POSIXErrno(code: errno) }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(udp, $0, &length) }
            }
            port = withUnsafeBytes(of: storage) { raw in UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self)) }
            tcp = socket(family, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var tcpAddress = POSIXSocketAddress(address, port: port)
            if Self.bind(tcp, &tcpAddress), listen(tcp, 8) == 0 { break }
            close(tcp)
            close(udp)
            tcp = -1
            udp = -1
        }
        guard tcp >= 0 else { throw POSIXErrno(code: EADDRINUSE) }
        let thread = Thread { [self] in self.run() }
        thread.start()
    }

    private static func bind(_ fd: Int32, _ address: inout POSIXSocketAddress) -> Bool {
        let length = address.length
        return withUnsafePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) == 0 }
        }
    }

    func stop() {
        stopped.withLock { $0 = true }
        done.wait()
        close(udp)
        close(tcp)
    }

    private func run() {
        defer { done.signal() }
        while !stopped.withLock({ $0 }) {
            var fds = [pollfd(fd: udp, events: Int16(POLLIN), revents: 0), pollfd(fd: tcp, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 20) > 0 else { continue }
            if fds[0].revents != 0 { serveUDP() }
            if fds[1].revents != 0 { serveTCP() }
        }
    }

    private func serveUDP() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp, raw.baseAddress, raw.count, 0, $0, &peerLength) }
            }
        }
        guard count > 0, let (id, name, type, question) = Self.parseQuery(Array(buffer[0..<count])) else { return }
        queries.withLock { $0.append(Query(name: name, type: type, overTCP: false)) }
        let reply = handler(name, type)
        if reply.drop { return }
        var messages: [[UInt8]] = []
        if reply.wrongIDFirst { messages.append(Self.response(id: id &+ 1, question: question, reply: reply, udp: true)) }
        messages.append(Self.response(id: id, question: question, reply: reply, udp: true))
        for message in messages {
            _ = message.withUnsafeBytes { raw in
                withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp, raw.baseAddress, raw.count, 0, $0, peerLength) }
                }
            }
        }
    }

    private func serveTCP() {
        let connection = accept(tcp, nil, nil)
        guard connection >= 0 else { return }
        defer { close(connection) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count < 2 || received.count < 2 + (Int(received[0]) << 8 | Int(received[1])) {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            received += buffer[0..<count]
        }
        guard let (id, name, type, question) = Self.parseQuery(Array(received[2...])) else { return }
        queries.withLock { $0.append(Query(name: name, type: type, overTCP: true)) }
        let message = Self.response(id: id, question: question, reply: handler(name, type), udp: false)
        let framed = [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        _ = framed.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    static func encode(_ name: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        return bytes + [0]
    }

    private static func parseQuery(_ bytes: [UInt8]) -> (UInt16, String, UInt16, [UInt8])? {
        guard bytes.count > 12 else { return nil }
        var offset = 12
        var labels: [String] = []
        while offset < bytes.count, bytes[offset] != 0 {
            let length = Int(bytes[offset])
            guard offset + 1 + length < bytes.count else { return nil }
            labels.append(String(decoding: bytes[(offset + 1)...(offset + length)], as: UTF8.self))
            offset += 1 + length
        }
        guard offset + 5 <= bytes.count else { return nil }
        let type = UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset + 2])
        let question = Array(bytes[12..<(offset + 5)])
        return (UInt16(bytes[0]) << 8 | UInt16(bytes[1]), labels.joined(separator: ".").lowercased(), type, question)
    }

    private static func response(id: UInt16, question: [UInt8], reply: Reply, udp: Bool) -> [UInt8] {
        let truncated = udp && reply.truncateOverUDP
        let answers = truncated ? [] : reply.answers
        let authority = truncated ? 0 : (reply.soaMinimum == nil ? 0 : 1)
        var flags: UInt16 = 0x8180 | UInt16(reply.rcode)
        if truncated { flags |= 0x0200 }
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 1,
                              0, UInt8(answers.count), 0, UInt8(authority), 0, 0]
        bytes += question
        func append(_ record: Record) {
            bytes += encode(record.name)
            bytes += [UInt8(record.type >> 8), UInt8(record.type & 0xFF), 0, 1]
            bytes += withUnsafeBytes(of: record.ttl.bigEndian, Array.init)
            bytes += [UInt8(record.rdata.count >> 8), UInt8(record.rdata.count & 0xFF)] + record.rdata
        }
        answers.forEach(append)
        if authority == 1, let minimum = reply.soaMinimum {
            let rdata = encode("ns.test") + encode("hostmaster.test") + [UInt8](repeating: 0, count: 16)
                + withUnsafeBytes(of: minimum.bigEndian, Array.init)
            append(Record(name: "test", type: 6, ttl: minimum, rdata: rdata))
        }
        return bytes
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let value = Locked<UInt64>(1_000_000_000_000)

    var resolverClock: ResolverClock { ResolverClock(now: { self.value.withLock { $0 } }) }

    func advance(seconds: UInt64) { value.withLock { $0 += seconds * 1_000_000_000 } }
}
