import NIOCore

/// A typed frontend message after startup, decoded only as far as pool64 needs: names and texts it rewrites or
/// inspects. Bytes it does not look at stay in `ByteBuffer` slices so they can be forwarded without copying.
public enum FrontendMessage: Sendable {
    /// Parse: statement name, query text, parameter type OIDs.
    case parse(name: String, query: String, parameterTypes: [UInt32])
    /// Bind: portal name, statement name, and everything after the statement name, verbatim.
    case bind(portal: String, statement: String, rest: ByteBuffer)
    /// Describe a statement (`S`) or portal (`P`).
    case describe(kind: UInt8, name: String)
    /// Close a statement (`S`) or portal (`P`).
    case close(kind: UInt8, name: String)
    case execute(portal: String, maxRows: Int32)
    case sync
    case flush
    case query(String)
    case terminate
    /// Messages forwarded untouched: CopyData, CopyDone, CopyFail, FunctionCall, password/SASL messages.
    case other(type: UInt8)

    /// Decodes the body (without type byte and length) of a message of the given type.
    public static func decode(type: UInt8, body: ByteBuffer) throws(WireError) -> FrontendMessage {
        var body = body
        func string(_ what: String) throws(WireError) -> String {
            guard let s = body.readNullTerminatedString() else {
                throw WireError(.malformed, message: String(UnicodeScalar(type)), detail: "missing \(what)")
            }
            return s
        }
        switch type {
        case FrontendType.parse:
            let name = try string("statement name")
            let query = try string("query")
            guard let count = body.readInteger(as: Int16.self), count >= 0,
                body.readableBytes >= Int(count) * 4
            else { throw WireError(.malformed, message: "Parse", detail: "parameter types") }
            var types: [UInt32] = []
            types.reserveCapacity(Int(count))
            for _ in 0..<count { types.append(body.readInteger(as: UInt32.self)!) }
            return .parse(name: name, query: query, parameterTypes: types)
        case FrontendType.bind:
            let portal = try string("portal name")
            let statement = try string("statement name")
            return .bind(portal: portal, statement: statement, rest: body)
        case FrontendType.describe, FrontendType.close:
            guard let kind = body.readInteger(as: UInt8.self), kind == UInt8(ascii: "S") || kind == UInt8(ascii: "P")
            else { throw WireError(.malformed, message: String(UnicodeScalar(type)), detail: "kind") }
            let name = try string("name")
            return type == FrontendType.describe ? .describe(kind: kind, name: name) : .close(kind: kind, name: name)
        case FrontendType.execute:
            let portal = try string("portal name")
            guard let rows = body.readInteger(as: Int32.self) else {
                throw WireError(.malformed, message: "Execute", detail: "row limit")
            }
            return .execute(portal: portal, maxRows: rows)
        case FrontendType.sync: return .sync
        case FrontendType.flush: return .flush
        case FrontendType.terminate: return .terminate
        case FrontendType.query:
            return .query(try string("query"))
        case FrontendType.copyData, FrontendType.copyDone, FrontendType.copyFail, FrontendType.functionCall,
            FrontendType.password:
            return .other(type: type)
        default:
            throw WireError(
                .unexpectedMessage, message: String(UnicodeScalar(type)),
                detail: "invalid frontend message type \(type)")
        }
    }
}

extension ByteBuffer {
    /// Appends a typed message: writes the type byte, reserves the length, runs `body`, then patches the length.
    @inlinable
    public mutating func writeMessage(_ type: UInt8, _ body: (inout ByteBuffer) -> Void) {
        writeInteger(type)
        let lengthIndex = writerIndex
        writeInteger(Int32(0))
        body(&self)
        setInteger(Int32(writerIndex - lengthIndex), at: lengthIndex)
    }

    /// Appends a Parse message.
    public mutating func writeParse(name: String, query: String, parameterTypes: [UInt32]) {
        writeMessage(FrontendType.parse) { b in
            b.writeNullTerminatedString(name)
            b.writeNullTerminatedString(query)
            b.writeInteger(Int16(parameterTypes.count))
            for t in parameterTypes { b.writeInteger(t) }
        }
    }

    /// Appends a Bind message whose tail (formats, values, result formats) is copied verbatim.
    public mutating func writeBind(portal: String, statement: String, rest: ByteBuffer) {
        writeMessage(FrontendType.bind) { b in
            b.writeNullTerminatedString(portal)
            b.writeNullTerminatedString(statement)
            var rest = rest
            b.writeBuffer(&rest)
        }
    }

    /// Appends a Describe (`type` = `D`) or Close (`type` = `C`) message.
    public mutating func writeDescribeOrClose(_ type: UInt8, kind: UInt8, name: String) {
        writeMessage(type) { b in
            b.writeInteger(kind)
            b.writeNullTerminatedString(name)
        }
    }

    /// Appends a simple Query message.
    public mutating func writeQuery(_ sql: String) {
        writeMessage(FrontendType.query) { b in b.writeNullTerminatedString(sql) }
    }
}
