import Foundation

/// One command of the PgBouncer-compatible admin console (PgBouncer "usage.rst", Admin console).
public enum ConsoleCommand: Equatable, Sendable {
    /// `SHOW name`; the name upper-cased, checked when rendered.
    case show(String)
    /// A maintenance command (admin users only).
    case control(ControlCommand)
}

/// The console commands that change something; the backend carries them out.
public enum ControlCommand: Equatable, Sendable, CustomStringConvertible {
    case pause(database: String?)
    case resume(database: String?)
    case reconnect(database: String?)
    case kill(database: String)
    case killClient(id: Int)
    case disable(database: String)
    case enable(database: String)
    case reload
    case set(key: String, value: String)
    case waitClose(database: String?)
    case shutdown(ShutdownMode)

    /// How SHUTDOWN ends the process (PgBouncer 1.23+).
    public enum ShutdownMode: Equatable, Sendable {
        /// Now, without waiting for running transactions.
        case immediate
        /// Like SIGTERM: stop accepting, let transactions finish.
        case waitForServers
        /// Stop accepting, wait for every client to disconnect.
        case waitForClients
    }

    /// The command tag PgBouncer answers with (SET's carries the setting: `SET pool_mode=session`).
    public var tag: String {
        switch self {
        case .set(let k, let v): "SET \(k)=\(v)"
        case .pause: "PAUSE"
        case .resume: "RESUME"
        case .reconnect: "RECONNECT"
        case .kill: "KILL"
        case .killClient: "KILL_CLIENT"
        case .disable: "DISABLE"
        case .enable: "ENABLE"
        case .reload: "RELOAD"
        case .waitClose: "WAIT_CLOSE"
        case .shutdown: "SHUTDOWN"
        }
    }

    public var description: String {
        switch self {
        case .pause(let d), .resume(let d), .reconnect(let d), .waitClose(let d):
            d.map { "\(tag) \($0)" } ?? tag
        case .kill(let d), .disable(let d), .enable(let d): "\(tag) \(d)"
        case .killClient(let id): "KILL_CLIENT \(id)"
        case .reload: "RELOAD"
        case .set(let k, let v): "SET \(k) = '\(v)'"
        case .shutdown(.immediate): "SHUTDOWN"
        case .shutdown(.waitForServers): "SHUTDOWN WAIT_FOR_SERVERS"
        case .shutdown(.waitForClients): "SHUTDOWN WAIT_FOR_CLIENTS"
        }
    }
}

/// A console error sent as an ErrorResponse: PgBouncer's wording and SQLSTATE where it has them.
public struct ConsoleError: Error, Equatable, Sendable {
    public var sqlstate: String
    public var message: String
    public init(_ sqlstate: String, _ message: String) {
        self.sqlstate = sqlstate
        self.message = message
    }

    /// PgBouncer's answer to anything it does not parse: `invalid command '<text>', use SHOW HELP;` (08P01).
    public static func invalidCommand(_ text: some StringProtocol) -> ConsoleError {
        let shown = text.count > 200 ? "\(text.prefix(200))…" : String(text)
        return ConsoleError("08P01", "invalid command '\(shown)', use SHOW HELP;")
    }

    /// A stats user running anything but SHOW (PgBouncer's wording and SQLSTATE).
    public static let adminAccessNeeded = ConsoleError("08P01", "admin access needed")
}

/// Parses a simple Query's text into console commands: `;` separates them (not inside quotes), keywords are
/// case-insensitive, names may be double-quoted, SET values single-quoted (`''` escapes a quote).
public enum ConsoleParser {
    /// Longest query text parsed; the console's commands are short, so longer text is not one of them.
    public static let maximumLength = 64 * 1024

    public static func parse(_ text: String) -> [Result<ConsoleCommand, ConsoleError>] {
        guard text.utf8.count <= maximumLength else {
            return [.failure(ConsoleError("08P01", "console command too long"))]
        }
        return statements(text).map { command($0.tokens, source: $0.source) }
    }

    /// A token: a bare word, a quoted name, a quoted string or one punctuation character.
    enum Token: Equatable {
        case word(String)
        case name(String)
        case string(String)
        case symbol(Character)
    }

    /// The statements of `text`: their tokens and their source text (trimmed), in one pass.
    static func statements(_ text: String) -> [(tokens: [Token], source: Substring)] {
        var out: [(tokens: [Token], source: Substring)] = []
        var current: [Token] = []
        let all = Array(text)
        var chars = all[...]
        var start = 0
        func source(upTo end: Int) -> Substring {
            Substring(String(all[start..<end]).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        func quoted(_ q: Character) -> String {
            var s = ""
            while let c = chars.popFirst() {
                if c == q {
                    if chars.first == q {
                        chars.removeFirst()
                        s.append(q)
                        continue
                    }
                    return s
                }
                s.append(c)
            }
            return s
        }
        while let c = chars.popFirst() {
            if c == ";" {
                let end = chars.startIndex - 1
                if !current.isEmpty { out.append((current, source(upTo: end))) }
                current = []
                start = chars.startIndex
            } else if c.isWhitespace {
                continue
            } else if c == "'" {
                current.append(.string(quoted("'")))
            } else if c == "\"" {
                current.append(.name(quoted("\"")))
            } else if c.isLetter || c.isNumber || c == "_" || c == "-" || c == "." {
                var w = String(c)
                while let n = chars.first, n.isLetter || n.isNumber || n == "_" || n == "-" || n == "." {
                    w.append(n)
                    chars.removeFirst()
                }
                current.append(.word(w))
            } else {
                current.append(.symbol(c))
            }
        }
        if !current.isEmpty { out.append((current, source(upTo: all.count))) }
        return out
    }

    static func command(_ tokens: [Token], source: Substring) -> Result<ConsoleCommand, ConsoleError> {
        let invalid = ConsoleError.invalidCommand(source)
        guard case .word(let first) = tokens.first else { return .failure(invalid) }
        let rest = Array(tokens.dropFirst())
        func name(_ t: Token?) -> String? {
            switch t {
            case .word(let w): w
            case .name(let n): n
            case .string, .symbol, .none: nil
            }
        }
        func optionalDatabase() -> Result<String?, ConsoleError> {
            if rest.isEmpty { return .success(nil) }
            guard rest.count == 1, let d = name(rest[0]) else { return .failure(invalid) }
            return .success(d)
        }
        func database() -> Result<String, ConsoleError> {
            if rest.isEmpty { return .failure(ConsoleError("08P01", "a database is required")) }
            guard rest.count == 1, let d = name(rest[0]) else { return .failure(invalid) }
            return .success(d)
        }
        switch first.uppercased() {
        case "SHOW":
            guard rest.count == 1, let view = name(rest[0]) else { return .failure(invalid) }
            return .success(.show(view.uppercased()))
        case "PAUSE": return optionalDatabase().map { .control(.pause(database: $0)) }
        case "RESUME": return optionalDatabase().map { .control(.resume(database: $0)) }
        case "RECONNECT": return optionalDatabase().map { .control(.reconnect(database: $0)) }
        case "WAIT_CLOSE": return optionalDatabase().map { .control(.waitClose(database: $0)) }
        case "KILL": return database().map { .control(.kill(database: $0)) }
        case "DISABLE": return database().map { .control(.disable(database: $0)) }
        case "ENABLE": return database().map { .control(.enable(database: $0)) }
        case "KILL_CLIENT":
            guard rest.count == 1, case .word(let w) = rest[0], let id = Int(w) else { return .failure(invalid) }
            return .success(.control(.killClient(id: id)))
        case "RELOAD":
            return rest.isEmpty ? .success(.control(.reload)) : .failure(invalid)
        case "SHUTDOWN":
            if rest.isEmpty { return .success(.control(.shutdown(.immediate))) }
            guard rest.count == 1, case .word(let w) = rest[0] else { return .failure(invalid) }
            switch w.uppercased() {
            case "WAIT_FOR_SERVERS": return .success(.control(.shutdown(.waitForServers)))
            case "WAIT_FOR_CLIENTS": return .success(.control(.shutdown(.waitForClients)))
            default: return .failure(invalid)
            }
        case "SET":
            guard rest.count == 3, let key = name(rest[0]),
                rest[1] == .symbol("=") || rest[1] == .word("TO") || rest[1] == .word("to") || rest[1] == .word("To")
            else { return .failure(invalid) }
            switch rest[2] {
            case .string(let v), .word(let v), .name(let v): return .success(.control(.set(key: key, value: v)))
            case .symbol: return .failure(invalid)
            }
        default:
            return .failure(invalid)
        }
    }
}
