import CLibPQ
import NIOCore
import NIOPosix
import Pool64ServerTLS
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: helpers

/// A backend message: type byte and body (without the length word).
struct BackendMessage: Sendable {
    var type: UInt8
    var body: ByteBuffer

    var typeCharacter: Character { Character(Unicode.Scalar(type)) }

    /// Column values of a DataRow.
    func dataRowValues() -> [ByteBuffer?] {
        var body = self.body
        guard let count = body.readInteger(as: Int16.self) else { return [] }
        var values: [ByteBuffer?] = []
        for _ in 0..<count {
            let length = body.readInteger(as: Int32.self)!
            values.append(length < 0 ? nil : body.readSlice(length: Int(length))!)
        }
        return values
    }

    func string() -> String {
        var body = self.body
        return body.readNullTerminatedString() ?? ""
    }
}

/// Frames plaintext backend bytes; completes a promise after the expected number of ReadyForQuery messages.
/// All state is confined to the channel's event loop (hence `@unchecked Sendable`).
final class FrameCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private var pending = ByteBuffer()
    private var messages: [BackendMessage] = []
    private var waiter: (remaining: Int, promise: EventLoopPromise<[BackendMessage]>)?
    private(set) var plaintextReads = 0
    private(set) var errors: [any Error] = []
    /// Completed when the first plaintext bytes arrive (for the abandon-mid-result test).
    var firstBytes: EventLoopPromise<Void>?

    func expect(readyForQueryCount: Int, promise: EventLoopPromise<[BackendMessage]>) {
        precondition(waiter == nil)
        waiter = (readyForQueryCount, promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        plaintextReads += 1
        firstBytes?.succeed(())
        firstBytes = nil
        if pending.readableBytes == 0 {
            pending = buffer
        } else {
            pending.writeBuffer(&buffer)
        }
        while pending.readableBytes >= 5 {
            let length = Int(pending.getInteger(at: pending.readerIndex + 1, as: Int32.self)!)
            guard pending.readableBytes >= 1 + length else { break }
            let type = pending.readInteger(as: UInt8.self)!
            pending.moveReaderIndex(forwardBy: 4)
            let body = pending.readSlice(length: length - 4)!
            messages.append(BackendMessage(type: type, body: body))
            if type == UInt8(ascii: "Z"), var w = waiter {
                w.remaining -= 1
                if w.remaining == 0 {
                    waiter = nil
                    let done = messages
                    messages = []
                    w.promise.succeed(done)
                } else {
                    waiter = w
                }
            }
        }
        if pending.readableBytes == 0 { pending.clear() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
        waiter?.promise.fail(error)
        waiter = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        waiter?.promise.fail(ChannelError.eof)
        waiter = nil
        firstBytes?.fail(ChannelError.eof)
        firstBytes = nil
        context.fireChannelInactive()
    }
}

/// `PGconn *` for use in `@Sendable` closures. The tests hand it from thread to thread but never use it
/// concurrently: libpq is idle while the channel relays.
struct ConnectionBox: @unchecked Sendable {
    let conn: OpaquePointer
}

func queryMessage(_ sql: String) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(sql.utf8.count + 6)
    buffer.writeInteger(UInt8(ascii: "Q"))
    buffer.writeInteger(Int32(4 + sql.utf8.count + 1))
    buffer.writeString(sql)
    buffer.writeInteger(UInt8(0))
    return buffer
}

struct LibPQError: Error, CustomStringConvertible {
    var description: String
}

func connect(_ conninfo: String) throws -> OpaquePointer {
    guard let conn = PQconnectdb(conninfo) else { throw LibPQError(description: "PQconnectdb returned NULL") }
    guard PQstatus(conn) == CONNECTION_OK else {
        let message = String(cString: PQerrorMessage(conn))
        PQfinish(conn)
        throw LibPQError(description: "connection failed: \(message)")
    }
    return conn
}

/// Runs `sql` through libpq and returns the first value.
func libpqScalar(_ conn: OpaquePointer, _ sql: String) -> String? {
    guard let result = PQexec(conn, sql) else { return nil }
    defer { PQclear(result) }
    guard PQresultStatus(result) == PGRES_TUPLES_OK, PQntuples(result) == 1 else { return nil }
    return String(cString: PQgetvalue(result, 0, 0))
}

/// A relay channel on a duplicate of libpq's socket: LibPQTLSHandler first, then a FrameCollector.
struct Relay {
    let channel: any Channel
    let collector: FrameCollector

    static func adopt(_ conn: OpaquePointer, group: any EventLoopGroup) async throws -> Relay {
        let fd = fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0)
        #expect(fd >= 0)
        let box = ConnectionBox(conn: conn)
        let collector = FrameCollector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LibPQTLSHandler(connection: box.conn))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .withConnectedSocket(fd)
            .get()
        return Relay(channel: channel, collector: collector)
    }

    /// Sends `request` and waits for `readyForQueryCount` ReadyForQuery messages.
    func roundTrip(_ request: ByteBuffer, readyForQueryCount: Int = 1) async throws -> [BackendMessage] {
        let channel = self.channel
        let collector = self.collector
        return try await channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: [BackendMessage].self)
            collector.expect(readyForQueryCount: readyForQueryCount, promise: promise)
            channel.writeAndFlush(request).whenFailure { promise.fail($0) }
            return promise.futureResult
        }.get()
    }

    func handlerState() async throws -> (attached: Bool, tlsVersion: Int?) {
        let channel = self.channel
        return try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: LibPQTLSHandler.self)
            return (handler.isAttached, handler.tlsProtocolVersion)
        }.get()
    }

    /// Closes the channel and waits until it is closed (the handler has detached by then).
    func close() async throws {
        try await channel.close()
        try await channel.closeFuture.get()
    }
}

/// Asserts the frames of a one-row, one-column simple query and returns the value.
func singleValue(_ messages: [BackendMessage], sourceLocation: SourceLocation = #_sourceLocation) -> ByteBuffer? {
    let types = String(messages.map(\.typeCharacter))
    #expect(types == "TDCZ", "frames \(types)", sourceLocation: sourceLocation)
    guard types == "TDCZ" else { return nil }
    #expect(messages[2].string() == "SELECT 1", sourceLocation: sourceLocation)
    #expect(messages[3].body.getInteger(at: messages[3].body.readerIndex, as: UInt8.self) == UInt8(ascii: "I"))
    return messages[1].dataRowValues().first ?? nil
}

/// Detaches (by closing), checks libpq still works on the connection, PQfinishes it, and checks the server saw
/// a clean Terminate (no EOF / SSL errors logged by that backend).
func closeHandBackAndFinish(
    _ relay: Relay,
    _ conn: OpaquePointer,
    server: PostgresServer,
    expectLibPQReuse: Bool = true
) async throws {
    let pid = PQbackendPID(conn)
    try await relay.close()
    #expect(relay.collector.errors.isEmpty, "errors: \(relay.collector.errors)")
    if expectLibPQReuse {
        #expect(PQsslInUse(conn) == 1)
        #expect(libpqScalar(conn, "SELECT 40 + 2") == "42", "libpq can use the connection after the relay")
        #expect(PQtransactionStatus(conn) == PQTRANS_IDLE)
    }
    PQfinish(conn)
    let lines = try await server.waitForDisconnection(pid: pid)
    #expect(lines.contains { $0.contains("disconnection:") }, "backend \(pid) did not log its disconnection")
    let bad = lines.filter {
        $0.contains("unexpected EOF") || $0.contains("SSL") || $0.contains("could not receive")
            || $0.contains("could not send")
    }
    #expect(bad.isEmpty, "backend \(pid) logged: \(bad)")
}

func withEventLoopGroup(_ body: (MultiThreadedEventLoopGroup) async throws -> Void) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        try await body(group)
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
    try await group.shutdownGracefully()
}

// MARK: tests

@Suite(.serialized, .postgresWithTLS)
struct LibPQTLSHandlerTests {
    @Test func selectsLargeRowsAndLargeQueriesOverLibPQTLS() async throws {
        guard let server = SharedPostgres.server else { return }
        try await withEventLoopGroup { group in
            let conn = try connect(server.conninfo())
            #expect(PQsslInUse(conn) == 1)
            let relay = try await Relay.adopt(conn, group: group)
            let state = try await relay.handlerState()
            #expect(state.attached)
            #expect(state.tlsVersion == 0x0304, "TLS 1.3 expected")

            // SELECT 1
            let one = singleValue(try await relay.roundTrip(queryMessage("SELECT 1")))
            #expect(one.map { String(buffer: $0) } == "1")

            // A 4 MB DataRow, received across many TLS records.
            let big = singleValue(try await relay.roundTrip(queryMessage("SELECT repeat('x', 4000000)")))
            #expect(big?.readableBytes == 4_000_000)
            #expect(big?.readableBytesView.allSatisfy { $0 == UInt8(ascii: "x") } == true)

            // An 8 MB query text, sent across many TLS records.
            let length = 8 * 1024 * 1024
            let sql = "SELECT length('" + String(repeating: "y", count: length) + "')"
            let counted = singleValue(try await relay.roundTrip(queryMessage(sql)))
            #expect(counted.map { String(buffer: $0) } == "\(length)")

            // 100 pipelined queries in one write: responses are framed across arbitrary reads.
            var batch = ByteBuffer()
            for i in 0..<100 { batch.writeImmutableBuffer(queryMessage("SELECT \(i)")) }
            let responses = try await relay.roundTrip(batch, readyForQueryCount: 100)
            let rows = responses.filter { $0.type == UInt8(ascii: "D") }.map { String(buffer: $0.dataRowValues()[0]!) }
            #expect(rows == (0..<100).map(String.init))

            try await closeHandBackAndFinish(relay, conn, server: server)
        }
    }

    @Test func manySequentialRoundTrips() async throws {
        guard let server = SharedPostgres.server else { return }
        try await withEventLoopGroup { group in
            let conn = try connect(server.conninfo())
            #expect(PQsslInUse(conn) == 1)
            let relay = try await Relay.adopt(conn, group: group)
            let request = queryMessage("SELECT 1")
            let clock = ContinuousClock()
            let start = clock.now
            for i in 0..<2000 {
                let messages = try await relay.roundTrip(request)
                let value = singleValue(messages)
                if value.map({ String(buffer: $0) }) != "1" {
                    Issue.record("round trip \(i) returned \(messages.map(\.typeCharacter))")
                    break
                }
            }
            print("Pool64ServerTLSTests: 2000 sequential SELECT 1 through LibPQTLSHandler in \(clock.now - start)")
            try await closeHandBackAndFinish(relay, conn, server: server)
        }
    }

    @Test func tls13KeyUpdatesBothWays() async throws {
        guard let server = SharedPostgres.server else { return }
        try await withEventLoopGroup { group in
            let conn = try connect(server.conninfo())
            let relay = try await Relay.adopt(conn, group: group)
            for round in 0..<5 {
                // Our keys change, and the server must answer with a KeyUpdate of its own, which arrives as ciphertext
                // ahead of the next response and is consumed inside SSL_read.
                try await relay.channel.triggerUserOutboundEvent(LibPQTLSKeyUpdate(requestPeerUpdate: true)).get()
                let value = singleValue(try await relay.roundTrip(queryMessage("SELECT \(round)")))
                #expect(value.map { String(buffer: $0) } == "\(round)")
                let big = singleValue(try await relay.roundTrip(queryMessage("SELECT repeat('z', 100000)")))
                #expect(big?.readableBytes == 100_000)
            }
            // libpq continues on the updated keys after the handover.
            try await closeHandBackAndFinish(relay, conn, server: server)
        }
    }

    @Test func abandoningMidResultStillFinishesCleanly() async throws {
        guard let server = SharedPostgres.server else { return }
        try await withEventLoopGroup { group in
            let conn = try connect(server.conninfo())
            let relay = try await Relay.adopt(conn, group: group)
            let channel = relay.channel
            let collector = relay.collector
            // Ask for 50 MB and walk away after the first plaintext arrives.
            try await channel.eventLoop.flatSubmit {
                let first = channel.eventLoop.makePromise(of: Void.self)
                collector.firstBytes = first
                channel.writeAndFlush(queryMessage("SELECT repeat('x', 50000000)"), promise: nil)
                return first.futureResult
            }.get()
            try await relay.close()
            let state = try? await relay.handlerState()
            #expect(state == nil || state?.attached == false)
            // Not reusable (the stream is mid-record), but PQfinish must not crash or hang.
            let clock = ContinuousClock()
            let start = clock.now
            let pid = PQbackendPID(conn)
            PQfinish(conn)
            #expect(clock.now - start < .seconds(30))
            let lines = try await server.waitForDisconnection(pid: pid)
            print("Pool64ServerTLSTests: backend log after abandoning a result: \(lines.filter { !$0.contains("DEBUG") })")
        }
    }

    /// Negative control for the log check in `closeHandBackAndFinish`: a TLS client that vanishes without
    /// Terminate is visible in the server log.
    @Test func serverLogShowsConnectionsDroppedWithoutTerminate() async throws {
        guard let server = SharedPostgres.server else { return }
        let conn = try connect(server.conninfo())
        let pid = PQbackendPID(conn)
        // Cut the connection under libpq: its Terminate and close_notify go nowhere.
        shutdown(PQsocket(conn), Int32(SHUT_RDWR))
        PQfinish(conn)
        let lines = try await server.waitForDisconnection(pid: pid)
        print("Pool64ServerTLSTests: backend log after a dropped connection: \(lines.filter { !$0.contains("DEBUG") })")
        #expect(lines.contains { $0.contains("unexpected EOF") || $0.contains("SSL") || $0.contains("could not receive") })
    }

    @Test func attachFailsOnPlainConnections() async throws {
        guard let server = SharedPostgres.server else { return }
        try await withEventLoopGroup { group in
            let conn = try connect(server.conninfo(sslmode: "disable"))
            defer { PQfinish(conn) }
            #expect(PQsslInUse(conn) == 0)
            let relay = try await Relay.adopt(conn, group: group)
            try await relay.channel.closeFuture.get()
            let errors = try await relay.channel.eventLoop.submit { relay.collector.errors }.get()
            #expect(errors.count == 1)
            #expect((errors.first as? LibPQTLSError)?.kind == .attachFailed)
            // The plain connection itself is untouched.
            #expect(libpqScalar(conn, "SELECT 7") == "7")
        }
    }
}
