import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL 15 cluster with TLS on, listening on 127.0.0.1 (trust authentication).
/// Needs root (initdb runs as `postgres` through `runuser`).
struct PostgresServer: Sendable {
    static let binDir = "/usr/lib/postgresql/15/bin"

    let dir: String
    let port: Int
    var dataDir: String { dir + "/data" }
    var logFile: String { dir + "/server.log" }

    func conninfo(sslmode: String = "require") -> String {
        "host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=\(sslmode) connect_timeout=10"
    }

    /// Why the server cannot run here, or nil.
    static var unavailableReason: String? {
        if getuid() != 0 { return "not running as root (initdb must run as the postgres user via runuser)" }
        if !FileManager.default.isExecutableFile(atPath: binDir + "/initdb") { return "\(binDir)/initdb not found" }
        return nil
    }

    static func start() throws -> PostgresServer {
        // Under /tmp (not $TMPDIR): the postgres user must be able to reach it.
        let dir = "/tmp/pool64-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let server = PostgresServer(dir: dir, port: try freePort())
        do {
            try run("/usr/bin/openssl", [
                "req", "-new", "-x509", "-days", "1", "-nodes", "-subj", "/CN=localhost",
                "-keyout", dir + "/server.key", "-out", dir + "/server.crt",
            ])
            try run("/bin/chmod", ["600", dir + "/server.key"])
            try run("/bin/chown", ["-R", "postgres:postgres", dir])
            try run("/usr/sbin/runuser", ["-u", "postgres", "--", binDir + "/initdb", "-D", server.dataDir, "-A", "trust"])
            let conf = """

                ssl = on
                ssl_cert_file = '\(dir)/server.crt'
                ssl_key_file = '\(dir)/server.key'
                listen_addresses = '127.0.0.1'
                port = \(server.port)
                unix_socket_directories = '\(dir)'
                log_line_prefix = '%p '
                log_disconnections = on
                log_min_messages = debug1
                fsync = off

                """
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: server.dataDir + "/postgresql.conf"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(conf.utf8))
            try handle.close()
            // Not through Foundation.Process: its exit monitoring waits for a descriptor the daemonized postmaster
            // inherits, so waitUntilExit never returns while the server runs.
            try spawnAndWait("/usr/sbin/runuser", [
                "-u", "postgres", "--", binDir + "/pg_ctl", "-D", server.dataDir, "-l", server.logFile, "-w", "-t", "60",
                "start",
            ])
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    func stop() {
        if FileManager.default.fileExists(atPath: dataDir + "/postmaster.pid") {
            _ = try? Self.run("/usr/sbin/runuser", [
                "-u", "postgres", "--", Self.binDir + "/pg_ctl", "-D", dataDir, "-m", "immediate", "-w", "stop",
            ])
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Server log lines written by backend `pid` (log_line_prefix is '%p ').
    func logLines(pid: Int32) -> [String] {
        guard let text = try? String(contentsOfFile: logFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("\(pid) ") }
    }

    /// Waits until the backend `pid` logged its disconnection; returns its log lines.
    func waitForDisconnection(pid: Int32, timeout: Duration = .seconds(10)) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let lines = logLines(pid: pid)
            if lines.contains(where: { $0.contains("disconnection:") }) || ContinuousClock.now > deadline {
                return lines
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // Output goes to a file, not a pipe: `pg_ctl start` leaves the postmaster running with the inherited
        // descriptor, so reading a pipe to its end would wait for the server to exit.
        let outputPath = "/tmp/pool64-tls-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil),
            let output = FileHandle(forWritingAtPath: outputPath)
        else { throw CommandFailed(description: "cannot create \(outputPath)") }
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? output.close()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw CommandFailed(
                description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)"
            )
        }
        return text
    }

    /// posix_spawn + waitpid, output discarded (the postmaster logs to its own file).
    static func spawnAndWait(_ executable: String, _ arguments: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw CommandFailed(description: "posix_spawn \(executable) failed: \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw CommandFailed(description: "\(executable) \(arguments.joined(separator: " ")) failed: status \(status)")
        }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandFailed(description: "socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0 else { throw CommandFailed(description: "bind() failed") }
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw CommandFailed(description: "getsockname() failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// The cluster shared by the suite (set by ``PostgresTrait``), nil when it cannot run here.
enum SharedPostgres {
    @TaskLocal static var server: PostgresServer?
}

/// Starts one cluster around the whole suite and stops it afterwards.
struct PostgresTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        if let reason = PostgresServer.unavailableReason {
            print("Pool64ServerTLSTests: skipping PostgreSQL TLS tests: \(reason)")
            try await function()
            return
        }
        let server = try PostgresServer.start()
        do {
            try await SharedPostgres.$server.withValue(server) { try await function() }
        } catch {
            server.stop()
            throw error
        }
        server.stop()
    }
}

extension Trait where Self == PostgresTrait {
    static var postgresWithTLS: PostgresTrait { PostgresTrait() }
}
