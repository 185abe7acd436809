import Logging

extension AdminRouter {
    /// `POST /admin/pause|resume|reconnect[?database=NAME]`: runs the command and answers when it has taken effect.
    ///
    /// Refused with 403 when no admin token is configured: a command that can stall every client must never be open
    /// to whoever reaches the port. Every call is logged at notice with the peer, accepted or not.
    func control(
        _ action: AdminControl, target: AdminTarget, authorization: String?, peer: String
    ) async -> AdminResponse {
        var logger = self.logger
        logger[metadataKey: AdminLogMetadata.peer] = "\(peer)"
        logger[metadataKey: AdminLogMetadata.command] = "\(action.rawValue)"
        guard let token = self.token else {
            logger.notice("admin command refused: no admin token is configured")
            return ControlBody.failure(
                403, "commands over HTTP need an admin token (admin-token); none is configured")
        }
        guard token.accepts(authorization: authorization) else {
            logger.notice("admin command refused: missing or wrong bearer token")
            return ControlBody.failure(
                401, "unauthorized", headers: [("WWW-Authenticate", #"Bearer realm="pool64""#)])
        }
        let database: String?
        do {
            database = try target.parameters(accepted: ["database"], rejectingOthers: true)["database"]
        } catch {
            return ControlBody.failure(400, error.message)
        }
        if database?.isEmpty == true {
            return ControlBody.failure(400, "database must not be empty; leave it out to act on every database")
        }
        logger[metadataKey: AdminLogMetadata.database] = "\(database ?? "*")"
        logger.notice("admin command received")

        let provider = self.provider
        let started = ContinuousClock.now
        let outcome = await withDeadline(self.deadlines.control) { () -> Result<Void, any Error> in
            do {
                try await provider.control(action, database: database)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        logger[metadataKey: AdminLogMetadata.elapsed] = "\(ContinuousClock.now - started)"
        switch outcome {
        case .success:
            logger.notice("admin command done")
            return ControlBody.success
        case .failure(let error as AdminControlError):
            logger.notice("admin command refused by the pools", metadata: [AdminLogMetadata.error: "\(error)"])
            return ControlBody.failure(409, error.message, sqlstate: error.sqlstate)
        case .failure(let error):
            logger.warning("admin command failed", metadata: [AdminLogMetadata.error: "\(error)"])
            return ControlBody.failure(500, "\(error)")
        case nil:
            logger.warning("admin command did not finish in time")
            return ControlBody.failure(504, Self.timeoutMessage(action, after: self.deadlines.control))
        }
    }

    /// What a 504 says. The command is not undone: a pause that is still waiting for transactions goes on.
    static func timeoutMessage(_ action: AdminControl, after deadline: Duration) -> String {
        let components = deadline.components
        let seconds = Double(components.seconds) + Double(components.attoseconds) / 1e18
        let limit = seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
        switch action {
        case .pause:
            return "pause did not finish within \(limit): server connections are still in transactions. "
                + "The pause stays in effect (new queries wait) until POST /admin/resume"
        case .resume, .reconnect:
            return "\(action.rawValue) did not finish within \(limit)"
        }
    }
}

/// The body of every command response: `{"ok":true}`, or `{"ok":false,"error":…}` with the `sqlstate` when the
/// pools refused the command.
private struct ControlBody: Encodable {
    var ok: Bool
    var error: String?
    var sqlstate: String?

    static let success = AdminResponse.json(200, #"{"ok":true}"#)

    static func failure(
        _ status: Int, _ message: String, sqlstate: String? = nil, headers: [(String, String)] = []
    ) -> AdminResponse {
        let body = ControlBody(ok: false, error: message, sqlstate: sqlstate)
        return .json(status, AdminRouter.encode(body) ?? #"{"ok":false}"#, headers: headers)
    }
}
