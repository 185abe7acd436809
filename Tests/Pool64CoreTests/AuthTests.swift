import Crypto
import Foundation
import NIOCore
import Pool64Wire
import Testing

@testable import Pool64Core

@Suite struct SCRAMTests {
    /// A minimal client side of RFC 5802 to drive the server exchange.
    func clientProof(password: String, clientFirstBare: String, serverFirst: String, clientFinalNoProof: String) -> String {
        var salt: [UInt8] = []
        var iterations = 0
        for attr in serverFirst.split(separator: ",") {
            if attr.hasPrefix("s=") { salt = Array(Data(base64Encoded: String(attr.dropFirst(2)))!) }
            if attr.hasPrefix("i=") { iterations = Int(attr.dropFirst(2))! }
        }
        let salted = SCRAMSecret.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: SymmetricKey(data: salted)))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let auth = Array("\(clientFirstBare),\(serverFirst),\(clientFinalNoProof)".utf8)
        let sig = Array(HMAC<SHA256>.authenticationCode(for: auth, using: SymmetricKey(data: storedKey)))
        let proof = zip(clientKey, sig).map { $0 ^ $1 }
        return Data(proof).base64EncodedString()
    }

    func run(secret: SCRAMSecret?, password: String) throws(SCRAMServerExchange.Failure) -> String {
        var ex = SCRAMServerExchange(secret: secret)
        let bare = "n=,r=fyko+d2lbbFgONRv9qkxdawL"
        let serverFirst = String(decoding: try ex.receiveClientFirst(Array(("n,," + bare).utf8)), as: UTF8.self)
        let nonce = serverFirst.split(separator: ",")[0].dropFirst(2)
        let noProof = "c=biws,r=\(nonce)"
        let proof = clientProof(password: password, clientFirstBare: bare, serverFirst: serverFirst, clientFinalNoProof: noProof)
        return String(decoding: try ex.receiveClientFinal(Array("\(noProof),p=\(proof)".utf8)), as: UTF8.self)
    }

    @Test func rightPasswordSucceedsAndWrongFails() throws {
        let secret = SCRAMSecret.derive(password: "pencil", salt: Array("saltsaltsalt".utf8), iterations: 4096)
        let final = try run(secret: secret, password: "pencil")
        #expect(final.hasPrefix("v="))
        #expect(throws: SCRAMServerExchange.Failure.wrongProof) { try run(secret: secret, password: "pencil2") }
        #expect(throws: SCRAMServerExchange.Failure.unknownUser) { try run(secret: nil, password: "pencil") }
    }

    @Test func postgresSecretFormatRoundTrips() throws {
        let s = SCRAMSecret.derive(password: "x", salt: [1, 2, 3, 4], iterations: 1)
        #expect(SCRAMSecret(parsing: s.encoded) == s)
        #expect(SCRAMSecret(parsing: "SCRAM-SHA-256$bad") == nil)
        // RFC 7677 §3 test vector: PBKDF2 of "pencil" with salt W22ZaJ0SNY7soEsUEjb6gQ== and 4096 iterations gives
        // the ServerKey that verifies "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".
        let salt = Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!)
        let v = SCRAMSecret.derive(password: "pencil", salt: salt, iterations: 4096)
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        let sig = HMAC<SHA256>.authenticationCode(for: Array(auth.utf8), using: SymmetricKey(data: v.serverKey))
        #expect(Data(sig).base64EncodedString() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    }

    @Test func malformedMessagesAreRefused() throws {
        let secret = SCRAMSecret.derive(password: "pencil", salt: [1, 2, 3], iterations: 1)
        var ex = SCRAMServerExchange(secret: secret)
        #expect(throws: SCRAMServerExchange.Failure.malformed("invalid GS2 header")) {
            try ex.receiveClientFirst(Array("x,,n=,r=abc".utf8))
        }
        #expect(throws: SCRAMServerExchange.Failure.malformed("missing nonce")) {
            try ex.receiveClientFirst(Array("n,,n=,r=".utf8))
        }
        let first = String(decoding: try ex.receiveClientFirst(Array("n,a=x,n=,r=abc".utf8)), as: UTF8.self)
        #expect(first.hasPrefix("r=abc") && first.hasSuffix(",i=1"))
        var wrongNonce = ex
        #expect(throws: SCRAMServerExchange.Failure.malformed("nonce mismatch")) {
            try wrongNonce.receiveClientFinal(Array("c=biws,r=abc,p=\(Data(count: 32).base64EncodedString())".utf8))
        }
        var noProof = ex
        #expect(throws: SCRAMServerExchange.Failure.malformed("missing proof")) {
            try noProof.receiveClientFinal(Array("c=biws,r=abc".utf8))
        }
        #expect(throws: SCRAMServerExchange.Failure.malformed("invalid proof")) {
            try ex.receiveClientFinal(Array("c=biws,r=abc,p=AAAA".utf8))
        }
        // one client-final per exchange
        #expect(throws: SCRAMServerExchange.Failure.malformed("unexpected client-final-message")) {
            try ex.receiveClientFinal(Array("c=biws,r=abc,p=AAAA".utf8))
        }
    }

    @Test func channelBindingRequestRefused() {
        var ex = SCRAMServerExchange(secret: nil)
        #expect(throws: SCRAMServerExchange.Failure.channelBindingUnsupported) {
            try ex.receiveClientFirst(Array("p=tls-server-end-point,,n=,r=abc".utf8))
        }
    }
}

@Suite struct CredentialTests {
    @Test func md5ExchangeMatchesPostgres() {
        let c = UserCredential.plaintext(user: "app", password: "secret")
        // PostgreSQL stores md5(password || user).
        #expect(c.md5 == "md5" + Insecure.MD5.hash(data: Array("secretapp".utf8)).map { String(format: "%02x", $0) }.joined())
        let salt: [UInt8] = [1, 2, 3, 4]
        let response = MD5Auth.expectedResponse(storedMD5: c.md5!, salt: salt)
        #expect(MD5Auth.verify(response: response, storedMD5: c.md5!, salt: salt))
        #expect(!MD5Auth.verify(response: response, storedMD5: c.md5!, salt: [4, 3, 2, 1]))
    }

    @Test func authFileParsing() throws {
        let scram = SCRAMSecret.derive(password: "p", salt: [9, 9], iterations: 1).encoded
        let text = """
            ; comment
            "alice" "\(scram)"
            "bob" "md5\(String(repeating: "a", count: 32))"
            "car""ol" "plain pass"
            """
        let users = try CredentialStore.parseAuthFile(text)
        #expect(users.map(\.user) == ["alice", "bob", "car\"ol"])
        #expect(users[0].scram != nil && users[0].password == nil)
        #expect(users[1].md5 != nil && users[1].scram == nil)
        #expect(users[2].password == "plain pass" && users[2].scram != nil)
        #expect(throws: ConfigurationError.self) { try CredentialStore.parseAuthFile("alice secret") }
    }
}

@Suite struct WelcomeParametersTests {
    @Test func templateIsSentWithTheClientsOwnValuesInPlace() {
        let w = WelcomeParameters(["b": "2", "a": "1", "c": "3", "d": "4"])
        func expected(_ pairs: [(String, String)]) -> ByteBuffer {
            var b = ByteBuffer()
            for (k, v) in pairs { b.writeParameterStatus(k, v) }
            return b
        }
        var out = ByteBuffer()
        w.write(to: &out, parameters: [:])
        #expect(out == expected([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]))
        // Values equal to the template's and keys the template lacks change nothing.
        out.clear()
        w.write(to: &out, parameters: ["a": "1", "zz": "9"])
        #expect(out == expected([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]))
        out.clear()
        w.write(to: &out, parameters: ["d": "x", "b": "long value", "a": "y"])
        #expect(out == expected([("a", "y"), ("b", "long value"), ("c", "3"), ("d", "x")]))
    }

    @Test func encodedWelcomesAreKeptByParameterSetNumber() {
        var w = WelcomeParameters(["a": "1", "b": "2"])
        func expected(_ pairs: [(String, String)]) -> ByteBuffer {
            var b = ByteBuffer()
            for (k, v) in pairs { b.writeParameterStatus(k, v) }
            return b
        }
        var out = ByteBuffer()
        w.write(to: &out, parameters: ["b": "x"], key: 7)
        #expect(out == expected([("a", "1"), ("b", "x")]))
        // Same key, same bytes (the cached copy); another key is encoded for its own parameters.
        out.clear()
        w.write(to: &out, parameters: ["b": "x"], key: 7)
        #expect(out == expected([("a", "1"), ("b", "x")]))
        out.clear()
        w.write(to: &out, parameters: [:], key: 8)
        #expect(out == expected([("a", "1"), ("b", "2")]))
        // Past the bound the cache starts over and still answers correctly.
        for k in 100..<(100 + WelcomeParameters.encodedLimit + 5) {
            out.clear()
            w.write(to: &out, parameters: ["a": "\(k)"], key: k)
            #expect(out == expected([("a", "\(k)"), ("b", "2")]))
        }
        out.clear()
        w.write(to: &out, parameters: ["b": "x"], key: 7)
        #expect(out == expected([("a", "1"), ("b", "x")]))
    }
}

@Suite struct Base64Tests {
    @Test func matchesFoundationBothWays() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ n) }
            let text = Base64.encode(bytes)
            #expect(String(decoding: text, as: UTF8.self) == Data(bytes).base64EncodedString())
            #expect(Base64.decode(text[...]) == bytes)
        }
        // RFC 4648 §10 vectors
        #expect(String(decoding: Base64.encode(Array("foobar".utf8)), as: UTF8.self) == "Zm9vYmFy")
        #expect(String(decoding: Base64.encode(Array("fo".utf8)), as: UTF8.self) == "Zm8=")
        for bad in ["Zm9", "Zm9v!mFy", "Z===", "Zm=v"] {
            #expect(Base64.decode(Array(bad.utf8)[...]) == nil, "\(bad)")
        }
    }
}

@Suite struct KeyedHMACTests {
    @Test func matchesSwiftCryptoHMAC() {
        for keyLength in [0, 1, 32, 63, 64, 65, 100] {
            let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
            let keyed = KeyedHMACSHA256(key: key)
            for messageLength in [0, 1, 55, 56, 63, 64, 65, 200, 1000] {
                let message = (0..<messageLength).map { UInt8(truncatingIfNeeded: $0 &* 13) }
                let expected = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
                #expect(Array(keyed.authenticationCode(for: message)) == Array(expected), "key \(keyLength) message \(messageLength)")
            }
        }
    }
}

@Suite struct SecureRandomTests {
    @Test func drawsAreFreshAcrossPoolRefillsAndLargeRequests() {
        // 600 × 16 bytes crosses the 4 KiB pool's refill at least twice; no draw may repeat or be all zeros.
        var seen = Set<[UInt8]>()
        for _ in 0..<600 {
            let b = SecureRandom.bytes(16)
            #expect(b.count == 16)
            #expect(b != [UInt8](repeating: 0, count: 16))
            seen.insert(b)
        }
        #expect(seen.count == 600)
        let big = SecureRandom.bytes(5000)
        #expect(big.count == 5000 && Set(big).count > 200)
    }
}
