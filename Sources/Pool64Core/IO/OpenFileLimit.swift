import Glibc

/// The process's open-descriptor limit (`RLIMIT_NOFILE`), raised at start so `max-client-conn` is not capped by a
/// shell's default soft limit (often 1,024): every client and server connection is a descriptor. Only the soft
/// limit moves, up to the hard limit the operator set; nothing needs privileges. (Go's runtime does the same at
/// start; PgBouncer only warns, so an operator has to remember `ulimit -n`.)
public enum OpenFileLimit {
    /// The limit pool64 asks for: enough for `maxClients` clients, their server connections and some spare
    /// descriptors for listeners, the admin server, DNS, libpq dials and log files.
    public static func wanted(maxClients: Int, serverConnections: Int) -> Int {
        maxClients + serverConnections + 128
    }

    /// The soft limit after raising it toward `wanted` (never lowered, never above the hard limit or `ceiling`); `before` is the
    /// soft limit found.
    public struct Result: Equatable, Sendable {
        public var before: Int
        public var after: Int
        public var hard: Int
    }

    /// Raises the soft limit to `min(wanted, hard)` when it is lower. Returns nil when the limits cannot be read.
    public static func raise(toward wanted: Int) -> Result? {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return nil }
        let before = clamp(lim.rlim_cur)
        let hard = clamp(lim.rlim_max)
        let target = min(max(wanted, before), hard, ceiling)
        guard target > before else { return Result(before: before, after: before, hard: hard) }
        lim.rlim_cur = rlim_t(target)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else {
            return Result(before: before, after: before, hard: hard)
        }
        return Result(before: before, after: target, hard: hard)
    }

    /// Linux's default `fs.nr_open`: a soft limit above it is refused even under an unlimited hard limit.
    public static let ceiling = 1 << 20

    // RLIM_INFINITY is the largest rlim_t; as an Int it would be negative.
    private static func clamp(_ v: rlim_t) -> Int {
        v >= rlim_t(Int32.max) ? Int(Int32.max) : Int(v)
    }
}
