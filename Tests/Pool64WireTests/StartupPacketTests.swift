import NIOCore
import Pool64Wire
import Testing

@Suite struct StartupPacketTests {
    func packet(code: Int32, body: [UInt8] = []) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int32(8 + body.count))
        b.writeInteger(code)
        b.writeBytes(body)
        return b
    }

    @Test func sslAndGSSRequests() throws {
        var b = packet(code: 80_877_103)
        #expect(try StartupPacket.decode(from: &b) == .sslRequest)
        var g = packet(code: 80_877_104)
        #expect(try StartupPacket.decode(from: &g) == .gssEncRequest)
    }

    @Test func startupWithParameters() throws {
        var body: [UInt8] = []
        for s in ["user", "app", "database", "appdb", "application_name", "psql", ""] {
            body += Array(s.utf8) + [0]
        }
        var b = packet(code: 196_608, body: body)
        let p = try StartupPacket.decode(from: &b)
        guard case .startup(3, 0, let params)? = p else {
            Issue.record("not a startup packet: \(String(describing: p))")
            return
        }
        #expect(params.map(\.0) == ["user", "database", "application_name"])
        #expect(params.map(\.1) == ["app", "appdb", "psql"])
        #expect(b.readableBytes == 0)
    }

    @Test func incompleteReturnsNil() throws {
        var b = packet(code: 196_608, body: Array("user\0app\0\0".utf8))
        var partial = b.readSlice(length: 10)!
        #expect(try StartupPacket.decode(from: &partial) == nil)
        #expect(partial.readableBytes == 10)
    }

    @Test func cancelRequest() throws {
        var body = ByteBuffer()
        body.writeInteger(Int32(42))
        body.writeInteger(Int32(-7))
        var b = packet(code: 80_877_102, body: Array(body.readableBytesView))
        #expect(try StartupPacket.decode(from: &b) == .cancel(processID: 42, secretKey: -7))
    }

    @Test func oversizedLengthRejectedBeforeBuffering() {
        var b = ByteBuffer()
        b.writeInteger(Int32(0x7fff_ffff))
        b.writeInteger(Int32(196_608))
        #expect(throws: WireError.self) { try StartupPacket.decode(from: &b) }
        var tiny = ByteBuffer()
        tiny.writeInteger(Int32(3))
        tiny.writeInteger(Int32(0))
        #expect(throws: WireError.self) { try StartupPacket.decode(from: &tiny) }
    }

    @Test func unknownProtocolVersionNamesFeatureNotSupported() {
        var b = packet(code: Int32(4 << 16), body: [0])
        do {
            _ = try StartupPacket.decode(from: &b)
            Issue.record("expected an error")
        } catch {
            #expect(error.sqlstate == "0A000")
        }
    }

    @Test func missingTerminatorIsMalformed() {
        var b = packet(code: 196_608, body: Array("user\0app".utf8))
        #expect(throws: WireError.self) { try StartupPacket.decode(from: &b) }
    }
}
