import NIOCore
import Pool64Wire

/// A client of the virtual admin database while its phase is `.console`.
final class ConsoleClientState {
    /// Admin users run every command; stats users only SHOW (the engine enforces it per command).
    let isAdmin: Bool
    /// A command runs; further messages wait in the framer.
    var busy = false
    /// An extended-protocol message was refused: everything up to the next Sync is skipped, as a server skips
    /// the rest of a failed extended-query batch.
    var skippingToSync = false

    init(isAdmin: Bool) { self.isAdmin = isAdmin }
}

extension ClientSession {
    /// Authenticated with database `pgbouncer` or `pool64`: only `admin-users` and `stats-users` get in (PgBouncer's
    /// check and wording); they get a welcome with no server behind it.
    func enterConsole() {
        let config = proxy.config
        let isAdmin = config.adminUsers.contains(user)
        guard isAdmin || config.statsUsers.contains(user) else {
            proxy.counters.authFailures &+= 1
            logger.info("admin console refused", metadata: ["user": "\(user)"])
            fail(ErrorFields.fatal("08P01", "not allowed"), reason: "console not allowed")
            return
        }
        guard proxy.console != nil else {
            fail(ErrorFields.fatal("08P01", "the admin console is not available"), reason: "console not allowed")
            return
        }
        proxy.loggingIn[id] = nil
        out.writeAuthentication(0)
        // What PgBouncer's console reports, so psql and drivers settle; the version names pool64.
        for (name, value) in [
            ("server_version", "1.18.0/pool64 \(pool64Version)"), ("client_encoding", "UTF8"),
            ("server_encoding", "UTF8"), ("DateStyle", "ISO"), ("TimeZone", "UTC"), ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"), ("application_name", parameters["application_name"] ?? ""),
        ] {
            out.writeParameterStatus(name, value)
        }
        (processID, secretKey) = proxy.register(self)
        out.writeBackendKeyData(processID: processID, secretKey: secretKey)
        out.writeReadyForQuery(.idle)
        consoleState = ConsoleClientState(isAdmin: isAdmin)
        phase = .console
        logger.info("admin console client", metadata: ["user": "\(user)", "admin": "\(isAdmin)"])
        flushToClient()
        readFrames()
    }

    /// One message from a console client.
    func consoleFrame(_ frame: MessageFramer.Frame) {
        guard let state = consoleState else { return }
        guard case .message(let type, let bytes) = frame else {
            // Only COPY data streams in pieces, and the console never starts a COPY.
            proxy.counters.protocolErrors &+= 1
            fail(ErrorFields.fatal("08P01", "unexpected message to the admin console"), reason: "protocol violation")
            return
        }
        switch type {
        case FrontendType.query:
            if state.skippingToSync { return }
            var body = bytes
            body.moveReaderIndex(forwardBy: 5)
            let query = body.readNullTerminatedString() ?? ""
            guard let console = proxy.console else { return }
            state.busy = true
            let loop = proxy.loop
            console.execute(query: query, user: user, client: peer, isAdmin: state.isAdmin) { [self] reply in
                loop.execute { self.consoleAnswered(reply) }
            }
        case FrontendType.sync:
            state.skippingToSync = false
            out.writeReadyForQuery(.idle)
            flushToClient()
        case FrontendType.flush:
            break
        case FrontendType.terminate:
            closeReason = "client terminate"
            phase = .closed
            transport?.close()
        default:
            // Parse, Bind, Execute, Describe, Close, FunctionCall, COPY messages: the console speaks the simple
            // query protocol only (as PgBouncer's). One error per batch, then wait for its Sync.
            guard !state.skippingToSync else { return }
            state.skippingToSync = true
            proxy.counters.protocolErrors &+= 1
            out.writeErrorResponse(
                ErrorFields(
                    sqlstate: "08P01",
                    message: "the admin console supports the simple query protocol only",
                    hint: "use psql, or a driver's simple-query mode"))
            flushToClient()
        }
    }

    private func consoleAnswered(_ reply: ByteBuffer) {
        guard case .console = phase, let state = consoleState else { return }
        state.busy = false
        var r = reply
        borrowOutput()
        out.writeBuffer(&r)
        flushToClient()
        readFrames()
    }
}
