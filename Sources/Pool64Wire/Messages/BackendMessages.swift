import NIOCore

/// Fields of an ErrorResponse or NoticeResponse that pool64 writes itself.
public struct ErrorFields: Sendable, Equatable, Error {
    /// `ERROR`, `FATAL` or `NOTICE`/`WARNING` for notices.
    public var severity: String
    public var sqlstate: String
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(severity: String = "ERROR", sqlstate: String, message: String, detail: String? = nil, hint: String? = nil)
    {
        self.severity = severity
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    /// A FATAL error: the connection closes after it.
    public static func fatal(_ sqlstate: String, _ message: String, detail: String? = nil) -> ErrorFields {
        ErrorFields(severity: "FATAL", sqlstate: sqlstate, message: message, detail: detail)
    }
}

/// Encoders for the backend messages pool64 originates (the rest is relayed verbatim from servers).
extension ByteBuffer {
    /// ErrorResponse (`E`), or NoticeResponse (`N`) when `notice` is true.
    public mutating func writeErrorResponse(_ e: ErrorFields, notice: Bool = false) {
        writeMessage(notice ? BackendType.noticeResponse : BackendType.errorResponse) { b in
            b.writeInteger(UInt8(ascii: "S"))
            b.writeNullTerminatedString(e.severity)
            b.writeInteger(UInt8(ascii: "V"))
            b.writeNullTerminatedString(e.severity)
            b.writeInteger(UInt8(ascii: "C"))
            b.writeNullTerminatedString(e.sqlstate)
            b.writeInteger(UInt8(ascii: "M"))
            b.writeNullTerminatedString(e.message)
            if let d = e.detail {
                b.writeInteger(UInt8(ascii: "D"))
                b.writeNullTerminatedString(d)
            }
            if let h = e.hint {
                b.writeInteger(UInt8(ascii: "H"))
                b.writeNullTerminatedString(h)
            }
            b.writeInteger(UInt8(0))
        }
    }

    /// Authentication request (`R`) with its subtype code and payload (SASL data, MD5 salt; empty for
    /// AuthenticationOk).
    public mutating func writeAuthentication(_ code: Int32, payload: [UInt8] = []) {
        writeDirect(9 + payload.count) { p in
            p.storeBytes(of: BackendType.authentication, as: UInt8.self)
            p.storeBytes(of: Int32(8 + payload.count).bigEndian, toByteOffset: 1, as: Int32.self)
            p.storeBytes(of: code.bigEndian, toByteOffset: 5, as: Int32.self)
            payload.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: p[9...]).copyMemory(from: $0) }
        }
    }

    /// AuthenticationSASL offering SCRAM-SHA-256 only, encoded once.
    public static let authenticationSASLSCRAM: [UInt8] = {
        var b = ByteBuffer()
        b.writeAuthentication(10, payload: Array("SCRAM-SHA-256".utf8) + [0, 0])
        return Array(b.readableBytesView)
    }()

    public mutating func writeParameterStatus(_ name: String, _ value: String) {
        var name = name
        var value = value
        name.withUTF8 { n in
            value.withUTF8 { v in
                writeDirect(7 + n.count + v.count) { p in
                    p.storeBytes(of: BackendType.parameterStatus, as: UInt8.self)
                    p.storeBytes(of: Int32(6 + n.count + v.count).bigEndian, toByteOffset: 1, as: Int32.self)
                    UnsafeMutableRawBufferPointer(rebasing: p[5...]).copyMemory(from: UnsafeRawBufferPointer(n))
                    p[5 + n.count] = 0
                    UnsafeMutableRawBufferPointer(rebasing: p[(6 + n.count)...]).copyMemory(from: UnsafeRawBufferPointer(v))
                    p[6 + n.count + v.count] = 0
                }
            }
        }
    }

    public mutating func writeBackendKeyData(processID: Int32, secretKey: Int32) {
        writeDirect(13) { p in
            p.storeBytes(of: BackendType.backendKeyData, as: UInt8.self)
            p.storeBytes(of: Int32(12).bigEndian, toByteOffset: 1, as: Int32.self)
            p.storeBytes(of: processID.bigEndian, toByteOffset: 5, as: Int32.self)
            p.storeBytes(of: secretKey.bigEndian, toByteOffset: 9, as: Int32.self)
        }
    }

    public mutating func writeReadyForQuery(_ status: TransactionStatus) {
        writeDirect(6) { p in
            p.storeBytes(of: BackendType.readyForQuery, as: UInt8.self)
            p.storeBytes(of: Int32(5).bigEndian, toByteOffset: 1, as: Int32.self)
            p[5] = status.rawValue
        }
    }

    /// Appends exactly `count` bytes that `body` stores into the buffer's memory: one capacity check and no generic
    /// integer write per field (those cost ~150 instructions each, a dozen per login).
    @inlinable
    public mutating func writeDirect(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        reserveCapacity(minimumWritableBytes: count)
        let at = writerIndex
        // The whole storage plus an offset: NIO's writable-bytes view slices with a generic, non-inlined dropFirst.
        withVeryUnsafeMutableBytes { all in body(UnsafeMutableRawBufferPointer(start: all.baseAddress! + at, count: count)) }
        moveWriterIndex(forwardBy: count)
    }

    /// NegotiateProtocolVersion (`v`): the newest minor version supported and the options not recognised.
    public mutating func writeNegotiateProtocolVersion(minor: Int32, unrecognized: [String]) {
        writeMessage(BackendType.negotiateProtocolVersion) { b in
            b.writeInteger(minor)
            b.writeInteger(Int32(unrecognized.count))
            for o in unrecognized { b.writeNullTerminatedString(o) }
        }
    }

    /// CommandComplete with `tag` (`DEALLOCATE`, `SELECT 1`, …).
    public mutating func writeCommandComplete(_ tag: String) {
        writeMessage(BackendType.commandComplete) { $0.writeNullTerminatedString(tag) }
    }

    /// A message with an empty body (ParseComplete, BindComplete, CloseComplete, NoData…).
    public mutating func writeEmptyMessage(_ type: UInt8) {
        writeDirect(5) { p in
            p.storeBytes(of: type, as: UInt8.self)
            p.storeBytes(of: Int32(4).bigEndian, toByteOffset: 1, as: Int32.self)
        }
    }
}

/// Readers for the backend messages pool64 inspects while relaying.
public enum BackendMessageReader {
    /// The SQLSTATE (`C` field) of an ErrorResponse/NoticeResponse body.
    public static func sqlstate(ofErrorBody body: ByteBuffer) -> String? {
        fields(ofErrorBody: body)[UInt8(ascii: "C")]
    }

    /// All fields of an ErrorResponse/NoticeResponse body.
    public static func fields(ofErrorBody body: ByteBuffer) -> [UInt8: String] {
        var body = body
        var out: [UInt8: String] = [:]
        while let code = body.readInteger(as: UInt8.self), code != 0 {
            guard let value = body.readNullTerminatedString() else { break }
            out[code] = value
        }
        return out
    }

    /// The ErrorResponse/NoticeResponse `frame` (header included) with `old` replaced by `new` in its message
    /// and detail fields, every field kept in order; nil when neither field contains `old`.
    public static func replacing(_ old: String, with new: String, inErrorFrame frame: ByteBuffer) -> ByteBuffer? {
        guard let type = frame.getInteger(at: frame.readerIndex, as: UInt8.self),
            var body = frame.getSlice(at: frame.readerIndex + 5, length: frame.readableBytes - 5)
        else { return nil }
        var fields: [(UInt8, String)] = []
        var changed = false
        while let code = body.readInteger(as: UInt8.self), code != 0 {
            guard var value = body.readNullTerminatedString() else { return nil }
            if code == UInt8(ascii: "M") || code == UInt8(ascii: "D"), value.contains(old) {
                value = value.replacing(old, with: new)
                changed = true
            }
            fields.append((code, value))
        }
        guard changed else { return nil }
        var out = ByteBuffer()
        out.writeMessage(type) { b in
            for (code, value) in fields {
                b.writeInteger(code)
                b.writeNullTerminatedString(value)
            }
            b.writeInteger(UInt8(0))
        }
        return out
    }

    /// Name and value of a ParameterStatus body.
    public static func parameterStatus(_ body: ByteBuffer) -> (String, String)? {
        var body = body
        guard let name = body.readNullTerminatedString(), let value = body.readNullTerminatedString() else {
            return nil
        }
        return (name, value)
    }
}
