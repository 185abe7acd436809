#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The result of sending one query to one nameserver.
enum DNSExchangeResult: Equatable {
    /// A matching reply arrived.
    case reply(DNSQueryOutcome)
    /// No matching reply before the deadline.
    case timeout
    /// A socket error (connection refused, no route …), or a reply that could not be parsed.
    case failed(String)
}

/// Blocking UDP and TCP exchanges with one nameserver, bounded by a deadline.
enum DNSTransport {
    /// Sends every question at once, each on its own connected UDP socket with its own random
    /// ID and source port (RFC 5452 §9.2), then waits for all replies with `poll(2)` until
    /// `deadline` (monotonic nanoseconds). Replies whose ID or question do not match are
    /// dropped and the wait goes on.
    static func exchangeUDP(
        server: DNSServer, name: String, types: [UInt16], deadline: UInt64
    ) -> [DNSExchangeResult] {
        var results = [DNSExchangeResult](repeating: .timeout, count: types.count)
        var sockets: [(fd: Int32, index: Int, id: UInt16)] = []
        defer { for socket in sockets { close(socket.fd) } }
        let address = POSIXSocketAddress(server.address, port: server.port)
        for (index, type) in types.enumerated() {
            let id = UInt16.random(in: .min ... .max)
            switch POSIXSocket.connected(to: address, type: POSIXSocket.datagram) {
            case .success(let fd):
                let query = DNSMessage.query(id: id, name: name, type: type)
                if case .failure(let error) = POSIXSocket.sendBytes(fd, query[...]) {
                    results[index] = .failed("send to \(server): \(String(cString: strerror(error.code)))")
                    close(fd)
                } else {
                    sockets.append((fd, index, id))
                }
            case .failure(let error):
                results[index] = .failed("socket to \(server): \(String(cString: strerror(error.code)))")
            }
        }
        var waiting = sockets
        while !waiting.isEmpty {
            let timeout = POSIXSocket.millisecondsUntil(deadline)
            if timeout == 0 { break }
            let events = POSIXSocket.waitReady(waiting.map { ($0.fd, Int16(POLLIN)) }, timeoutMilliseconds: timeout)
            var stillWaiting: [(fd: Int32, index: Int, id: UInt16)] = []
            for (socket, revents) in zip(waiting, events) {
                guard revents != 0 else {
                    stillWaiting.append(socket)
                    continue
                }
                switch POSIXSocket.receive(socket.fd, maxLength: 65_535) {
                case .success(let bytes):
                    let type = types[socket.index]
                    guard let response = try? DNSMessage.parse(bytes),
                        DNSMessage.matches(response, id: socket.id, name: name, type: type)
                    else {
                        stillWaiting.append(socket)
                        continue
                    }
                    results[socket.index] = .reply(DNSMessage.outcome(of: response, name: name, type: type))
                case .failure(let error) where error.code == EAGAIN || error.code == EINTR:
                    stillWaiting.append(socket)
                case .failure(let error):
                    // ECONNREFUSED here is the ICMP port unreachable of a connected UDP
                    // socket: the server is down, so move on without waiting out the timeout.
                    results[socket.index] = .failed("\(server): \(String(cString: strerror(error.code)))")
                }
            }
            waiting = stillWaiting
        }
        return results
    }

    /// One query over TCP with the two-byte length prefix (RFC 1035 §4.2.2), used after a
    /// truncated UDP reply (RFC 7766 §5).
    static func exchangeTCP(server: DNSServer, name: String, type: UInt16, deadline: UInt64) -> DNSExchangeResult {
        let fd: Int32
        switch POSIXSocket.connected(to: POSIXSocketAddress(server.address, port: server.port), type: POSIXSocket.stream) {
        case .success(let connected): fd = connected
        case .failure(let error): return .failed("tcp to \(server): \(String(cString: strerror(error.code)))")
        }
        defer { close(fd) }
        let id = UInt16.random(in: .min ... .max)
        let query = DNSMessage.query(id: id, name: name, type: type)
        var pending = [UInt8(query.count >> 8), UInt8(truncatingIfNeeded: query.count)] + query
        var received: [UInt8] = []
        while true {
            let timeout = POSIXSocket.millisecondsUntil(deadline)
            if timeout == 0 { return .timeout }
            let events = Int16(pending.isEmpty ? POLLIN : POLLOUT)
            let revents = POSIXSocket.waitReady([(fd, events)], timeoutMilliseconds: timeout)[0]
            if revents == 0 { continue }
            if !pending.isEmpty {
                switch POSIXSocket.sendBytes(fd, pending[...]) {
                case .success(let count): pending.removeFirst(count)
                case .failure(let error) where error.code == EAGAIN || error.code == EINTR: continue
                case .failure(let error): return .failed("tcp to \(server): \(String(cString: strerror(error.code)))")
                }
                continue
            }
            switch POSIXSocket.receive(fd, maxLength: 65_537 - received.count) {
            case .success(let bytes) where bytes.isEmpty:
                return .failed("tcp to \(server): connection closed before the reply")
            case .success(let bytes):
                received += bytes
            case .failure(let error) where error.code == EAGAIN || error.code == EINTR:
                continue
            case .failure(let error):
                return .failed("tcp to \(server): \(String(cString: strerror(error.code)))")
            }
            guard received.count >= 2 else { continue }
            let length = Int(received[0]) << 8 | Int(received[1])
            guard received.count >= 2 + length else { continue }
            guard let response = try? DNSMessage.parse(Array(received[2..<(2 + length)])),
                DNSMessage.matches(response, id: id, name: name, type: type)
            else { return .failed("tcp to \(server): reply does not match the question") }
            let outcome = DNSMessage.outcome(of: response, name: name, type: type)
            // A truncated TCP reply cannot be retried anywhere bigger; treat it as a failure.
            return outcome == .truncated ? .failed("tcp to \(server): truncated") : .reply(outcome)
        }
    }
}
