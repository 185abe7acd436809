import NIOCore
import Pool64Wire
import Testing

/// The encoders pool64's own backend messages go through write bytes directly (`writeDirect`); these pin them to
/// the protocol's layout, byte for byte.
@Suite struct BackendMessageTests {
    private func bytes(_ write: (inout ByteBuffer) -> Void) -> [UInt8] {
        var b = ByteBuffer()
        b.writeInteger(UInt8(0xEE))  // something before, so offsets inside the buffer are exercised
        write(&b)
        b.moveReaderIndex(forwardBy: 1)
        return Array(b.readableBytesView)
    }

    @Test func authentication() {
        #expect(bytes { $0.writeAuthentication(0) } == [0x52, 0, 0, 0, 8, 0, 0, 0, 0])
        #expect(bytes { $0.writeAuthentication(5, payload: [1, 2, 3, 4]) } == [0x52, 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4])
        let sasl = ByteBuffer.authenticationSASLSCRAM
        #expect(sasl == [0x52, 0, 0, 0, 23, 0, 0, 0, 10] + Array("SCRAM-SHA-256".utf8) + [0, 0])
        let payload = Array("v=abc".utf8)
        #expect(bytes { $0.writeAuthentication(12, payload: payload) } == [0x52, 0, 0, 0, 13, 0, 0, 0, 12] + payload)
    }

    @Test func parameterStatus() {
        #expect(
            bytes { $0.writeParameterStatus("TimeZone", "Europe/Zürich") }
                == [0x53] + [0, 0, 0, UInt8(4 + 9 + 15)] + Array("TimeZone".utf8) + [0] + Array("Europe/Zürich".utf8) + [0])
        #expect(bytes { $0.writeParameterStatus("a", "") } == [0x53, 0, 0, 0, 7, 0x61, 0, 0])
    }

    @Test func keyDataReadyAndEmpty() {
        #expect(
            bytes { $0.writeBackendKeyData(processID: 0x0102_0304, secretKey: -1) }
                == [0x4B, 0, 0, 0, 12, 1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(bytes { $0.writeReadyForQuery(.inTransaction) } == [0x5A, 0, 0, 0, 5, UInt8(ascii: "T")])
        #expect(bytes { $0.writeEmptyMessage(UInt8(ascii: "1")) } == [0x31, 0, 0, 0, 4])
    }
}
