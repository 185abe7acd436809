import Foundation
import NIOCore
import NIOSSL
import Pool64Wire

extension ClientSession {
    /// Handles the untyped startup packets (PostgreSQL "Start-up" flow).
    func readStartup() {
        guard var buffer = startupBuffer else { return }
        let packet: StartupPacket?
        do {
            packet = try StartupPacket.decode(from: &buffer)
        } catch {
            proxy.counters.protocolErrors &+= 1
            logger.info("bad startup packet", metadata: ["error": "\(error)"])
            fail(ErrorFields.fatal(error.sqlstate, error.detail.isEmpty ? "\(error)" : error.detail), reason: "bad startup packet")
            return
        }
        startupBuffer = buffer.readableBytes > 0 ? buffer : nil
        guard let packet else { return }
        switch packet {
        case .sslRequest:
            guard startupBuffer == nil else {
                fail(ErrorFields.fatal("08P01", "unexpected data after SSLRequest"), reason: "bad SSLRequest")
                return
            }
            if let tls = proxy.tlsContext, let socket = transport as? SocketConnection {
                out.writeInteger(UInt8(ascii: "S"))
                flushToClient()
                // The TLS session runs in NIOSSL on the TLS helper loop; the socket moves there and its plaintext
                // hops back here (ChannelTransport).
                let fd = socket.detach()
                let tlsTransport = ChannelTransport(relay: proxy.loop)
                tlsTransport.delegate = self
                transport = tlsTransport
                tlsTransport.adopt(
                    fd: fd, group: proxy.tlsGroup,
                    handlers: { ch in try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) },
                    failed: { [self] e in logger.info("TLS setup failed", metadata: ["error": "\(e)"]) })
            } else {
                out.writeInteger(UInt8(ascii: "N"))
                flushToClient()
            }
        case .gssEncRequest:
            out.writeInteger(UInt8(ascii: "N"))
            flushToClient()
        case .cancel(let pid, let key):
            proxy.cancel(processID: pid, secretKey: key)
            closeReason = "cancel request"
            phase = .closed
            transport?.close()
        case .startup(_, let minor, let params):
            startupReceived(minor: minor, params: params)
            if let rest = startupBuffer {
                startupBuffer = nil
                framer.prepend(rest)
                readFrames()
            }
        }
        if case .startup = phase, startupBuffer != nil { readStartup() }
    }

    private func startupReceived(minor: UInt16, params: [(String, String)]) {
        var unrecognized: [String] = []
        parameters.reserveCapacity(params.count)
        for (k, v) in params {
            switch k {
            case "user": user = v
            case "database": database = v
            case "replication":
                if v != "false" && v != "0" && v != "off" {
                    fail(ErrorFields.fatal("08P01", "pool64 does not support replication connections"), reason: "replication")
                    return
                }
            case "options": parseOptions(v)
            default:
                if k.hasPrefix("_pq_.") { unrecognized.append(k) } else { parameters[k] = normalizeParameter(k, v) }
            }
        }
        guard !user.isEmpty else {
            fail(ErrorFields.fatal("28000", "no PostgreSQL user name specified in startup packet"), reason: "no user")
            return
        }
        if database.isEmpty { database = user }
        startupParameters = parameters
        if minor > 0 || !unrecognized.isEmpty {
            // Protocol 3.2+ clients and _pq_ options get NegotiateProtocolVersion (PostgreSQL "Protocol versions").
            out.writeNegotiateProtocolVersion(minor: 0, unrecognized: unrecognized)
        }
        if proxy.draining {
            fail(ErrorFields.fatal("57P03", "the database system is shutting down (pool64 is draining)"), reason: "draining")
            return
        }
        if proxy.clientCount > proxy.config.maxClientConnections {
            proxy.counters.clientsRejected &+= 1
            fail(ErrorFields.fatal("53300", "no more connections allowed (max_client_conn)"), reason: "max_client_conn")
            return
        }
        let credential = proxy.credentials[user]
        switch proxy.config.authType {
        case .trust:
            authenticated()
        case .scramSHA256 where credential?.scram != nil || credential == nil,
            .md5 where credential?.md5 == nil && credential != nil:
            out.writeBytes(ByteBuffer.authenticationSASLSCRAM)
            phase = .scram(SCRAMLogin(SCRAMServerExchange(secret: credential?.scram)))
            flushToClient()
        case .scramSHA256, .md5:
            let salt = SecureRandom.bytes(4)
            out.writeAuthentication(5, payload: salt)
            phase = .md5(salt: salt, credential)
            flushToClient()
        }
    }

    /// `options=-c a=b --c=d` → parameters (libpq "options", postgres command-line switches).
    private func parseOptions(_ options: String) {
        var tokens: [String] = []
        var cur = ""
        var escape = false
        for ch in options {
            if escape {
                cur.append(ch)
                escape = false
            } else if ch == "\\" {
                escape = true
            } else if ch == " " {
                if !cur.isEmpty { tokens.append(cur) }
                cur = ""
            } else {
                cur.append(ch)
            }
        }
        if !cur.isEmpty { tokens.append(cur) }
        var i = 0
        while i < tokens.count {
            var setting: String?
            if tokens[i] == "-c", i + 1 < tokens.count {
                setting = tokens[i + 1]
                i += 1
            } else if tokens[i].hasPrefix("-c") {
                setting = String(tokens[i].dropFirst(2))
            } else if tokens[i].hasPrefix("--") {
                setting = String(tokens[i].dropFirst(2))
            }
            if let s = setting, let eq = s.firstIndex(of: "=") {
                let k = String(s[..<eq]).replacingOccurrences(of: "-", with: "_")
                parameters[k] = normalizeParameter(k, String(s[s.index(after: eq)...]))
            }
            i += 1
        }
    }

    /// The server reports `client_encoding` normalised (`utf-8` → `UTF8`); match it so it is not re-SET each lease.
    func normalizeParameter(_ key: String, _ value: String) -> String {
        if key == "client_encoding" {
            let v = value.uppercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "")
            return v == "UNICODE" ? "UTF8" : v
        }
        return value
    }

    /// A password message during authentication.
    func authMessage(_ frame: ByteBuffer) {
        var body = frame
        body.moveReaderIndex(forwardBy: 5)
        switch phase {
        case .scram(let login):
            do {
                if login.exchange.awaitingClientFirst {
                    guard let mech = body.readNullTerminatedString(), let len = body.readInteger(as: Int32.self) else {
                        return authFailed("malformed SASLInitialResponse", sqlstate: "08P01")
                    }
                    guard mech == "SCRAM-SHA-256" else {
                        return authFailed("unsupported SASL mechanism \(mech)", sqlstate: "28000")
                    }
                    let data = len > 0 ? body.readBytes(length: Int(len)) ?? [] : []
                    let serverFirst = try login.exchange.receiveClientFirst(data)
                    out.writeAuthentication(11, payload: serverFirst)
                    flushToClient()
                } else {
                    let data = body.readBytes(length: body.readableBytes) ?? []
                    let serverFinal = try login.exchange.receiveClientFinal(data)
                    out.writeAuthentication(12, payload: serverFinal)
                    authenticated()
                }
            } catch {
                authFailed("password authentication failed for user \"\(user)\"", sqlstate: "28P01")
            }
        case .md5(let salt, let credential):
            let response = body.readNullTerminatedString() ?? ""
            guard let stored = credential?.md5, MD5Auth.verify(response: response, storedMD5: stored, salt: salt) else {
                return authFailed("password authentication failed for user \"\(user)\"", sqlstate: "28P01")
            }
            authenticated()
        case .startup, .welcome, .ready, .console, .closed:
            proxy.counters.protocolErrors &+= 1
            fail(ErrorFields.fatal("08P01", "unexpected password message"), reason: "protocol violation")
        }
    }

    private func authFailed(_ message: String, sqlstate: String) {
        proxy.counters.authFailures &+= 1
        logger.info("authentication failed", metadata: ["reason": "\(message)"])
        fail(ErrorFields.fatal(sqlstate, message), reason: "authentication failed")
    }

    private func authenticated() {
        if ProxyCore.consoleDatabases.contains(database) {
            enterConsole()
            return
        }
        if proxy.disabledDatabases.contains(database) {
            fail(ErrorFields.fatal("08P01", "database does not allow connections: \(database)"), reason: "database disabled")
            return
        }
        out.writeAuthentication(0)
        phase = .welcome
        let pool = proxy.pool(database: database, user: user)
        self.pool = pool
        pool.awaitWelcome(self)
    }

    /// The pool knows the server's parameters: finish the startup with ParameterStatus, BackendKeyData, ReadyForQuery.
    func welcomeReady() {
        guard case .welcome = phase, let pool, pool.template != nil else { return }
        proxy.loggingIn[id] = nil
        // The key is needed anyway at the first lease (parameter synchronisation); here it also finds the welcome.
        pool.welcome.write(to: &out, parameters: parameters, key: parametersKey)
        (processID, secretKey) = proxy.register(self)
        out.writeBackendKeyData(processID: processID, secretKey: secretKey)
        out.writeReadyForQuery(.idle)
        phase = .ready
        countedInPool = true
        pool.clients += 1
        flushToClient()
        readFrames()
    }
}
