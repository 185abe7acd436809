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

extension ControlOutcome {
    /// `done`, or `failed SQLSTATE message` for the log.
    var logText: String {
        switch self {
        case .done: "done"
        case .failed(let e): "failed \(e.sqlstate) \(e.message)"
        }
    }
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
    let window: StatsWindow

    /// `window` is what SHOW STATS averages over; the process-wide one unless a test brings its own.
    public init(backend: any ConsoleBackend, version: String, logger: Logger, window: StatsWindow = .shared) {
        self.backend = backend
        self.version = version
        self.logger = logger
        self.window = window
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
                let snapshot = await backend.snapshot()
                guard let result = ConsoleViews.render(view, snapshot, version: version, window: window) else {
                    let e = ConsoleError.invalidCommand("SHOW \(view)")
                    out.writeErrorResponse(ErrorFields(sqlstate: e.sqlstate, message: e.message))
                    return finished(&out)
                }
                result.write(to: &out)
            case .success(.control(.set(let key, _)))
            where ConsoleViews.fakeParameters.contains(where: { $0.name == key.lowercased() }):
                // PgBouncer's answer to drivers that set session parameters on connect, for any console user.
                var r = ConsoleResult(columns: [], rows: [], tag: "SET")
                r.notices = [.init("SET ignored")]
                r.write(to: &out)
            case .success(.control(let command)):
                guard session.isAdmin else {
                    logger.notice(
                        "console command refused: admin access needed",
                        metadata: ["user": "\(session.user)", "client": "\(session.client)", "command": "\(command)"])
                    let e = ConsoleError.adminAccessNeeded
                    out.writeErrorResponse(ErrorFields(sqlstate: e.sqlstate, message: e.message))
                    return finished(&out)
                }
                let outcome = await backend.control(command, by: session)
                logger.notice(
                    "console command",
                    metadata: [
                        "user": "\(session.user)", "client": "\(session.client)", "command": "\(command)",
                        "outcome": "\(outcome.logText)",
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
