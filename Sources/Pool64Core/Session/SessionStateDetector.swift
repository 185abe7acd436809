import Glibc

/// Recognises SQL that leaves state in a server session beyond the current transaction (PgBouncer's
/// transaction-mode caveats), so a transaction-mode client can be pinned to its server connection instead of
/// leaking that state to the next client. Pure and conservative: unknown forms of the listed commands pin.
public enum SessionStateDetector {
    /// What running a query means for session state.
    public enum Effect: Equatable, Sendable {
        case none
        /// The client must keep its server connection; the reason is logged at debug level.
        case pin(String)
        /// `DISCARD ALL`: prepared statements and session state are gone on that server.
        case discardAll
        /// `DEALLOCATE ALL`: every prepared statement on that server is gone.
        case deallocateAll
        /// `RESET ALL` / `RESET name`: parameters return to the connection's defaults (no state is left behind).
        case reset(String?)
    }

    /// Parameters the server reports with ParameterStatus; `SET` of these is tracked instead of pinned.
    static let reportedLowercased: Set<String> = [
        "application_name", "client_encoding", "datestyle", "intervalstyle", "timezone",
        "standard_conforming_strings",
    ]

    /// Cheap pre-check on raw query bytes: false when the text certainly has no session effect (a single statement
    /// whose first word is not one of the commands above and no session-level function call). Most queries stop
    /// here without building a String.
    public static func mightAffectSession(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = b.count
        while i < n, b[i] == 32 || b[i] == 9 || b[i] == 10 || b[i] == 13 || b[i] == 40 { i += 1 }
        guard i < n else { return false }
        switch b[i] | 0x20 {
        case UInt8(ascii: "s"), UInt8(ascii: "r"), UInt8(ascii: "c"), UInt8(ascii: "p"), UInt8(ascii: "l"),
            UInt8(ascii: "d"), UInt8(ascii: "-"), UInt8(ascii: "/"):
            // SELECT is by far the most common first word: let it through when it is exactly "select".
            if i + 6 <= n, b[i] | 0x20 == 115, b[i + 1] | 0x20 == 101, b[i + 2] | 0x20 == 108, b[i + 3] | 0x20 == 101,
                b[i + 4] | 0x20 == 99, b[i + 5] | 0x20 == 116
            {
                break
            }
            return true
        default:
            break
        }
        // Another statement after a semicolon, or a function that outlives the transaction (pg_advisory_*,
        // set_config: both have a '_' at a known place). memchr finds the few bytes that matter, so a query costs
        // a couple of vector scans rather than a loop over every byte (this runs on every transaction-mode query).
        guard let base = b.baseAddress else { return false }
        if let semi = memchr(base + i, 59, n - i) {
            var k = semi - UnsafeMutableRawPointer(mutating: base) + 1
            while k < n, b[k] == 32 || b[k] == 9 || b[k] == 10 || b[k] == 13 || b[k] == 0 || b[k] == 59 { k += 1 }
            if k < n { return true }
        }
        var j = i
        while j < n, let u = memchr(base + j, 95, n - j) {
            j = u - UnsafeMutableRawPointer(mutating: base)
            // "_advisory"
            if j + 9 <= n, b[j + 1] | 0x20 == 97, b[j + 2] | 0x20 == 100, b[j + 3] | 0x20 == 118, b[j + 4] | 0x20 == 105,
                b[j + 5] | 0x20 == 115, b[j + 6] | 0x20 == 111, b[j + 7] | 0x20 == 114, b[j + 8] | 0x20 == 121
            {
                return true
            }
            // "set_conf"
            if j >= 3, j + 5 <= n, b[j - 3] | 0x20 == 115, b[j - 2] | 0x20 == 101, b[j - 1] | 0x20 == 116,
                b[j + 1] | 0x20 == 99, b[j + 2] | 0x20 == 111, b[j + 3] | 0x20 == 110, b[j + 4] | 0x20 == 102
            {
                return true
            }
            j += 1
        }
        return false
    }

    /// Scans every statement of `sql` and returns the strongest effect (pin wins).
    public static func effect(of sql: String) -> Effect {
        var result = Effect.none
        let bytes = Array(sql.utf8)
        if containsSessionFunction(bytes) { return .pin("session-level function call") }
        for statement in statements(bytes) {
            let words = leadingWords(statement, count: 4)
            guard let first = words.first else { continue }
            switch first {
            case "set":
                guard words.count > 1 else { continue }
                var i = 1
                if words[1] == "local" { continue }
                if words[1] == "transaction" { continue }
                if words[1] == "session" {
                    guard words.count > 2 else { return .pin("SET SESSION") }
                    if words[2] == "characteristics" || words[2] == "authorization" { return .pin("SET SESSION \(words[2])") }
                    i = 2
                }
                if words[i] == "role" { return .pin("SET ROLE") }
                if !reportedLowercased.contains(words[i]) { return .pin("SET \(words[i])") }
            case "reset":
                guard words.count > 1 else { continue }
                if words[1] == "session" && words.count > 2 && words[2] == "authorization" { continue }
                if words[1] == "role" { continue }
                if result == .none { result = .reset(words[1] == "all" ? nil : words[1]) }
            case "create":
                if words.dropFirst().prefix(2).contains(where: { $0 == "temp" || $0 == "temporary" }) {
                    return .pin("CREATE TEMP")
                }
            case "prepare": return .pin("PREPARE")
            case "listen": return .pin("LISTEN")
            case "load": return .pin("LOAD")
            case "declare":
                if containsWords(statement, "with", "hold") { return .pin("DECLARE WITH HOLD") }
            case "discard":
                if words.count > 1, words[1] == "all" { result = .discardAll } else { return .pin("DISCARD") }
            case "deallocate":
                if words.contains("all") { if result == .none { result = .deallocateAll } } else { return .pin("DEALLOCATE") }
            default:
                continue
            }
        }
        return result
    }

    /// The statement name of a query that is exactly `DEALLOCATE [PREPARE] name` (an optional `;` and whitespace
    /// after it), as PostgreSQL reads the name: unquoted names folded to lower case, quoted ones as written. nil for
    /// anything else, `DEALLOCATE ALL` included. Drivers that prepare at protocol level (pgx, DBD::Pg, ruby-pg) send
    /// this to drop a statement; transaction mode maps it to the client's own statements.
    public static func deallocateName(_ b: UnsafeRawBufferPointer) -> String? {
        var i = 0
        let n = b.count
        while i < n, b[i] == 32 || b[i] == 9 || b[i] == 10 || b[i] == 13 { i += 1 }
        // Cheap rejection first: this runs on transaction-mode queries that begin with "d".
        guard i < n, b[i] | 0x20 == UInt8(ascii: "d") else { return nil }
        // Up to three tokens (words, or quoted names), then only whitespace, one ';' and NULs may follow.
        var tokens: [(text: [UInt8], quoted: Bool)] = []
        while i < n {
            let c = b[i]
            if c == 32 || c == 9 || c == 10 || c == 13 || c == 0 {
                i += 1
            } else if c == UInt8(ascii: ";") {
                i += 1
                while i < n, b[i] == 32 || b[i] == 9 || b[i] == 10 || b[i] == 13 || b[i] == 0 { i += 1 }
                guard i == n else { return nil }
            } else if c == UInt8(ascii: "\"") {
                var w: [UInt8] = []
                i += 1
                while true {
                    guard i < n else { return nil }
                    if b[i] == UInt8(ascii: "\"") {
                        guard i + 1 < n, b[i + 1] == UInt8(ascii: "\"") else { break }
                        i += 1
                    }
                    w.append(b[i])
                    i += 1
                }
                i += 1
                guard !w.isEmpty, tokens.count < 3 else { return nil }
                tokens.append((w, true))
            } else if isWordByte(c), !(c >= 48 && c <= 57) {
                var w: [UInt8] = []
                while i < n, isWordByte(b[i]) || b[i] == UInt8(ascii: "$") {
                    w.append(b[i] >= 65 && b[i] <= 90 ? b[i] | 0x20 : b[i])
                    i += 1
                }
                guard tokens.count < 3 else { return nil }
                tokens.append((w, false))
            } else {
                return nil
            }
        }
        func isWord(_ t: (text: [UInt8], quoted: Bool), _ w: String) -> Bool { !t.quoted && t.text == Array(w.utf8) }
        guard tokens.count >= 2, isWord(tokens[0], "deallocate") else { return nil }
        var name = tokens[1]
        if tokens.count == 3 {
            guard isWord(tokens[1], "prepare") else { return nil }
            name = tokens[2]
        }
        if isWord(name, "all") { return nil }
        return String(decoding: name.text, as: UTF8.self)
    }

    /// Advisory locks at session level and `set_config` outlive the transaction.
    static func containsSessionFunction(_ b: [UInt8]) -> Bool {
        for needle in ["pg_advisory_lock", "pg_try_advisory_lock", "set_config"] {
            if find(needle, in: b) { return true }
        }
        return false
    }

    private static func find(_ needle: String, in hay: [UInt8]) -> Bool {
        let n = Array(needle.utf8)
        guard hay.count >= n.count else { return false }
        let first = n[0]
        var i = 0
        while i <= hay.count - n.count {
            if hay[i] | 0x20 == first {
                var j = 1
                while j < n.count, hay[i + j] | 0x20 == n[j] || (n[j] == UInt8(ascii: "_") && hay[i + j] == n[j]) {
                    j += 1
                }
                if j == n.count { return true }
            }
            i += 1
        }
        return false
    }

    /// Splits on `;` outside quotes, dollar quotes and comments.
    static func statements(_ b: [UInt8]) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                i += 1
                while i < b.count, b[i] != c { i += 1 }
            } else if c == UInt8(ascii: "-"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "-") {
                while i < b.count, b[i] != UInt8(ascii: "\n") { i += 1 }
            } else if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") {
                i += 2
                while i + 1 < b.count, !(b[i] == UInt8(ascii: "*") && b[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i += 1
            } else if c == UInt8(ascii: "$") {
                // $tag$ … $tag$
                var j = i + 1
                while j < b.count, b[j] == UInt8(ascii: "_") || (b[j] | 0x20 >= 97 && b[j] | 0x20 <= 122) { j += 1 }
                if j < b.count, b[j] == UInt8(ascii: "$") {
                    let tag = b[i...j]
                    var k = j + 1
                    while k + tag.count <= b.count, b[k..<(k + tag.count)] != tag { k += 1 }
                    i = k + tag.count - 1
                }
            } else if c == UInt8(ascii: ";") {
                out.append(b[start..<i])
                start = i + 1
            }
            i += 1
        }
        if start < b.count { out.append(b[start..<min(b.count, max(start, b.count))]) }
        return out
    }

    /// The first `count` words of a statement, lowercased, skipping comments; `=` and `(` end a word.
    static func leadingWords(_ s: ArraySlice<UInt8>, count: Int) -> [String] {
        var words: [String] = []
        var i = s.startIndex
        while i < s.endIndex, words.count < count {
            let c = s[i]
            if c == UInt8(ascii: "-"), i + 1 < s.endIndex, s[i + 1] == UInt8(ascii: "-") {
                while i < s.endIndex, s[i] != UInt8(ascii: "\n") { i += 1 }
                continue
            }
            if c == UInt8(ascii: "/"), i + 1 < s.endIndex, s[i + 1] == UInt8(ascii: "*") {
                i += 2
                while i + 1 < s.endIndex, !(s[i] == UInt8(ascii: "*") && s[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i += 2
                continue
            }
            if isWordByte(c) || c == UInt8(ascii: "\"") {
                var w: [UInt8] = []
                if c == UInt8(ascii: "\"") {
                    i += 1
                    while i < s.endIndex, s[i] != UInt8(ascii: "\"") { w.append(s[i] | 0x20); i += 1 }
                    i += 1
                } else {
                    while i < s.endIndex, isWordByte(s[i]) || s[i] == UInt8(ascii: ".") {
                        w.append(s[i] >= 65 && s[i] <= 90 ? s[i] | 0x20 : s[i])
                        i += 1
                    }
                }
                words.append(String(decoding: w, as: UTF8.self))
                continue
            }
            if c == UInt8(ascii: "=") || c == UInt8(ascii: "(") || c == UInt8(ascii: "'") { break }
            i += 1
        }
        return words
    }

    private static func containsWords(_ s: ArraySlice<UInt8>, _ a: String, _ b: String) -> Bool {
        let words = leadingWords(s, count: 64)
        for i in 0..<max(0, words.count - 1) where words[i] == a && words[i + 1] == b { return true }
        return false
    }

    private static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 95
    }
}
