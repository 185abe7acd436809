import NIOCore
import Pool64Wire

/// A result set in text format, as the console sends it: RowDescription, DataRows, CommandComplete.
public struct ConsoleResult: Equatable, Sendable {
    /// Column types, by the OIDs PgBouncer's console uses (psycopg2 and the exporter convert by OID).
    public enum ColumnType: UInt32, Sendable {
        case text = 25
        case int4 = 23
        case int8 = 20
        /// PgBouncer sends every SHOW STATS / STATS_TOTALS / STATS_AVERAGES / TOTALS counter as numeric (psycopg2
        /// reads a Decimal).
        case numeric = 1700

        /// RowDescription's type size: fixed for the integers, variable (-1) otherwise, as PgBouncer sends it.
        var size: Int16 {
            switch self {
            case .int4: 4
            case .int8: 8
            case .text, .numeric: -1
            }
        }
    }

    /// A NoticeResponse sent before the rows: PgBouncer's SHOW HELP is `Console usage` with the commands as detail.
    public struct Notice: Equatable, Sendable {
        public var message: String
        public var detail: String?
        public init(_ message: String, detail: String? = nil) {
            self.message = message
            self.detail = detail
        }
    }

    public var columns: [(name: String, type: ColumnType)]
    public var rows: [[String?]]
    public var tag: String
    /// NoticeResponses sent before the rows (SHOW HELP, a SET PgBouncer ignores).
    public var notices: [Notice] = []

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
            out.writeErrorResponse(
                ErrorFields(severity: "NOTICE", sqlstate: "00000", message: n.message, detail: n.detail), notice: true)
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
                    b.writeInteger(c.type.size)
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
