import NIOCore

extension AdminServer {
    /// Settings of the admin listener. Defaults suit a Prometheus scraper and a Kubernetes kubelet.
    public struct Configuration: Sendable {
        /// Listen addresses such as `[::]:9090` (dual-stack), `127.0.0.1:9090` or `[::1]:0` (any free port).
        public var listen: [String]
        /// When set, `/stats` and `/metrics` require `Authorization: Bearer <token>`; probes stay open. The
        /// `POST /admin/…` commands always require it, and are refused (403) when it is not set.
        public var bearerToken: String?
        /// A connection that sends nothing for this long is closed, so slow or silent clients cost one socket for a
        /// bounded time and never block others. A connection waiting for its response (a pause that waits for
        /// transactions) is not idle.
        public var idleTimeout: TimeAmount
        /// Largest request body accepted before answering 413 and closing. Admin requests carry no body.
        public var maxBodyBytes: Int
        /// Largest request head (all header names and values) accepted before answering 431 and closing.
        public var maxHeaderBytes: Int
        /// Connections served at once; further ones are closed on accept.
        public var maxConnections: Int
        /// How long `/healthz` waits for ``AdminProvider/isAlive()`` before answering 503.
        public var livenessDeadline: Duration
        /// How long `/readyz` waits for ``AdminProvider/readiness()`` before answering 503.
        public var readinessDeadline: Duration
        /// How long `/stats` and `/metrics` wait for ``AdminProvider/stats()`` (or
        /// ``AdminProvider/consoleSnapshot()``) before answering 503.
        public var statsDeadline: Duration
        /// How long a `POST /admin/…` command may take before answering 504 (the command itself goes on: a pause
        /// keeps waiting for transactions to end).
        public var controlDeadline: Duration
        /// Bind with SO_REUSEPORT, so a successor taking over the PostgreSQL listeners (`handover-socket`) can open
        /// the same admin address while this process still runs. Off otherwise: two unrelated instances on one
        /// admin port should fail to start, not share it.
        public var reusePort: Bool = false

        /// Creates a configuration; only the listen addresses and the token usually need setting.
        public init(
            listen: [String] = ["[::]:9090"],
            bearerToken: String? = nil,
            idleTimeout: TimeAmount = .seconds(10),
            maxBodyBytes: Int = 4096,
            maxHeaderBytes: Int = 16 * 1024,
            maxConnections: Int = 256,
            livenessDeadline: Duration = .seconds(2),
            readinessDeadline: Duration = .seconds(5),
            statsDeadline: Duration = .seconds(5),
            controlDeadline: Duration = .seconds(60)
        ) {
            self.listen = listen
            // An empty token would accept `Authorization: Bearer ` — treat it as "no token configured".
            self.bearerToken = bearerToken?.isEmpty == true ? nil : bearerToken
            self.idleTimeout = idleTimeout
            self.maxBodyBytes = maxBodyBytes
            self.maxHeaderBytes = maxHeaderBytes
            self.maxConnections = maxConnections
            self.livenessDeadline = livenessDeadline
            self.readinessDeadline = readinessDeadline
            self.statsDeadline = statsDeadline
            self.controlDeadline = controlDeadline
        }
    }
}
