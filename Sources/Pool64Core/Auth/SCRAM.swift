import Crypto
import Foundation

/// A SCRAM-SHA-256 verifier as PostgreSQL stores it: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
public struct SCRAMSecret: Sendable, Equatable {
    public var iterations: Int
    public var salt: [UInt8]
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    public init?(parsing s: String) {
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
/// Value type, no I/O: feed it the client's messages, send what it returns.
public struct SCRAMServerExchange: Sendable {
    /// Where the exchange is.
    enum State {
        case awaitingClientFirst
        case awaitingClientFinal(clientFirstBare: String, serverFirst: String, nonce: String)
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

    /// Handles client-first-message (`n,,n=…,r=…`); returns server-first-message.
    public mutating func receiveClientFirst(_ message: String) throws(Failure) -> String {
        guard case .awaitingClientFirst = state else { throw .malformed("unexpected client-first-message") }
        // gs2 header: "n" (no binding), "y" (client could but thinks we can't); "p=" asks for binding we don't offer.
        guard message.hasPrefix("n,") || message.hasPrefix("y,") else {
            if message.hasPrefix("p=") { throw .channelBindingUnsupported }
            throw .malformed("invalid GS2 header")
        }
        let afterFlag = message.dropFirst(2)
        guard let comma = afterFlag.firstIndex(of: ",") else { throw .malformed("invalid GS2 header") }
        let bare = String(afterFlag[afterFlag.index(after: comma)...])
        var clientNonce: Substring?
        for attr in bare.split(separator: ",") where attr.hasPrefix("r=") { clientNonce = attr.dropFirst(2) }
        guard let clientNonce, !clientNonce.isEmpty else { throw .malformed("missing nonce") }
        let raw = SecureRandom.bytes(18)
        let nonce = String(clientNonce) + Data(raw).base64EncodedString()
        let serverFirst = "r=\(nonce),s=\(Data(secret.salt).base64EncodedString()),i=\(secret.iterations)"
        state = .awaitingClientFinal(clientFirstBare: bare, serverFirst: serverFirst, nonce: nonce)
        return serverFirst
    }

    /// Handles client-final-message (`c=…,r=…,p=…`); returns server-final-message (`v=…`) when the proof is right.
    public mutating func receiveClientFinal(_ message: String) throws(Failure) -> String {
        guard case .awaitingClientFinal(let bare, let serverFirst, let nonce) = state else {
            throw .malformed("unexpected client-final-message")
        }
        state = .done
        // The proof is the last attribute (RFC 5802 §7); find ",p=" on the bytes (no Foundation string search).
        let bytes = Array(message.utf8)
        var cut: Int?
        var i = bytes.count - 3
        while i >= 0 {
            if bytes[i] == UInt8(ascii: ","), bytes[i + 1] == UInt8(ascii: "p"), bytes[i + 2] == UInt8(ascii: "=") {
                cut = i
                break
            }
            i -= 1
        }
        guard let cut else { throw .malformed("missing proof") }
        let withoutProof = String(decoding: bytes[..<cut], as: UTF8.self)
        guard let proof = Data(base64Encoded: String(decoding: bytes[(cut + 3)...], as: UTF8.self)), proof.count == 32
        else {
            throw .malformed("invalid proof")
        }
        var gotNonce: Substring?
        for attr in withoutProof.split(separator: ",") where attr.hasPrefix("r=") { gotNonce = attr.dropFirst(2) }
        guard gotNonce.map(String.init) == nonce else { throw .malformed("nonce mismatch") }
        let authMessage = Array("\(bare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = Array(
            HMAC<SHA256>.authenticationCode(for: authMessage, using: SymmetricKey(data: secret.storedKey)))
        var clientKey = Array(proof)
        for i in clientKey.indices { clientKey[i] ^= clientSignature[i] }
        let ok = constantTimeEqual(Array(SHA256.hash(data: clientKey)), secret.storedKey)
        guard userExists else { throw .unknownUser }
        guard ok else { throw .wrongProof }
        let serverSignature = HMAC<SHA256>.authenticationCode(
            for: authMessage, using: SymmetricKey(data: secret.serverKey))
        return "v=" + Data(serverSignature).base64EncodedString()
    }
}
