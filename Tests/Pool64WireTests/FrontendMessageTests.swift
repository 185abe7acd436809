import NIOCore
import Pool64Wire
import Testing

@Suite struct FrontendMessageTests {
    @Test func parseRoundTrip() throws {
        var b = ByteBuffer()
        b.writeParse(name: "s1", query: "select $1::int", parameterTypes: [23])
        let body = b.getSlice(at: 5, length: b.readableBytes - 5)!
        guard case .parse(let name, let query, let types) = try FrontendMessage.decode(type: UInt8(ascii: "P"), body: body)
        else {
            Issue.record("not a parse")
            return
        }
        #expect(name == "s1")
        #expect(query == "select $1::int")
        #expect(types == [23])
    }

    @Test func bindKeepsTailVerbatim() throws {
        var tail = ByteBuffer()
        tail.writeInteger(Int16(1))
        tail.writeInteger(Int16(1))
        tail.writeInteger(Int16(1))
        tail.writeInteger(Int32(4))
        tail.writeInteger(Int32(99))
        tail.writeInteger(Int16(2))
        tail.writeInteger(Int16(0))
        tail.writeInteger(Int16(1))
        var b = ByteBuffer()
        b.writeBind(portal: "", statement: "s1", rest: tail)
        let body = b.getSlice(at: 5, length: b.readableBytes - 5)!
        guard case .bind(let portal, let stmt, let rest) = try FrontendMessage.decode(type: UInt8(ascii: "B"), body: body)
        else {
            Issue.record("not a bind")
            return
        }
        #expect(portal == "")
        #expect(stmt == "s1")
        #expect(rest == tail)
    }

    @Test func describeAndCloseKinds() throws {
        var b = ByteBuffer()
        b.writeDescribeOrClose(UInt8(ascii: "C"), kind: UInt8(ascii: "S"), name: "x")
        let body = b.getSlice(at: 5, length: b.readableBytes - 5)!
        guard case .close(let kind, let name) = try FrontendMessage.decode(type: UInt8(ascii: "C"), body: body) else {
            Issue.record("not a close")
            return
        }
        #expect(kind == UInt8(ascii: "S"))
        #expect(name == "x")
        var bad = ByteBuffer()
        bad.writeInteger(UInt8(ascii: "Z"))
        bad.writeNullTerminatedString("x")
        #expect(throws: WireError.self) { try FrontendMessage.decode(type: UInt8(ascii: "D"), body: bad) }
    }

    @Test func unknownTypeIsProtocolViolation() {
        do {
            _ = try FrontendMessage.decode(type: UInt8(ascii: "?"), body: ByteBuffer())
            Issue.record("expected error")
        } catch {
            #expect(error.sqlstate == "08P01")
        }
    }

    @Test func errorResponseEncodesSQLSTATE() {
        var b = ByteBuffer()
        b.writeErrorResponse(ErrorFields.fatal("28P01", "password authentication failed"))
        #expect(b.getInteger(at: 0, as: UInt8.self) == UInt8(ascii: "E"))
        let body = b.getSlice(at: 5, length: b.readableBytes - 5)!
        #expect(BackendMessageReader.sqlstate(ofErrorBody: body) == "28P01")
        #expect(Int(b.getInteger(at: 1, as: Int32.self)!) == b.readableBytes - 1)
    }

    @Test func errorTextRenamedWithFieldsKept() {
        var b = ByteBuffer()
        b.writeErrorResponse(
            ErrorFields(sqlstate: "42P05", message: "prepared statement \"pool64_3\" already exists", hint: "h"))
        let renamed = BackendMessageReader.replacing("\"pool64_3\"", with: "\"dup\"", inErrorFrame: b)!
        #expect(Int(renamed.getInteger(at: 1, as: Int32.self)!) == renamed.readableBytes - 1)
        let fields = BackendMessageReader.fields(ofErrorBody: renamed.getSlice(at: 5, length: renamed.readableBytes - 5)!)
        #expect(fields[UInt8(ascii: "M")] == "prepared statement \"dup\" already exists")
        #expect(fields[UInt8(ascii: "C")] == "42P05" && fields[UInt8(ascii: "H")] == "h")
        #expect(BackendMessageReader.replacing("\"other\"", with: "x", inErrorFrame: b) == nil)
    }
}
