import CPool64Sys
import Foundation
import Glibc
import Logging
import Pool64Wire
import Synchronization
import Testing

@testable import Pool64Handover

@Suite struct CancelKeyTests {
    @Test func tagRoundTripsThroughTheProcessID() {
        for tag in UInt8(0)...CancelKey.maximumTag {
            for random: UInt32 in [1, 0x07ff_ffff, 0xffff_ffff, 0x1234_5678] {
                let pid = CancelKey.processID(tag: tag, random: random)
                #expect(pid > 0 || (tag == 0 && random & 0x07ff_ffff == 0))
                #expect(CancelKey.tag(of: pid) == tag)
            }
        }
    }

    @Test func successorTagWrapsAfterFifteen() {
        #expect(CancelKey.successor(of: 0) == 1)
        #expect(CancelKey.successor(of: 14) == 15)
        #expect(CancelKey.successor(of: 15) == 0)
    }

    @Test func cancelRequestPacketIsPostgreSQLs() {
        let packet = CancelKey.cancelRequest(processID: 0x0102_0304, secretKey: -2)
        #expect(packet == [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe])
        let parsed = CancelKey.parseCancelRequest(packet)
        #expect(parsed?.processID == 0x0102_0304)
        #expect(parsed?.secretKey == -2)
        #expect(CancelKey.parseCancelRequest(Array(packet.dropLast())) == nil)
        var wrongCode = packet
        wrongCode[7] = 0
        #expect(CancelKey.parseCancelRequest(wrongCode) == nil)
    }
}

@Suite struct HandoverOfferTests {
    @Test func offerRoundTrips() {
        let offer = HandoverOffer(pid: 42, cancelKeyTag: 7, listeners: ["[::]:6432", "127.0.0.1:7000"])
        let bytes = offer.encoded()
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(HandoverOffer.decode(bytes) == offer)
    }

    @Test func garbageAndOtherVersionsAreNotOffers() {
        #expect(HandoverOffer.decode(Array("hello\n".utf8)) == nil)
        #expect(HandoverOffer.decode(Array("{\"version\":1}".utf8)) == nil)
        var future = HandoverOffer(pid: 1, cancelKeyTag: 1, listeners: [])
        future.version = 2
        #expect(HandoverOffer.decode(future.encoded()) == nil)
        let badTag = #"{"cancelKeyTag":16,"listeners":[],"pid":1,"version":1}"# + "\n"
        #expect(HandoverOffer.decode(Array(badTag.utf8)) == nil)
        #expect(HandoverOffer.decode([UInt8](repeating: UInt8(ascii: "{"), count: 20_000) + [10]) == nil)
    }
}

/// The exchange over a real Unix socket, with a real listening TCP socket handed over.
@Suite struct HandoverExchangeTests {
    final class Events: Sendable {
        let handedOver = Mutex<[Int32?]>([])
        let cancels = Mutex<[[Int32]]>([])
    }

    func tempPath() -> String {
        "/tmp/pool64-handover-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(nanoseconds: 10_000_000) }
    }

    @Test func successorReceivesTheListenerAndForwardsCancels() async throws {
        let path = tempPath()
        defer { unlink(path) }
        let tcp = cpool64_listen("127.0.0.1", 0, -1, 16)
        #expect(tcp >= 0)
        defer { close(tcp) }
        let events = Events()
        let server = HandoverServer(
            path: path,
            handlers: .init(
                offer: { (HandoverOffer(pid: getpid(), cancelKeyTag: 3, listeners: ["127.0.0.1:0"]), [tcp]) },
                handedOver: { pid in events.handedOver.withLock { $0.append(pid) } },
                cancel: { pid, key in events.cancels.withLock { $0.append([pid, key]) } }),
            logger: Logger(label: "test"))
        try server.start()

        let predecessor = try #require(try Predecessor.request(path: path, logger: Logger(label: "test")))
        #expect(predecessor.offer.cancelKeyTag == 3)
        let inherited = try #require(predecessor.listeners["127.0.0.1:0"])
        #expect(inherited != tcp)
        #expect(cpool64_socket_is_listening_tcp(inherited) == 1)
        var host = [CChar](repeating: 0, count: 64)
        var a: Int32 = 0
        var b: Int32 = 0
        _ = cpool64_local_address(tcp, &host, 64, &a)
        _ = cpool64_local_address(inherited, &host, 64, &b)
        #expect(a == b)
        close(inherited)

        try predecessor.accept()
        try await waitUntil { events.handedOver.withLock { !$0.isEmpty } }
        #expect(events.handedOver.withLock { $0 } == [getpid()])
        predecessor.forwardCancel(processID: 1234, secretKey: -5)
        try await waitUntil { events.cancels.withLock { !$0.isEmpty } }
        #expect(events.cancels.withLock { $0 } == [[1234, -5]])
        // One hand-over per process: the control socket is closed now.
        #expect(try Predecessor.request(path: path, logger: Logger(label: "test")) == nil)
    }

    @Test func noPredecessorMeansBindYourOwn() throws {
        let path = tempPath()
        #expect(try Predecessor.request(path: path, logger: Logger(label: "test")) == nil)
        // A stale socket file nobody listens on is the same.
        let fd = cpool64_unix_listen(path, 1)
        #expect(fd >= 0)
        close(fd)
        defer { unlink(path) }
        #expect(try Predecessor.request(path: path, logger: Logger(label: "test")) == nil)
    }

    @Test func aRefusedOfferLeavesThePredecessorServing() async throws {
        let path = tempPath()
        defer { unlink(path) }
        let tcp = cpool64_listen("127.0.0.1", 0, -1, 16)
        defer { close(tcp) }
        let events = Events()
        let server = HandoverServer(
            path: path,
            handlers: .init(
                offer: { (HandoverOffer(pid: 1, cancelKeyTag: 0, listeners: ["127.0.0.1:0"]), [tcp]) },
                handedOver: { pid in events.handedOver.withLock { $0.append(pid) } },
                cancel: { _, _ in }),
            logger: Logger(label: "test"))
        try server.start()
        let first = try #require(try Predecessor.request(path: path, logger: Logger(label: "test")))
        first.refuse()
        // Still offering: a second successor can take over.
        let second = try #require(try Predecessor.request(path: path, logger: Logger(label: "test")))
        try second.accept()
        try await waitUntil { events.handedOver.withLock { !$0.isEmpty } }
        #expect(events.handedOver.withLock { $0.count } == 1)
        for fd in first.listeners.values { close(fd) }
        for fd in second.listeners.values { close(fd) }
    }

    @Test func somethingThatIsNotASuccessorIsTurnedAway() async throws {
        let path = tempPath()
        defer { unlink(path) }
        let events = Events()
        let server = HandoverServer(
            path: path,
            handlers: .init(
                offer: { (HandoverOffer(pid: 1, cancelKeyTag: 0, listeners: []), []) },
                handedOver: { pid in events.handedOver.withLock { $0.append(pid) } },
                cancel: { _, _ in }),
            logger: Logger(label: "test"))
        try server.start()
        let fd = cpool64_unix_connect(path)
        #expect(fd >= 0)
        let junk = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        _ = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var byte: UInt8 = 0
        // Closed without an answer: end of stream, or a reset since the rest of the junk was never read.
        #expect(recv(fd, &byte, 1, 0) <= 0)
        close(fd)
        #expect(events.handedOver.withLock { $0.isEmpty })
        server.stop()
    }
}
