import NIOCore
import Pool64Wire
import Testing

@Suite struct MessageFramerTests {
    func message(_ type: Character, _ body: [UInt8]) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(UInt8(ascii: type.unicodeScalars.first!))
        b.writeInteger(Int32(4 + body.count))
        b.writeBytes(body)
        return b
    }

    @Test func splitsWholeMessagesAcrossReads() throws {
        var f = MessageFramer(maximumMessageSize: 1 << 20, streamableTypes: (UInt8(ascii: "d"), UInt8(ascii: "d")))
        var all = message("Q", Array("select 1\0".utf8))
        var s = message("S", [])
        all.writeBuffer(&s)
        // Deliver one byte at a time: framing must not depend on read boundaries.
        var frames: [UInt8] = []
        for i in 0..<all.readableBytes {
            f.append(all.getSlice(at: i, length: 1)!)
            while let fr = try f.next() {
                if case .message(let t, let bytes) = fr {
                    frames.append(t)
                    #expect(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) == t)
                }
            }
        }
        #expect(frames == [UInt8(ascii: "Q"), UInt8(ascii: "S")])
    }

    @Test func streamsLargeCopyData() throws {
        var f = MessageFramer(
            maximumMessageSize: 1 << 30, streamingThreshold: 1024, streamableTypes: (UInt8(ascii: "d"), UInt8(ascii: "d")))
        let big = message("d", [UInt8](repeating: 7, count: 10_000))
        var total = 0
        var pieces = 0
        var offset = 0
        while offset < big.readableBytes {
            let n = min(3000, big.readableBytes - offset)
            f.append(big.getSlice(at: offset, length: n)!)
            offset += n
            while let fr = try f.next() {
                if case .piece(let t, let bytes, _) = fr {
                    #expect(t == UInt8(ascii: "d"))
                    total += bytes.readableBytes
                    pieces += 1
                }
            }
        }
        #expect(total == big.readableBytes)
        #expect(pieces >= 3)
        #expect(f.bufferedBytes == 0)
    }

    @Test func rejectsOversizedAndNegativeLengths() {
        var f = MessageFramer(maximumMessageSize: 1000, streamableTypes: (0, 0))
        var b = ByteBuffer()
        b.writeInteger(UInt8(ascii: "Q"))
        b.writeInteger(Int32(1_000_000))
        f.append(b)
        #expect(throws: WireError.self) { try f.next() }
        var g = MessageFramer(maximumMessageSize: 1000, streamableTypes: (0, 0))
        var n = ByteBuffer()
        n.writeInteger(UInt8(ascii: "Q"))
        n.writeInteger(Int32(-5))
        g.append(n)
        #expect(throws: WireError.self) { try g.next() }
    }
}

/// Runs of whole messages for the relay's fast path.
@Suite struct MessageFramerRunTests {
    func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [type.asciiValue!]
        let len = UInt32(body.count + 4)
        b += [UInt8(len >> 24), UInt8(len >> 16 & 0xff), UInt8(len >> 8 & 0xff), UInt8(len & 0xff)]
        return b + body
    }

    @Test func scanTakesStopsAndLeavesIncompleteMessages() {
        var f = MessageFramer(maximumMessageSize: 1 << 20, streamableTypes: (0, 0))
        let a = message("D", [1, 2, 3]), b = message("C", Array("SELECT 1".utf8) + [0]), c = message("Z", [73])
        var buf = ByteBuffer()
        buf.writeBytes(a + b + c)
        buf.writeBytes(message("T", [9, 9, 9, 9]).prefix(6))  // incomplete
        f.append(buf)
        var seen: [UInt8] = []
        let all = f.scanMessages { type, raw in
            seen.append(type)
            #expect(raw.count >= 5)
            return .take
        }
        #expect(all == a.count + b.count + c.count)
        #expect(seen == Array("DCZ".utf8))
        let upToC = f.scanMessages { type, _ in type == UInt8(ascii: "C") ? .takeAndStop : .take }
        #expect(upToC == a.count + b.count)
        let beforeC = f.scanMessages { type, _ in type == UInt8(ascii: "C") ? .stop : .take }
        #expect(beforeC == a.count)
        // the run is consumed as one slice; the incomplete message stays buffered
        let run = f.take(all)
        #expect(Array(run.readableBytesView) == a + b + c)
        #expect(f.bufferedBytes == 6)
        #expect(f.scanMessages { _, _ in .take } == 0)
    }

    @Test func consumeShowsARunAndTakesOnlyWhatWasUsed() {
        var f = MessageFramer(maximumMessageSize: 1 << 20, streamableTypes: (0, 0))
        let a = message("D", [1, 2, 3]), b = message("Z", [73])
        var buf = ByteBuffer()
        buf.writeBytes(a + b)
        f.append(buf)
        let run = f.scanMessages { _, _ in .take }
        // A socket that took only part of the run: the rest stays, in order.
        f.consume(upTo: run) { raw in
            #expect(Array(raw) == a + b)
            return 3
        }
        #expect(f.bufferedBytes == a.count + b.count - 3)
        f.consume(upTo: f.bufferedBytes) { raw in
            #expect(Array(raw) == Array((a + b).dropFirst(3)))
            return raw.count
        }
        #expect(f.bufferedBytes == 0)
    }

    @Test func movePendingLetsGoOfALargeReadBuffer() throws {
        var f = MessageFramer(maximumMessageSize: 1 << 20, streamableTypes: (0, 0))
        let a = message("Q", Array("SELECT 1".utf8) + [0]), b = message("S", [])
        var read = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        read.writeBytes(a + b.prefix(3))
        f.append(read)
        f.movePending(into: ByteBufferAllocator().buffer(capacity: 1024))
        // The framer no longer shares the read buffer's storage: clearing it for the next read does not copy.
        let before = read.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        read.clear()
        let after = read.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after)
        // Same bytes, same order, and the rest of the split message completes them.
        var rest = ByteBuffer()
        rest.writeBytes(b.dropFirst(3))
        f.append(rest)
        guard case .message(let t1, let m1)? = try f.next(), case .message(let t2, _)? = try f.next() else {
            Issue.record("expected two whole messages")
            return
        }
        #expect(t1 == UInt8(ascii: "Q") && Array(m1.readableBytesView) == a && t2 == UInt8(ascii: "S"))
        #expect(f.bufferedBytes == 0)
    }

    @Test func lentStorageComesBackClearedOnceDrained() {
        var f = MessageFramer(maximumMessageSize: 1 << 20, streamableTypes: (0, 0))
        let q = message("Q", Array("SELECT 1".utf8) + [0])
        var read = ByteBufferAllocator().buffer(capacity: 64 * 1024)
        read.writeBytes(q)
        f.append(read)
        let shared = f.pendingSharesLargeBuffer
        #expect(shared)
        f.movePending(into: ByteBufferAllocator().buffer(capacity: 1024))
        let stillShared = f.pendingSharesLargeBuffer, early = f.takeSpare()
        #expect(!stillShared && early == nil)
        let run = f.scanMessages { _, _ in .take }
        f.consume(upTo: run) { raw in
            #expect(Array(raw) == q)
            return raw.count
        }
        let spare = f.takeSpare(), again = f.takeSpare()
        #expect(spare?.readableBytes == 0 && (spare?.capacity ?? 0) >= 1024)
        #expect(again == nil && f.bufferedBytes == 0)
        // Drained through a slice instead: the slice still uses the storage, so none comes back.
        read.clear()
        read.writeBytes(q)
        f.append(read)
        f.movePending(into: ByteBufferAllocator().buffer(capacity: 1024))
        let slice = f.take(q.count), none = f.takeSpare()
        #expect(Array(slice.readableBytesView) == q && none == nil)
    }
}
