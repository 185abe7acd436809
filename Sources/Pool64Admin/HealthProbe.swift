import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-shot HTTP health probe: `GET` one or more admin URLs and report whether any answered 2xx.
///
/// It exists so a container HEALTHCHECK can run the pool64 binary itself (`pool64 --health-check URL…`) instead
/// of curl and a shell. It is a small blocking socket client on purpose: it runs once and exits, so an event loop,
/// configuration or logging would only add start-up time and ways to fail. Only `http://` with a literal or
/// resolvable host is supported; that is all a probe of the local admin listener needs.
public struct HealthProbe: Sendable {
    /// One probe target, parsed from `http://host:port/path`.
    public struct Target: Sendable, Equatable {
        /// The host without brackets (`::1`, `127.0.0.1`, `localhost`).
        public var host: String
        /// The TCP port (80 when the URL names none).
        public var port: UInt16
        /// The request target, starting with `/`.
        public var path: String

        /// A target from its parts.
        public init(host: String, port: UInt16, path: String) {
            self.host = host
            self.port = port
            self.path = path
        }

        /// Parses `http://host[:port][/path]`; IPv6 literals go in brackets. Returns nil for anything else.
        public init?(url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst("http://".count)
            let authority = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(authority.count)
            var host: Substring
            var portText: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else { return nil }
                    portText = after.dropFirst()
                }
            } else {
                let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                host = parts[0]
                if parts.count == 2 { portText = parts[1] }
            }
            guard !host.isEmpty, !host.contains(where: { $0 == "@" || $0 == " " }) else { return nil }
            var port: UInt16 = 80
            if let portText {
                guard let parsed = UInt16(portText), parsed != 0 else { return nil }
                port = parsed
            }
            self.host = String(host)
            self.port = port
            self.path = path.isEmpty ? "/" : String(path)
        }
    }

    /// What one target answered.
    public enum Outcome: Sendable, Equatable {
        /// An HTTP response with this status code.
        case status(Int)
        /// No HTTP response: connection refused, timeout, unresolvable host, malformed answer.
        case failed(String)

        /// True for a 2xx status.
        public var healthy: Bool {
            if case .status(let code) = self { return (200..<300).contains(code) }
            return false
        }
    }

    /// The targets, tried in order until one is healthy.
    public var targets: [Target]
    /// The budget for the whole probe, all targets together (a container HEALTHCHECK kills a probe at its own
    /// timeout, 3 s in docker/Dockerfile; staying under it lets the probe report why it failed).
    public var timeoutMilliseconds: Int32

    /// A probe of `targets` within `timeoutMilliseconds` overall.
    public init(targets: [Target], timeoutMilliseconds: Int32 = 2_000) {
        self.targets = targets
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// Tries each target in turn and stops at the first healthy one. Returns every outcome, in order, paired
    /// with its target; the probe passed when the last one is healthy.
    public func run() -> [(Target, Outcome)] {
        let deadline = Self.nowMilliseconds() + Int64(timeoutMilliseconds)
        var outcomes: [(Target, Outcome)] = []
        for target in targets {
            let outcome = Self.get(target, deadline: deadline)
            outcomes.append((target, outcome))
            if outcome.healthy { break }
        }
        return outcomes
    }

    /// The probe as a command: parses `urls`, runs, prints one line per target tried (stdout when healthy, stderr
    /// otherwise) and returns the process exit status: 0 when a target answered 2xx, 1 when none did, 2 when a URL
    /// is not `http://host:port/path`.
    public static func exitStatus(urls: [String], timeoutMilliseconds: Int32 = 2_000) -> Int32 {
        var targets: [Target] = []
        for url in urls {
            guard let target = Target(url: url) else {
                FileHandle.standardError.write(Data("pool64: --health-check: not an http://host:port/path URL: \(url)\n".utf8))
                return 2
            }
            targets.append(target)
        }
        let outcomes = HealthProbe(targets: targets, timeoutMilliseconds: timeoutMilliseconds).run()
        for ((_, outcome), url) in zip(outcomes, urls) {
            switch outcome {
            case .status(let code) where outcome.healthy: print("pool64: health check \(url): \(code)")
            case .status(let code): FileHandle.standardError.write(Data("pool64: health check \(url): \(code)\n".utf8))
            case .failed(let why): FileHandle.standardError.write(Data("pool64: health check \(url): \(why)\n".utf8))
            }
        }
        return outcomes.last?.1.healthy == true ? 0 : 1
    }

    // MARK: - One request

    /// One `GET`: resolve, connect (non-blocking, so the deadline holds), send, read the status line.
    static func get(_ target: Target, deadline: Int64) -> Outcome {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard rc == 0, let first = list else {
            return .failed("cannot resolve \(target.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address for \(target.host)"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            entry = current.pointee.ai_next
            let fd = socket(current.pointee.ai_family, current.pointee.ai_socktype, current.pointee.ai_protocol)
            guard fd >= 0 else {
                lastError = "socket: \(Self.errnoText())"
                continue
            }
            defer { close(fd) }
            switch Self.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen, deadline: deadline) {
            case .failure(let error):
                lastError = error.text
                continue
            case .success:
                return Self.exchange(fd, target: target, deadline: deadline)
            }
        }
        return .failed(lastError)
    }

    /// Connects without blocking past `deadline`.
    private static func connect(
        _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, deadline: Int64
    ) -> Result<Void, ProbeError> {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        #if canImport(Glibc)
        let started = Glibc.connect(fd, address, length)
        #else
        let started = Darwin.connect(fd, address, length)
        #endif
        if started != 0 {
            guard errno == EINPROGRESS else { return .failure(ProbeError("connect: \(Self.errnoText())")) }
            guard Self.wait(fd, events: Int16(POLLOUT), deadline: deadline) else {
                return .failure(ProbeError("connect: timed out"))
            }
            var soError: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &size)
            guard soError == 0 else { return .failure(ProbeError("connect: \(String(cString: strerror(soError)))")) }
        }
        return .success(())
    }

    /// Sends the request and reads until the status line is complete (or the peer closes, or time runs out).
    private static func exchange(_ fd: Int32, target: Target, deadline: Int64) -> Outcome {
        let host = target.host.contains(":") ? "[\(target.host)]" : target.host
        let request = Array("GET \(target.path) HTTP/1.1\r\nHost: \(host):\(target.port)\r\nUser-Agent: pool64-health-check\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            guard Self.wait(fd, events: Int16(POLLOUT), deadline: deadline) else { return .failed("send: timed out") }
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failed("send: \(Self.errnoText())")
            }
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        // "HTTP/1.1 200 ..." — the status line is all the probe reads; 4 KiB without a line end is not HTTP.
        while !received.contains(UInt8(ascii: "\n")) && received.count < 4096 {
            guard Self.wait(fd, events: Int16(POLLIN), deadline: deadline) else { return .failed("read: timed out") }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failed("read: \(Self.errnoText())")
            }
            if n == 0 { break }
            received += buffer[..<n]
        }
        return Self.parseStatusLine(received)
    }

    /// The status code of `HTTP/1.x NNN reason`, or why the bytes are not one.
    static func parseStatusLine(_ bytes: [UInt8]) -> Outcome {
        let line = String(decoding: bytes.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let fields = line.split(separator: " ", maxSplits: 2)
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), fields[1].count == 3, let code = Int(fields[1]) else {
            return .failed(bytes.isEmpty ? "connection closed without a response" : "not an HTTP response: \(line.prefix(80))")
        }
        return .status(code)
    }

    /// Polls `fd` for `events` until `deadline`; false on timeout or error.
    private static func wait(_ fd: Int32, events: Int16, deadline: Int64) -> Bool {
        while true {
            let remaining = deadline - Self.nowMilliseconds()
            guard remaining > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&entry, 1, Int32(min(remaining, Int64(Int32.max))))
            if n < 0 && errno == EINTR { continue }
            // An error or hang-up also ends the wait: the following call reports it.
            return n > 0
        }
    }

    private static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// A failure text carried through `Result`.
    private struct ProbeError: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }
}
