/// A libpq connection string (URL `postgresql://…` or `key=value …` form, as in libpq's "Connection Strings")
/// reduced to libpq keyword/value pairs. pool64 parses it itself so the config model never needs libpq, and so the
/// resolver can see the hosts before libpq does.
public struct ConnectionString: Sendable, Equatable {
    /// Keyword/value pairs in libpq's vocabulary (`host`, `port`, `user`, `password`, `dbname`, `sslmode`, …).
    public private(set) var options: [String: String]

    /// One entry of a (possibly multi-) host list.
    public struct Endpoint: Sendable, Equatable {
        /// Name, IP literal (without brackets) or Unix socket directory.
        public var host: String
        public var port: Int
    }

    public init(parsing text: String) throws(ConnectionStringError) {
        let trimmed = text.trimmingCharacters()
        if trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://") {
            options = try Self.parseURL(trimmed)
        } else {
            options = try Self.parseKeyValue(trimmed)
        }
    }

    public subscript(_ key: String) -> String? {
        get { options[key] }
        set { options[key] = newValue }
    }

    public var user: String { options["user"] ?? "postgres" }
    public var password: String? { options["password"] }
    public var database: String { options["dbname"] ?? user }

    /// The host list with ports matched up as libpq does (one port for all, or one per host).
    public var endpoints: [Endpoint] {
        let hosts = (options["host"] ?? "localhost").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let ports = (options["port"] ?? "5432").split(separator: ",", omittingEmptySubsequences: false).map {
            Int($0) ?? 5432
        }
        return hosts.enumerated().map { i, h in
            Endpoint(host: h.isEmpty ? "localhost" : h, port: ports.count == 1 ? ports[0] : (i < ports.count ? ports[i] : 5432))
        }
    }

    static func parseURL(_ s: String) throws(ConnectionStringError) -> [String: String] {
        var out: [String: String] = [:]
        var rest = Substring(s[s.range(of: "://")!.upperBound...])
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                out["user"] = try percentDecode(userinfo[..<colon])
                out["password"] = try percentDecode(userinfo[userinfo.index(after: colon)...])
            } else if !userinfo.isEmpty {
                out["user"] = try percentDecode(userinfo)
            }
        }
        if !rest.isEmpty {
            var hosts: [String] = []
            var ports: [String] = []
            for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
                var host = Substring("")
                var port = Substring("")
                if part.hasPrefix("[") {
                    guard let close = part.firstIndex(of: "]") else {
                        throw ConnectionStringError(reason: "unterminated [ in host")
                    }
                    host = part[part.index(after: part.startIndex)..<close]
                    let after = part[part.index(after: close)...]
                    if after.hasPrefix(":") { port = after.dropFirst() }
                } else if let colon = part.lastIndex(of: ":") {
                    host = part[..<colon]
                    port = part[part.index(after: colon)...]
                } else {
                    host = part
                }
                if !port.isEmpty && Int(port) == nil { throw ConnectionStringError(reason: "invalid port \"\(port)\"") }
                hosts.append(try percentDecode(host))
                ports.append(String(port))
            }
            if hosts.contains(where: { !$0.isEmpty }) { out["host"] = hosts.joined(separator: ",") }
            if ports.contains(where: { !$0.isEmpty }) {
                out["port"] = ports.map { $0.isEmpty ? "5432" : $0 }.joined(separator: ",")
            }
        }
        if !path.isEmpty { out["dbname"] = try percentDecode(path) }
        for pair in query.split(separator: "&") where !pair.isEmpty {
            guard let eq = pair.firstIndex(of: "=") else {
                throw ConnectionStringError(reason: "parameter \"\(pair)\" has no value")
            }
            var key = try percentDecode(pair[..<eq])
            if key == "ssl" && pair[pair.index(after: eq)...] == "true" {
                key = "sslmode"
                out[key] = "require"
                continue
            }
            out[key] = try percentDecode(pair[pair.index(after: eq)...])
        }
        return out
    }

    static func parseKeyValue(_ s: String) throws(ConnectionStringError) -> [String: String] {
        var out: [String: String] = [:]
        var chars = Array(s)
        chars.append(" ")
        var i = 0
        func skipSpace() { while i < chars.count, chars[i] == " " || chars[i] == "\t" || chars[i] == "\n" { i += 1 } }
        while true {
            skipSpace()
            if i >= chars.count { break }
            var key = ""
            while i < chars.count, chars[i] != "=", chars[i] != " " { key.append(chars[i]); i += 1 }
            skipSpace()
            guard i < chars.count, chars[i] == "=" else {
                throw ConnectionStringError(reason: "missing \"=\" after \"\(key)\"")
            }
            i += 1
            skipSpace()
            var value = ""
            if i < chars.count, chars[i] == "'" {
                i += 1
                var closed = false
                while i < chars.count {
                    if chars[i] == "\\", i + 1 < chars.count { value.append(chars[i + 1]); i += 2; continue }
                    if chars[i] == "'" { closed = true; i += 1; break }
                    value.append(chars[i])
                    i += 1
                }
                if !closed { throw ConnectionStringError(reason: "unterminated quoted string") }
            } else {
                while i < chars.count, chars[i] != " " {
                    if chars[i] == "\\", i + 1 < chars.count { value.append(chars[i + 1]); i += 2; continue }
                    value.append(chars[i])
                    i += 1
                }
            }
            if key.isEmpty { throw ConnectionStringError(reason: "empty keyword") }
            out[key] = value
        }
        return out
    }

    static func percentDecode<S: StringProtocol>(_ s: S) throws(ConnectionStringError) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else {
                    throw ConnectionStringError(reason: "invalid percent-encoding")
                }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A database URL that cannot be parsed.
public struct ConnectionStringError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
