import CPool64Sys
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Pool64Stats
import Pool64Wire
import Testing

@testable import Pool64Core

/// The relay loop as a NIO EventLoop (tasks, timers, futures) and its socket transport over a real socketpair.
@Suite struct RelayLoopTests {
    @Test func tasksRunInOrderOnTheLoopThread() throws {
        let loop = RelayLoop(name: "test-relay")
        defer { try? loop.syncShutdownGracefully() }
        let seen = NIOLockedValueBox<[Int]>([])
        for i in 0..<100 {
            loop.execute {
                precondition(loop.inEventLoop)
                seen.withLockedValue { $0.append(i) }
            }
        }
        let inLoop = try loop.submit { loop.inEventLoop }.wait()
        #expect(inLoop)
        #expect(!loop.inEventLoop)
        #expect(seen.withLockedValue { $0 } == Array(0..<100))
    }

    @Test func timersFireByDeadlineAndCancelledOnesNever() throws {
        let loop = RelayLoop(name: "test-relay")
        defer { try? loop.syncShutdownGracefully() }
        let fired = NIOLockedValueBox<[String]>([])
        let late = loop.scheduleTask(in: .milliseconds(60)) { fired.withLockedValue { $0.append("late") } }
        let early = loop.scheduleTask(in: .milliseconds(20)) { fired.withLockedValue { $0.append("early") } }
        let cancelled = loop.scheduleTask(in: .milliseconds(40)) { fired.withLockedValue { $0.append("cancelled") } }
        cancelled.cancel()
        try early.futureResult.wait()
        try late.futureResult.wait()
        #expect(throws: EventLoopError.self) { try cancelled.futureResult.wait() }
        #expect(fired.withLockedValue { $0 } == ["early", "late"])
    }

    @Test func timerHeapOrdersByDeadlineThenInsertion() {
        var heap = TimerHeap()
        let base = NIODeadline.now()
        let offsets: [Int64] = [50, 10, 30, 10, 40, 0, 20]
        for (i, o) in offsets.enumerated() {
            let e = TimerEntry(deadline: base + .milliseconds(o))
            e.sequence = UInt64(i)
            heap.insert(e)
        }
        var order: [UInt64] = []
        while let e = heap.removeFirst() { order.append(e.sequence) }
        #expect(order == [5, 1, 3, 6, 2, 4, 0])
    }

    /// Records what a transport reports.
    final class Recorder: TransportDelegate, @unchecked Sendable {
        var bytes: [UInt8] = []
        var closed: String?? = nil
        var writability: [Bool] = []
        override func received(_ buffer: ByteBuffer) { bytes += buffer.readableBytesView }
        override func readComplete() {}
        override func writabilityChanged(_ writable: Bool) { writability.append(writable) }
        override func transportClosed(_ error: String?) { closed = .some(error) }
    }

    /// A SocketConnection on `loop` over one end of a socketpair, reporting to a Recorder; the other end is the
    /// test's (close it).
    func connection(on loop: RelayLoop) throws -> (conn: SocketConnection, rec: Recorder, peer: Int32) {
        var fds: [Int32] = [0, 0]
        let rc = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
        precondition(rc == 0)
        let rec = Recorder()
        let conn = try loop.submit { () -> SocketConnection in
            let c = SocketConnection(fd: fds[0], loop: loop)
            c.delegate = rec
            _ = c.start()
            return c
        }.wait()
        #expect(try loop.submit { conn.isOpen }.wait())  // start() succeeded
        return (conn, rec, fds[1])
    }

    func waitUntil(_ loop: RelayLoop, _ condition: @escaping () -> Bool) throws -> Bool {
        for _ in 0..<200 {
            if try loop.submit({ condition() }).wait() { return true }
            usleep(10_000)
        }
        return false
    }

    /// What the non-blocking descriptor `b` has to read, waiting up to half a second for the first bytes.
    func readSome(_ b: Int32) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 16)
        var n = -1
        for _ in 0..<100 where n < 0 {
            n = read(b, &buf, 16)
            if n < 0 { usleep(5_000) }
        }
        return Array(buf[0..<max(n, 0)])
    }

    /// Logs `flushDeferred` calls; queues `chained` from its own flush.
    final class DeferredFlushLog: TransportDelegate, @unchecked Sendable {
        let name: String
        let log: NIOLockedValueBox<[String]>
        var chained: DeferredFlushLog?
        unowned(unsafe) let loop: RelayLoop
        init(_ name: String, _ log: NIOLockedValueBox<[String]>, _ loop: RelayLoop) {
            self.name = name
            self.log = log
            self.loop = loop
            super.init()
        }
        override func flushDeferred() {
            log.withLockedValue { $0.append("flush \(name)") }
            if let chained { loop.flushAtEndOfTurn(chained) }
        }
    }

    @Test func deferredFlushesRunOnceEachAfterTheTurnsWork() throws {
        let loop = RelayLoop(name: "test-relay")
        defer { try? loop.syncShutdownGracefully() }
        let log = NIOLockedValueBox<[String]>([])
        let a = DeferredFlushLog("a", log, loop)
        let b = DeferredFlushLog("b", log, loop)
        let c = DeferredFlushLog("c", log, loop)
        b.chained = c
        loop.execute {
            loop.flushAtEndOfTurn(a)
            loop.flushAtEndOfTurn(b)
            loop.flushAtEndOfTurn(a)  // already queued: one flush
            log.withLockedValue { $0.append("task") }
        }
        #expect(try waitUntil(loop) { log.withLockedValue { $0.count } >= 4 })
        // A flush that queues another delegate gets it flushed in the same pass, before the next turn.
        #expect(log.withLockedValue { $0 } == ["task", "flush a", "flush b", "flush c"])
        // Flushed delegates can be queued again on a later turn.
        try loop.submit { loop.flushAtEndOfTurn(a) }.wait()
        #expect(try waitUntil(loop) { log.withLockedValue { $0.count } == 5 })
        #expect(log.withLockedValue { $0.last } == "flush a")
    }

    @Test func socketConnectionReadsWritesAndReportsEOF() throws {
        let loop = RelayLoop(name: "test-relay")
        defer { try? loop.syncShutdownGracefully() }
        let (conn, rec, b) = try connection(on: loop)
        defer { close(b) }
        let msg: [UInt8] = Array("hello relay".utf8)
        #expect(write(b, msg, msg.count) == msg.count)
        #expect(try waitUntil(loop) { rec.bytes == msg })
        try loop.submit {
            var out = ByteBuffer()
            out.writeString("back")
            conn.send(out)
        }.wait()
        #expect(readSome(b) == Array("back".utf8))
        shutdown(b, Int32(SHUT_WR))
        #expect(try waitUntil(loop) { rec.closed != nil })
        #expect(rec.closed == .some(nil))
        #expect(try loop.submit { conn.isOpen }.wait() == false)
    }

    @Test func sendNowWritesDirectlyOnlyWhenNothingIsQueued() throws {
        let loop = RelayLoop(name: "test-relay")
        defer { try? loop.syncShutdownGracefully() }
        let (conn, _, b) = try connection(on: loop)
        defer { close(b) }
        let msg: [UInt8] = Array("direct".utf8)
        #expect(try loop.submit { msg.withUnsafeBytes { conn.sendNow($0) } }.wait() == msg.count)
        #expect(readSome(b) == msg)
        // Fill the socket until bytes are queued: then a direct write must not jump ahead of them.
        let queued = try loop.submit { () -> Int in
            var chunk = ByteBuffer()
            chunk.writeRepeatingByte(7, count: 64 * 1024)
            for _ in 0..<64 { conn.send(chunk) }
            return msg.withUnsafeBytes { conn.sendNow($0) }
        }.wait()
        #expect(queued == 0)
    }

    @Test func socketConnectionKeepsWhatTheKernelRefusesAndReportsBackpressure() throws {
        let loop = RelayLoop(name: "test-relay")
        defer { try? loop.syncShutdownGracefully() }
        let (conn, rec, b) = try connection(on: loop)
        defer { close(b) }
        // Far more than the socket buffers hold: the rest stays pending and the transport turns unwritable.
        let total = 4 * 1024 * 1024
        try loop.submit {
            var chunk = ByteBuffer()
            chunk.writeRepeatingByte(7, count: 64 * 1024)
            for _ in 0..<(total / chunk.readableBytes) { conn.send(chunk) }
        }.wait()
        #expect(try loop.submit { conn.isWritable }.wait() == false)
        #expect(rec.writability == [false])
        var received = 0
        var buf = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<2000 where received < total {
            let n = read(b, &buf, buf.count)
            if n > 0 { received += n } else { usleep(1_000) }
        }
        #expect(received == total)
        #expect(try waitUntil(loop) { rec.writability == [false, true] })
        #expect(try loop.submit { conn.isWritable }.wait())
    }

    @Test func unnamedStatementMessagesAreRecognisedFromRawBytes() {
        func frame(_ type: UInt8, _ body: [UInt8]) -> ByteBuffer {
            var b = ByteBuffer()
            b.writeInteger(type)
            b.writeInteger(Int32(body.count + 4))
            b.writeBytes(body)
            return b
        }
        let z: [UInt8] = [0]
        let q = Array("SELECT 1".utf8) + z + [0, 0]
        #expect(ClientSession.unnamedExpectation(FrontendType.parse, frame(FrontendType.parse, z + q)) == .parse(swallow: false))
        #expect(ClientSession.unnamedExpectation(FrontendType.parse, frame(FrontendType.parse, Array("s1".utf8) + z + q)) == nil)
        // Bind: portal "" or "p1", statement "" → verbatim; statement "s1" → needs mapping
        #expect(ClientSession.unnamedExpectation(FrontendType.bind, frame(FrontendType.bind, z + z + [0, 0, 0, 0, 0, 0])) == .bind)
        #expect(ClientSession.unnamedExpectation(FrontendType.bind, frame(FrontendType.bind, Array("p1".utf8) + z + z + [0, 0])) == .bind)
        #expect(ClientSession.unnamedExpectation(FrontendType.bind, frame(FrontendType.bind, z + Array("s1".utf8) + z + [0, 0])) == nil)
        // Describe/Close: portals always verbatim; statements only when unnamed
        #expect(ClientSession.unnamedExpectation(FrontendType.describe, frame(FrontendType.describe, [UInt8(ascii: "P")] + Array("p1".utf8) + z)) == .describe)
        #expect(ClientSession.unnamedExpectation(FrontendType.describe, frame(FrontendType.describe, [UInt8(ascii: "S")] + z)) == .describe)
        #expect(ClientSession.unnamedExpectation(FrontendType.describe, frame(FrontendType.describe, [UInt8(ascii: "S")] + Array("s1".utf8) + z)) == nil)
        #expect(ClientSession.unnamedExpectation(FrontendType.close, frame(FrontendType.close, [UInt8(ascii: "S")] + Array("s1".utf8) + z)) == nil)
        #expect(ClientSession.unnamedExpectation(FrontendType.close, frame(FrontendType.close, [UInt8(ascii: "P")] + z)) == .close)
        // truncated bodies never match
        #expect(ClientSession.unnamedExpectation(FrontendType.bind, frame(FrontendType.bind, [])) == nil)
    }

    @Test func parseQueryTextIsFoundBehindAnyStatementName() {
        func query(_ body: [UInt8]) -> String? {
            var b = ByteBuffer()
            b.writeInteger(FrontendType.parse)
            b.writeInteger(Int32(body.count + 4))
            b.writeBytes(body)
            return b.withUnsafeReadableBytes { raw in
                ClientSession.parseQuery(raw).map { String(decoding: $0, as: UTF8.self) }
            }
        }
        let z: [UInt8] = [0]
        #expect(query(z + Array("RESET ALL".utf8) + z + [0, 0]) == "RESET ALL")
        #expect(query(Array("s1".utf8) + z + Array("DISCARD ALL".utf8) + z + [0, 0]) == "DISCARD ALL")
        // A name with no NUL after it has no query; a query cut before its NUL is taken to the end.
        #expect(query(Array("s1".utf8)) == nil)
        #expect(query(z + Array("RESET".utf8)) == "RESET")
        #expect(query([]) == nil)
        // Session mode looks at named statements too (a RESET prepared under a name).
        var b = ByteBuffer()
        b.writeInteger(FrontendType.parse)
        let body = Array("s1".utf8) + z + Array("reset all".utf8) + z + [0, 0]
        b.writeInteger(Int32(body.count + 4))
        b.writeBytes(body)
        #expect(b.withUnsafeReadableBytes { ClientSession.queryMightAffectSession(parse: $0) })
    }
}

/// The latency histogram's export for Prometheus.
@Suite struct LatencyHistogramExportTests {
    @Test func cumulativeCountsAndSum() {
        var h = LatencyHistogram()
        for v: UInt64 in [50, 90, 120, 400, 400, 900, 3_000, 2_000_000] { h.record(micros: v) }
        let bounds: [UInt64] = [100, 500, 1_000, 5_000, 10_000_000]
        #expect(h.cumulative(bounds: bounds) == [2, 5, 6, 7, 8])
        let s = h.snapshot
        #expect(s.count == 8)
        #expect(s.sumMicros == 50 + 90 + 120 + 400 + 400 + 900 + 3_000 + 2_000_000)
        #expect(s.cumulativeBuckets?.count == LatencyPercentiles.bucketBoundsMicros.count)
        #expect(s.cumulativeBuckets?.last == 8)
    }
}

/// The response tracker's ring of expectations.
@Suite struct ExpectationQueueTests {
    @Test func fifoAcrossWrapAroundAndGrowth() {
        var q = ExpectationQueue()
        var model: [Pool64Core.Expectation] = []
        let kinds: [Pool64Core.Expectation] = [
            .bind, .describe, .execute, .sync, .parse(swallow: true), .close, .staleBind, .describeShape, .deallocate,
        ]
        for round in 0..<200 {
            // push a varying number, pop a varying number: exercises wrap-around and growth past 12 (five-bit codes up to 17)
            for i in 0..<(round % 7 + (round % 50 == 0 ? 40 : 0)) {
                let e = kinds[(round + i) % kinds.count]
                q.append(e)
                model.append(e)
            }
            for _ in 0..<min(model.count, round % 5) {
                #expect(q.removeFirst() == model.removeFirst())
            }
            #expect(q.count == model.count)
            #expect(q.first == model.first)
        }
        q.removeAll()
        #expect(q.isEmpty && q.first == nil)
        // Spilled, cleared, reused: order still holds.
        for i in 0..<20 { q.append(kinds[i % kinds.count]) }
        q.removeAll()
        q.append(.sync)
        q.append(.query(swallow: true))
        #expect(q.count == 2 && q.removeFirst() == .sync && q.first == .query(swallow: true))
    }
}

/// Listening sockets as `cpool64_listen` makes them.
@Suite struct ListeningSocketTests {
    @Test func acceptsAreDeferredUntilTheClientSpeaks() throws {
        let fd = cpool64_listen("127.0.0.1", 0, -1, 16)
        try #require(fd >= 0)
        defer { close(fd) }
        var secs: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(fd, Int32(IPPROTO_TCP), TCP_DEFER_ACCEPT, &secs, &len) == 0)
        // Linux keeps the option as a count of SYN-ACK retransmissions and reports it back in seconds.
        #expect(secs > 0)
    }
}
