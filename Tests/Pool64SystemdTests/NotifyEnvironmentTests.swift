import Testing

@testable import Pool64Systemd

/// Reading NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as sd_notify(3) and sd_watchdog_enabled(3) do.
@Suite struct NotifyEnvironmentTests {
    @Test func unsetMeansNothingToDo() {
        let env = NotifyEnvironment(environment: [:], pid: 10)
        #expect(env.socket == nil)
        #expect(env.watchdogTimeout == nil)
        #expect(env.problems.isEmpty)
        #expect(NotifyEnvironment(environment: ["NOTIFY_SOCKET": ""], pid: 10).socket == nil)
    }

    @Test func pathAndAbstractAddresses() throws {
        let path = NotifyEnvironment(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"], pid: 10)
        #expect(path.socket == .path("/run/systemd/notify"))
        #expect(path.socket?.sunPath == Array("/run/systemd/notify".utf8) + [0])
        let abstract = NotifyEnvironment(environment: ["NOTIFY_SOCKET": "@pool64/notify"], pid: 10)
        #expect(abstract.socket == .abstract("pool64/notify"))
        // The '@' becomes a NUL and nothing terminates the name: every byte of an abstract name counts.
        #expect(abstract.socket?.sunPath == [0] + Array("pool64/notify".utf8))
    }

    @Test func unusableAddressesAreProblemsNotCrashes() {
        for value in ["relative/notify", "vsock:2:1234", "/" + String(repeating: "x", count: 107)] {
            let env = NotifyEnvironment(environment: ["NOTIFY_SOCKET": value, "WATCHDOG_USEC": "1000000"], pid: 10)
            #expect(env.socket == nil, "\(value)")
            #expect(env.problems.map(\.variable) == ["NOTIFY_SOCKET"], "\(value)")
            // No socket, no pings.
            #expect(env.watchdogTimeout == nil)
        }
        // 107 path bytes plus the NUL fill sun_path exactly; an abstract name may use all 107 bytes after the NUL.
        func socket(_ value: String) -> NotifySocketAddress? {
            NotifyEnvironment(environment: ["NOTIFY_SOCKET": value], pid: 1).socket
        }
        #expect(socket("/" + String(repeating: "x", count: 106)) != nil)
        #expect(socket("@" + String(repeating: "x", count: 107)) != nil)
        #expect(socket("@" + String(repeating: "x", count: 108)) == nil)
    }

    @Test func watchdogPingsEveryHalfTimeout() {
        let env = NotifyEnvironment(environment: ["NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "30000000"], pid: 10)
        #expect(env.watchdogTimeout == .seconds(30))
        #expect(env.watchdogInterval == .seconds(15))
        let mine = NotifyEnvironment(
            environment: ["NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "10"], pid: 10)
        #expect(mine.watchdogInterval == .seconds(1))
    }

    @Test func watchdogForAnotherProcessIsDisabled() {
        let env = NotifyEnvironment(
            environment: ["NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "11"], pid: 10)
        #expect(env.watchdogTimeout == nil)
        #expect(env.socket == .abstract("n"))  // notifications still go out; only the pings are not ours
        #expect(env.problems.isEmpty)
    }

    @Test func badWatchdogValuesDisableOnlyTheWatchdog() {
        let cases: [(String, String?)] = [
            ("0", nil), ("-5", nil), ("soon", nil), ("18446744073709551615", nil), ("1000", "x"), ("1000", "-1"),
        ]
        for (usec, pid) in cases {
            var vars = ["NOTIFY_SOCKET": "@n", "WATCHDOG_USEC": usec]
            vars["WATCHDOG_PID"] = pid
            let env = NotifyEnvironment(environment: vars, pid: 10)
            #expect(env.watchdogTimeout == nil, "\(usec) \(pid ?? "-")")
            #expect(env.socket == .abstract("n"))
            #expect(env.problems.count == 1)
        }
    }
}
