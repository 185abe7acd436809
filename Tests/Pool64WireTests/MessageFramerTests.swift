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
