import Foundation
import NIOCore
import Pool64Stats
import Testing

@testable import Pool64Admin

@Suite("HealthProbe, the container health check")
struct HealthProbeTests {
    @Test("parses http URLs with IPv6, IPv4 and name hosts")
    func parsesURLs() throws {
        let v6 = try #require(HealthProbe.Target(url: "http://[::1]:9090/readyz"))
        #expect(v6 == HealthProbe.Target(host: "::1", port: 9090, path: "/readyz"))
        let v4 = try #require(HealthProbe.Target(url: "http://127.0.0.1:9090/healthz?x=1"))
        #expect(v4 == HealthProbe.Target(host: "127.0.0.1", port: 9090, path: "/healthz?x=1"))
        let bare = try #require(HealthProbe.Target(url: "http://localhost"))
        #expect(bare == HealthProbe.Target(host: "localhost", port: 80, path: "/"))
        for bad in ["https://[::1]:9090/", "[::1]:9090", "http://[::1:9090/", "http://:9090/", "http://h:0/",
                    "http://h:99999/", "http://[::1]x/", "http://u@h/"] {
            #expect(HealthProbe.Target(url: bad) == nil, "\(bad)")
        }
    }

    @Test("reads the status code from the status line")
    func statusLine() {
        #expect(HealthProbe.parseStatusLine(Array("HTTP/1.1 200 OK\r\n".utf8)) == .status(200))
        #expect(HealthProbe.parseStatusLine(Array("HTTP/1.0 503 Service Unavailable\r\n".utf8)) == .status(503))
        #expect(!HealthProbe.parseStatusLine(Array("SSH-2.0-OpenSSH\r\n".utf8)).healthy)
        #expect(!HealthProbe.parseStatusLine([]).healthy)
    }

    @Test("ready admin server: exit status 0 over [::1] and 127.0.0.1", arguments: [false, true])
    func ready(ipv4: Bool) async throws {
        try await withAdminServer(.init(listen: ["[::]:0"])) { _, addresses in
            let address = try clientAddress(try #require(addresses.first), ipv4: ipv4)
            let url = ipv4 ? "http://127.0.0.1:\(address.port!)/readyz" : "http://[::1]:\(address.port!)/readyz"
            #expect(await Self.probe([url]) == 0)
        }
    }

    @Test("draining admin server (503) fails the probe with status 1")
    func notReady() async throws {
        let provider = FakeProvider()
        provider.readinessAnswer = Readiness(ready: false, reason: "draining")
        try await withAdminServer(.init(listen: ["127.0.0.1:0"]), provider: provider) { _, addresses in
            let port = try #require(addresses.first?.port)
            let outcomes = await Self.onThread {
                HealthProbe(targets: [HealthProbe.Target(url: "http://127.0.0.1:\(port)/readyz")!]).run().map(\.1)
            }
            #expect(outcomes == [.status(503)])
            #expect(await Self.probe(["http://127.0.0.1:\(port)/readyz"]) == 1)
        }
    }

    @Test("a refused first URL falls through to the second")
    func fallsThrough() async throws {
        let closed = try Self.closedPort()
        try await withAdminServer(.init(listen: ["127.0.0.1:0"])) { _, addresses in
            let port = try #require(addresses.first?.port)
            let urls = ["http://127.0.0.1:\(closed)/readyz", "http://127.0.0.1:\(port)/readyz"]
            #expect(await Self.probe(urls) == 0)
        }
        #expect(await Self.probe(["http://127.0.0.1:\(closed)/readyz"]) == 1)
        #expect(await Self.probe(["not-a-url"]) == 2)
    }

    @Test("a peer that accepts and never answers times out within the budget")
    func timesOut() async throws {
        // A listening socket nobody accepts from: the kernel completes the handshake, no response ever comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 4) == 0
                && getsockname(fd, $0, &length) == 0 }
        })
        let port = UInt16(bigEndian: address.sin_port)
        let started = ContinuousClock.now
        let outcomes = await Self.onThread {
            HealthProbe(targets: [HealthProbe.Target(url: "http://127.0.0.1:\(port)/")!], timeoutMilliseconds: 300)
                .run().map(\.1)
        }
        #expect(outcomes == [.failed("read: timed out")])
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// Runs the blocking probe the way the executable does: alone on its thread.
    static func probe(_ urls: [String]) async -> Int32 {
        await Self.onThread { HealthProbe.exitStatus(urls: urls, timeoutMilliseconds: 2_000) }
    }

    /// Runs blocking `work` on a thread of its own. Not on the cooperative pool: tests run in parallel, and blocked
    /// pool threads would starve the admin server's own tasks until the probe times out.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }

    /// A loopback port with no listener: bind one, note its port, close it.
    static func closedPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(ok)
        return UInt16(bigEndian: address.sin_port)
    }
}
