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

    /// Authentication request (`R`) with its subtype code and payload.
    public mutating func writeAuthentication(_ code: Int32, payload: (inout ByteBuffer) -> Void = { _ in }) {
        writeMessage(BackendType.authentication) { b in
            b.writeInteger(code)
            payload(&b)
        }
    }

    public mutating func writeParameterStatus(_ name: String, _ value: String) {
        writeMessage(BackendType.parameterStatus) { b in
            b.writeNullTerminatedString(name)
            b.writeNullTerminatedString(value)
        }
    }

    public mutating func writeBackendKeyData(processID: Int32, secretKey: Int32) {
        writeMessage(BackendType.backendKeyData) { b in
            b.writeInteger(processID)
            b.writeInteger(secretKey)
        }
    }

    public mutating func writeReadyForQuery(_ status: TransactionStatus) {
        writeMessage(BackendType.readyForQuery) { b in b.writeInteger(status.rawValue) }
    }

    /// NegotiateProtocolVersion (`v`): the newest minor version supported and the options not recognised.
    public mutating func writeNegotiateProtocolVersion(minor: Int32, unrecognized: [String]) {
        writeMessage(BackendType.negotiateProtocolVersion) { b in
            b.writeInteger(minor)
            b.writeInteger(Int32(unrecognized.count))
            for o in unrecognized { b.writeNullTerminatedString(o) }
        }
    }

    /// A message with an empty body (ParseComplete, BindComplete, CloseComplete, NoData…).
    public mutating func writeEmptyMessage(_ type: UInt8) {
        writeInteger(type)
        writeInteger(Int32(4))
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

    /// Name and value of a ParameterStatus body.
    public static func parameterStatus(_ body: ByteBuffer) -> (String, String)? {
        var body = body
        guard let name = body.readNullTerminatedString(), let value = body.readNullTerminatedString() else {
            return nil
        }
        return (name, value)
    }
}
