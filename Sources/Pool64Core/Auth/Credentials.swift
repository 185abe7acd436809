import Crypto
import Foundation

/// What pool64 knows about one user's password: enough to verify a client, and the plaintext when it has it
/// (needed to log in to the server as that user through libpq).
public struct UserCredential: Sendable, Equatable {
    public var user: String
    /// Plaintext password, when configured as such (database URL, or a plain auth-file entry).
    public var password: String?
    /// SCRAM-SHA-256 verifier (from a `SCRAM-SHA-256$…` entry, or derived from the plaintext).
    public var scram: SCRAMSecret?
    /// `md5` + md5(password + user), hex (PostgreSQL's stored md5 form).
    public var md5: String?

    /// From a plaintext password: derives the SCRAM verifier (4096 iterations, random salt) and the md5 hash.
    public static func plaintext(user: String, password: String, iterations: Int = 4096) -> UserCredential {
        let salt = SecureRandom.bytes(16)
        return UserCredential(
            user: user, password: password,
            scram: SCRAMSecret.derive(password: password, salt: salt, iterations: iterations),
            md5: "md5" + MD5Auth.hex(Insecure.MD5.hash(data: Array((password + user).utf8))))
    }

    /// From an auth-file secret: `SCRAM-SHA-256$…`, `md5…` (35 chars) or a plaintext password.
    public static func parse(user: String, secret: String) -> UserCredential {
        if secret.hasPrefix("SCRAM-SHA-256$"), let s = SCRAMSecret(parsing: secret) {
            return UserCredential(user: user, password: nil, scram: s, md5: nil)
        }
        if secret.hasPrefix("md5"), secret.count == 35 {
            return UserCredential(user: user, password: nil, scram: nil, md5: secret)
        }
        return plaintext(user: user, password: secret)
    }
}

/// The users pool64 accepts: the database URL's user plus any auth-file entries.
public struct CredentialStore: Sendable {
    private var users: [String: UserCredential] = [:]

    public init(_ credentials: [UserCredential] = []) {
        for c in credentials { users[c.user] = c }
    }

    public subscript(user: String) -> UserCredential? { users[user] }
    public var userNames: [String] { users.keys.sorted() }

    public mutating func add(_ c: UserCredential) { users[c.user] = c }

    /// Parses a PgBouncer userlist (`"user" "secret"` per line, `""` escapes a quote, `;`/`#` comments).
    public static func parseAuthFile(_ text: String) throws(ConfigurationError) -> [UserCredential] {
        var out: [UserCredential] = []
        for (n, raw) in text.split(separator: "\n").enumerated() {
            let line = raw.trimmingCharacters()
            if line.isEmpty || line.hasPrefix(";") || line.hasPrefix("#") { continue }
            var fields: [String] = []
            var chars = line[...]
            while fields.count < 2 {
                while chars.first == " " || chars.first == "\t" { chars.removeFirst() }
                guard chars.first == "\"" else { break }
                chars.removeFirst()
                var field = ""
                var closed = false
                while let c = chars.popFirst() {
                    if c == "\"" {
                        if chars.first == "\"" {
                            field.append("\"")
                            chars.removeFirst()
                        } else {
                            closed = true
                            break
                        }
                    } else {
                        field.append(c)
                    }
                }
                guard closed else { break }
                fields.append(field)
            }
            guard fields.count == 2 else {
                throw ConfigurationError(key: "auth-file", value: "line \(n + 1)", reason: "expected \"user\" \"secret\"")
            }
            out.append(UserCredential.parse(user: fields[0], secret: fields[1]))
        }
        return out
    }
}

/// PostgreSQL's md5 password exchange (AuthenticationMD5Password).
public enum MD5Auth {
    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// The response a client computes: `md5` + md5(md5hex(password+user) + salt).
    public static func expectedResponse(storedMD5: String, salt: [UInt8]) -> String {
        let inner = Array(storedMD5.dropFirst(3).utf8) + salt
        return "md5" + hex(Insecure.MD5.hash(data: inner))
    }

    /// Constant-time check of a client's response.
    public static func verify(response: String, storedMD5: String, salt: [UInt8]) -> Bool {
        constantTimeEqual(Array(response.utf8), Array(expectedResponse(storedMD5: storedMD5, salt: salt).utf8))
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBytes { constantTimeEqual($0, b) }
}

func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
