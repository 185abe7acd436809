import Logging
import NIOCore
import Pool64Stats
import Pool64Wire

/// Who runs a console query.
public struct ConsoleSessionInfo: Sendable, Equatable {
    public var user: String
    /// The client's address, for the log.
    public var client: String
    /// Admin users run every command; stats users only SHOW.
    public var isAdmin: Bool
    public init(user: String, client: String, isAdmin: Bool) {
        self.user = user
        self.client = client
        self.isAdmin = isAdmin
    }
}

/// How a control command ended.
public enum ControlOutcome: Equatable, Sendable {
    case done
    case failed(ConsoleError)
}

/// What the engine asks of the running proxy (implemented by the executable over Pool64Core).
public protocol ConsoleBackend: Sendable {
    /// Everything SHOW reads, in one consistent copy.
    func snapshot() async -> ConsoleSnapshot
    /// Carries out a maintenance command; returns when PgBouncer's would (PAUSE once the pool is quiet).
    func control(_ command: ControlCommand, by session: ConsoleSessionInfo) async -> ControlOutcome
}

/// Runs one simple Query's worth of console commands and answers with complete protocol bytes ending in
/// ReadyForQuery. Commands run in order; the first error ends the query (as PostgreSQL does for a multi-statement
/// simple query), and the error never closes the connection.
public struct ConsoleEngine: Sendable {
    let backend: any ConsoleBackend
    let logger: Logger
    let version: String

    public init(backend: any ConsoleBackend, version: String, logger: Logger) {
        self.backend = backend
        self.version = version
        self.logger = logger
    }

    public func execute(_ query: String, session: ConsoleSessionInfo) async -> ByteBuffer {
        var out = ByteBuffer()
        let commands = ConsoleParser.parse(query)
        if commands.isEmpty { out.writeMessage(UInt8(ascii: "I")) { _ in } }
        for parsed in commands {
            switch parsed {
            case .failure(let e):
                out.writeErrorResponse(ErrorFields(sqlstate: e.sqlstate, message: e.message))
                return finished(&out)
            case .success(.show(let view)):
                guard let result = ConsoleViews.render(view, await backend.snapshot(), version: version) else {
                    out.writeErrorResponse(
                        ErrorFields(
                            sqlstate: "08P01", message: "unsupported SHOW command: \(view.prefix(100))",
                            hint: "SHOW HELP lists them"))
                    return finished(&out)
                }
                result.write(to: &out)
            case .success(.control(let command)):
                guard session.isAdmin else {
                    logger.notice(
                        "console command refused: admin access needed",
                        metadata: ["user": "\(session.user)", "client": "\(session.client)", "command": "\(command)"])
                    out.writeErrorResponse(ErrorFields(sqlstate: "42501", message: "admin access needed"))
                    return finished(&out)
                }
                let outcome = await backend.control(command, by: session)
                logger.notice(
                    "console command",
                    metadata: [
                        "user": "\(session.user)", "client": "\(session.client)", "command": "\(command)",
                        "outcome": "\(outcome == .done ? "done" : "failed")",
                    ])
                switch outcome {
                case .done:
                    ConsoleResult(columns: [], rows: [], tag: command.tag).write(to: &out)
                case .failed(let e):
                    out.writeErrorResponse(ErrorFields(sqlstate: e.sqlstate, message: e.message))
                    return finished(&out)
                }
            }
        }
        return finished(&out)
    }

    private func finished(_ out: inout ByteBuffer) -> ByteBuffer {
        out.writeReadyForQuery(.idle)
        return out
    }
}
