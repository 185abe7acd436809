import NIOCore
import Pool64Wire

/// A result set in text format, as the console sends it: RowDescription, DataRows, CommandComplete.
public struct ConsoleResult: Equatable, Sendable {
    /// Column types, by the OIDs PgBouncer's console uses (psycopg2 and the exporter convert by OID).
    public enum ColumnType: UInt32, Sendable {
        case text = 25
        case int4 = 23
        case int8 = 20
    }

    public var columns: [(name: String, type: ColumnType)]
    public var rows: [[String?]]
    public var tag: String
    /// NoticeResponses sent before the rows (SHOW HELP).
    public var notices: [String] = []

    public init(columns: [(String, ColumnType)], rows: [[String?]], tag: String = "SHOW") {
        self.columns = columns.map { (name: $0.0, type: $0.1) }
        self.rows = rows
        self.tag = tag
    }

    public static func == (a: ConsoleResult, b: ConsoleResult) -> Bool {
        a.columns.map(\.name) == b.columns.map(\.name) && a.columns.map(\.type) == b.columns.map(\.type)
            && a.rows == b.rows && a.tag == b.tag && a.notices == b.notices
    }

    /// The column names, in order.
    public var names: [String] { columns.map(\.name) }

    /// Writes the messages (PostgreSQL "Message Formats").
    public func write(to out: inout ByteBuffer) {
        for n in notices {
            out.writeErrorResponse(ErrorFields(severity: "NOTICE", sqlstate: "00000", message: n), notice: true)
        }
        if !columns.isEmpty {
            out.writeMessage(UInt8(ascii: "T")) { b in
                b.writeInteger(Int16(columns.count))
                for c in columns {
                    b.writeString(c.name)
                    b.writeInteger(UInt8(0))
                    b.writeInteger(Int32(0))  // table OID
                    b.writeInteger(Int16(0))  // column number
                    b.writeInteger(c.type.rawValue)
                    b.writeInteger(Int16(c.type == .int8 ? 8 : c.type == .int4 ? 4 : -1))
                    b.writeInteger(Int32(-1))  // type modifier
                    b.writeInteger(Int16(0))  // text format
                }
            }
            for row in rows {
                out.writeMessage(UInt8(ascii: "D")) { b in
                    b.writeInteger(Int16(row.count))
                    for v in row {
                        if let v {
                            b.writeInteger(Int32(v.utf8.count))
                            b.writeString(v)
                        } else {
                            b.writeInteger(Int32(-1))
                        }
                    }
                }
            }
        }
        out.writeMessage(UInt8(ascii: "C")) { b in
            b.writeString(tag)
            b.writeInteger(UInt8(0))
        }
    }
}
