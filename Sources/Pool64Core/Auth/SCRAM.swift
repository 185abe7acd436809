import Crypto
import Foundation

/// A SCRAM-SHA-256 verifier as PostgreSQL stores it: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
/// A final class: every login of the user shares it (one reference to copy, not its arrays and keyed HMACs).
public final class SCRAMSecret: Sendable, Equatable {
    public let iterations: Int
    public let salt: [UInt8]
    public let storedKey: [UInt8]
    public let serverKey: [UInt8]
    /// HMACs keyed once with StoredKey and ServerKey: each login copies them instead of re-deriving the padded keys
    /// (RFC 2104 §4 suggests exactly this precomputation), which was a tenth of a login's instructions.
    let storedKeyMAC: KeyedHMACSHA256
    let serverKeyMAC: KeyedHMACSHA256
    /// `s=…,i=…` of server-first-message, the same for every login with this secret.
    let serverFirstSuffix: [UInt8]

    public convenience init?(parsing s: String) {
        let parts = s.split(separator: "$")
        guard parts.count == 3, parts[0] == "SCRAM-SHA-256" else { return nil }
        let a = parts[1].split(separator: ":")
        let b = parts[2].split(separator: ":")
        guard a.count == 2, b.count == 2, let iter = Int(a[0]), iter > 0,
            let salt = Data(base64Encoded: String(a[1])), let sk = Data(base64Encoded: String(b[0])),
            let svk = Data(base64Encoded: String(b[1])), sk.count == 32, svk.count == 32
        else { return nil }
        self.init(iterations: iter, salt: Array(salt), storedKey: Array(sk), serverKey: Array(svk))
    }

    public init(iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
        storedKeyMAC = KeyedHMACSHA256(key: storedKey)
        serverKeyMAC = KeyedHMACSHA256(key: serverKey)
        serverFirstSuffix = Array(",s=".utf8) + Base64.encode(salt) + Array(",i=\(iterations)".utf8)
    }

    public static func == (a: SCRAMSecret, b: SCRAMSecret) -> Bool {
        a.iterations == b.iterations && a.salt == b.salt && a.storedKey == b.storedKey && a.serverKey == b.serverKey
    }

    /// RFC 5802 §3 key derivation from a password.
    public static func derive(password: String, salt: [UInt8], iterations: Int) -> SCRAMSecret {
        let salted = pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations)
        let key = SymmetricKey(data: salted)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: key))
        let serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: key))
        return SCRAMSecret(
            iterations: iterations, salt: salt, storedKey: Array(SHA256.hash(data: clientKey)), serverKey: serverKey)
    }

    public var encoded: String {
        "SCRAM-SHA-256$\(iterations):\(Data(salt).base64EncodedString())$"
            + "\(Data(storedKey).base64EncodedString()):\(Data(serverKey).base64EncodedString())"
    }

    /// PBKDF2-HMAC-SHA256 with a single 32-byte block (RFC 8018 §5.2), which is all SCRAM needs.
    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var u = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = u
        if iterations > 1 {
            for _ in 1..<iterations {
                u = Array(HMAC<SHA256>.authenticationCode(for: u, using: key))
                for i in 0..<result.count { result[i] ^= u[i] }
            }
        }
        return result
    }
}

/// The server side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677; PostgreSQL "SASL Authentication").
/// Value type, no I/O: feed it the client's messages, send what it returns. Works on the messages' bytes (they are
/// ASCII by the RFC's grammar), so a login does no String parsing.
public struct SCRAMServerExchange: Sendable {
    /// Where the exchange is.
    enum State {
        case awaitingClientFirst
        /// `authPrefix` is client-first-message-bare "," server-first-message "," (the AuthMessage up to the
        /// client-final-message-without-proof).
        case awaitingClientFinal(authPrefix: [UInt8], nonce: [UInt8])
        case done
    }

    /// Why an exchange failed. Every case ends in `28P01` for the client.
    public enum Failure: Error, Sendable, Equatable {
        case malformed(String)
        case channelBindingUnsupported
        case wrongProof
        case unknownUser
    }

    private var state: State = .awaitingClientFirst
    private let secret: SCRAMSecret
    /// False when the user does not exist: the exchange runs with a mock secret and fails at the end, so a client
    /// cannot tell unknown users from wrong passwords (as PostgreSQL's `scram_mock_salt`).
    private let userExists: Bool

    /// True until the client-first-message has been handled.
    public var awaitingClientFirst: Bool {
        if case .awaitingClientFirst = state { return true }
        return false
    }

    public init(secret: SCRAMSecret?) {
        if let secret {
            self.secret = secret
            userExists = true
        } else {
            let salt = SecureRandom.bytes(16)
            self.secret = SCRAMSecret(
                iterations: 4096, salt: salt, storedKey: [UInt8](repeating: 0, count: 32),
                serverKey: [UInt8](repeating: 0, count: 32))
            userExists = false
        }
    }

    private static let comma = UInt8(ascii: ",")

    /// The value of the last `name=` attribute in a comma-separated attribute list.
    private static func attribute(_ name: UInt8, in m: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var found: ArraySlice<UInt8>?
        var start = m.startIndex
        while start < m.endIndex {
            let end = m[start...].firstIndex(of: comma) ?? m.endIndex
            if end - start >= 2, m[start] == name, m[start + 1] == UInt8(ascii: "=") { found = m[(start + 2)..<end] }
            start = end + 1
        }
        return found
    }

    /// Handles client-first-message (`n,,n=…,r=…`); returns server-first-message.
    public mutating func receiveClientFirst(_ message: [UInt8]) throws(Failure) -> [UInt8] {
        guard case .awaitingClientFirst = state else { throw .malformed("unexpected client-first-message") }
        // gs2 header: "n" (no binding), "y" (client could but thinks we can't); "p=" asks for binding we don't offer.
        guard message.count >= 2, message[0] == UInt8(ascii: "n") || message[0] == UInt8(ascii: "y"),
            message[1] == Self.comma
        else {
            if message.starts(with: [UInt8(ascii: "p"), UInt8(ascii: "=")]) { throw .channelBindingUnsupported }
            throw .malformed("invalid GS2 header")
        }
        // then the optional authzid up to the next comma
        guard let comma = message[2...].firstIndex(of: Self.comma) else { throw .malformed("invalid GS2 header") }
        let bare = message[(comma + 1)...]
        guard let clientNonce = Self.attribute(UInt8(ascii: "r"), in: bare), !clientNonce.isEmpty else {
            throw .malformed("missing nonce")
        }
        var nonce = Array(clientNonce)
        nonce += Base64.encode(SecureRandom.bytes(18))
        var serverFirst: [UInt8] = [UInt8(ascii: "r"), UInt8(ascii: "=")]
        serverFirst.reserveCapacity(nonce.count + 2 + secret.serverFirstSuffix.count)
        serverFirst += nonce
        serverFirst += secret.serverFirstSuffix
        var authPrefix = [UInt8]()
        authPrefix.reserveCapacity(bare.count + serverFirst.count + 2 + 100)
        authPrefix += bare
        authPrefix.append(Self.comma)
        authPrefix += serverFirst
        authPrefix.append(Self.comma)
        state = .awaitingClientFinal(authPrefix: authPrefix, nonce: nonce)
        return serverFirst
    }

    /// Handles client-final-message (`c=…,r=…,p=…`); returns server-final-message (`v=…`) when the proof is right.
    public mutating func receiveClientFinal(_ message: [UInt8]) throws(Failure) -> [UInt8] {
        guard case .awaitingClientFinal(var authMessage, let nonce) = state else {
            throw .malformed("unexpected client-final-message")
        }
        state = .done
        // The proof is the last attribute (RFC 5802 §7).
        var cut: Int?
        var i = message.count - 3
        while i >= 0 {
            if message[i] == Self.comma, message[i + 1] == UInt8(ascii: "p"), message[i + 2] == UInt8(ascii: "=") {
                cut = i
                break
            }
            i -= 1
        }
        guard let cut else { throw .malformed("missing proof") }
        let withoutProof = message[..<cut]
        guard let proof = Base64.decode(message[(cut + 3)...]), proof.count == 32 else {
            throw .malformed("invalid proof")
        }
        guard let gotNonce = Self.attribute(UInt8(ascii: "r"), in: withoutProof), gotNonce.withUnsafeBytes({ constantTimeEqual($0, nonce) }) else {
            throw .malformed("nonce mismatch")
        }
        authMessage += withoutProof
        var clientKey = proof
        // XOR through one mutable buffer access: element by element, each write checked the array's uniqueness.
        secret.storedKeyMAC.authenticationCode(for: authMessage).withUnsafeBytes { sig in
            clientKey.withUnsafeMutableBytes { key in
                for i in 0..<32 { key[i] ^= sig[i] }
            }
        }
        let ok = clientKey.withUnsafeBytes { key in
            var h = SHA256()
            h.update(bufferPointer: key)
            return h.finalize().withUnsafeBytes { constantTimeEqual($0, secret.storedKey) }
        }
        guard userExists else { throw .unknownUser }
        guard ok else { throw .wrongProof }
        // The digest's bytes copied through its buffer: `Array(digest)` iterates it as a generic Sequence
        // (~1,800 instructions for 32 bytes).
        let signature = secret.serverKeyMAC.authenticationCode(for: authMessage).withUnsafeBytes { Array($0) }
        return Array("v=".utf8) + Base64.encode(signature)
    }
}

/// HMAC-SHA-256 (RFC 2104) with the key's inner and outer pads hashed once, built on swift-crypto's SHA256.
/// swift-crypto's `HMAC` can be copied the same way, but its generic `update(data:)` (DataProtocol regions,
/// runtime generic metadata) cost more than the hashing itself at SCRAM's message sizes; `SHA256` takes buffer
/// pointers directly. Checked against `HMAC<SHA256>` in the tests.
struct KeyedHMACSHA256: Sendable {
    private let inner: SHA256
    private let outer: SHA256

    /// `key` up to the 64-byte block size (SCRAM keys are 32 bytes); longer keys are hashed first (RFC 2104 §2).
    init(key: [UInt8]) {
        var k = key.count > 64 ? Array(SHA256.hash(data: key)) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        var i = SHA256()
        var o = SHA256()
        (k.map { $0 ^ 0x36 }).withUnsafeBytes { i.update(bufferPointer: $0) }
        (k.map { $0 ^ 0x5C }).withUnsafeBytes { o.update(bufferPointer: $0) }
        inner = i
        outer = o
    }

    func authenticationCode(for message: [UInt8]) -> SHA256.Digest {
        var i = inner
        message.withUnsafeBytes { i.update(bufferPointer: $0) }
        var o = outer
        i.finalize().withUnsafeBytes { o.update(bufferPointer: $0) }
        return o.finalize()
    }
}
