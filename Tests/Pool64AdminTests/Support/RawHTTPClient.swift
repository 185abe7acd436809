import Foundation
import NIOCore
import NIOPosix

/// A parsed HTTP/1.1 response as the raw test client saw it.
struct RawHTTPResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    var text: String { String(decoding: self.body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A deliberately tiny HTTP client over a raw TCP connection, so tests control every byte sent (pipelining,
/// oversized heads, silence) and read exactly what the server wrote.
final class RawHTTPConnection {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer: [UInt8] = []

    private init(
        iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) {
        self.iterator = iterator
        self.outbound = outbound
    }

    /// Connects to `address`, runs `body`, then closes the connection.
    static func with<Result>(
        _ address: SocketAddress, _ body: (RawHTTPConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = RawHTTPConnection(iterator: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(connection)
        }
    }

    /// Sends `text` exactly as given.
    func send(_ text: String) async throws {
        try await self.outbound.write(ByteBuffer(string: text))
    }

    /// Sends `GET path` with optional extra header lines and reads the response.
    func get(_ path: String, headers: [String] = []) async throws -> RawHTTPResponse {
        let extra = headers.map { $0 + "\r\n" }.joined()
        try await self.send("GET \(path) HTTP/1.1\r\nHost: test\r\n\(extra)\r\n")
        guard let response = try await self.readResponse() else { throw RawHTTPError.closed }
        return response
    }

    /// Reads one response, or nil when the server closed before sending one.
    func readResponse() async throws -> RawHTTPResponse? {
        while true {
            if let (response, consumed) = try Self.parse(self.buffer) {
                self.buffer.removeFirst(consumed)
                return response
            }
            guard let chunk = try await self.iterator.next() else { return nil }
            self.buffer.append(contentsOf: chunk.readableBytesView)
        }
    }

    /// Whether the server closed the connection (reads until EOF, failing if a response arrives instead).
    func readUntilClosed() async throws -> Bool {
        do {
            while let chunk = try await self.iterator.next() {
                self.buffer.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            // A reset counts as closed.
        }
        return true
    }

    /// Everything the server sends until it closes, unparsed.
    func readRawUntilClosed() async throws -> String {
        _ = try await self.readUntilClosed()
        defer { self.buffer = [] }
        return String(decoding: self.buffer, as: UTF8.self)
    }

    private static func parse(_ bytes: [UInt8]) throws -> (RawHTTPResponse, Int)? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard bytes.count >= 4,
            let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == separator })
        else { return nil }
        let headText = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw RawHTTPError.malformed(headText) }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (
                String(line[..<colon]),
                line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            )
        }
        let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        let bodyStart = end + 4
        guard bytes.count >= bodyStart + length else { return nil }
        let response = RawHTTPResponse(
            status: status, headers: headers, body: Array(bytes[bodyStart..<(bodyStart + length)]))
        return (response, bodyStart + length)
    }
}

enum RawHTTPError: Error {
    case closed
    case malformed(String)
}
