import Testing

@testable import Pool64Systemd

/// The datagram text for each notification, byte for byte (sd_notify(3) "Well-known assignments").
@Suite struct NotifyMessageTests {
    @Test func readyCarriesMainPIDAndStatus() {
        let m = NotifyMessage(.ready(mainPID: 4242, status: "listening on 127.0.0.1:6432"))
        #expect(m.text == "READY=1\nMAINPID=4242\nSTATUS=listening on 127.0.0.1:6432")
    }

    @Test func readyWithoutExtras() {
        #expect(NotifyMessage(.ready(mainPID: nil, status: nil)).text == "READY=1")
    }

    @Test func reloadingCarriesMonotonicTime() {
        let m = NotifyMessage(.reloading(monotonicMicroseconds: 123_456_789, status: "reloading configuration"))
        #expect(m.text == "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading configuration")
        #expect(m.value(of: "MONOTONIC_USEC") == "123456789")
    }

    @Test func stoppingStatusAndWatchdog() {
        #expect(NotifyMessage(.stopping(status: "draining")).text == "STOPPING=1\nSTATUS=draining")
        #expect(NotifyMessage(.status("serving 3 clients")).text == "STATUS=serving 3 clients")
        #expect(NotifyMessage(.watchdog(status: nil)).text == "WATCHDOG=1")
        #expect(NotifyMessage(.watchdog(status: "serving 0 clients")).text == "WATCHDOG=1\nSTATUS=serving 0 clients")
    }

    @Test func statusCannotInjectAssignments() {
        // An error text in a status must not become a second assignment.
        let m = NotifyMessage(.status("reload rejected: bad\nMAINPID=1\r\nREADY=1\0x"))
        #expect(m.assignments.count == 1)
        #expect(m.text == "STATUS=reload rejected: bad MAINPID=1 READY=1 x")
        #expect(!m.text.contains("\n"))
    }

    @Test func longStatusIsCutOnACharacterBoundary() {
        let long = String(repeating: "é", count: 2_000)  // 2 UTF-8 bytes each
        let value = NotifyMessage(.status(long)).value(of: "STATUS") ?? ""
        #expect(value.utf8.count == NotifyMessage.maxStatusBytes)
        #expect(value.allSatisfy { $0 == "é" })
        #expect(NotifyMessage.sanitized("abcdef", maxBytes: 3) == "abc")
        #expect(NotifyMessage.sanitized("aé", maxBytes: 2) == "a")
    }
}
