import Foundation
import Pool64Wire

/// What a running pool64 hands its successor along with its listening sockets (one descriptor per entry of
/// `listeners`, in order). Sent as one JSON line in the same `sendmsg` as the descriptors.
public struct HandoverOffer: Codable, Sendable, Equatable {
    /// Version of the hand-over exchange; a successor refuses an offer it does not understand.
    public static let currentVersion = 1
    /// Longest offer line accepted, bytes: an offer is a few hundred bytes, so anything near this is not one.
    public static let maximumSize = 16 * 1024

    public var version: Int
    /// The offering process, for logs.
    public var pid: Int32
    /// Its cancel-key tag (`CancelKey`): the successor picks the next one, and forwards cancels carrying this one.
    public var cancelKeyTag: UInt8
    /// The configured listen addresses (`[::]:6432`), one per descriptor.
    public var listeners: [String]

    public init(version: Int = HandoverOffer.currentVersion, pid: Int32, cancelKeyTag: UInt8, listeners: [String]) {
        self.version = version
        self.pid = pid
        self.cancelKeyTag = cancelKeyTag
        self.listeners = listeners
    }

    /// The offer as sent: compact JSON and a newline.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding a struct of strings and integers cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// Parses an offer line; nil for anything that is not a complete offer of this version.
    public static func decode(_ bytes: [UInt8]) -> HandoverOffer? {
        guard bytes.count <= maximumSize, let end = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        guard let offer = try? JSONDecoder().decode(HandoverOffer.self, from: Data(bytes[..<end])),
            offer.version == currentVersion, offer.cancelKeyTag <= CancelKey.maximumTag
        else { return nil }
        return offer
    }
}

/// The lines of the hand-over exchange on the control socket:
/// successor → `request`; predecessor → offer (`HandoverOffer`) with descriptors; successor → `accepted` or
/// `refused`; then the successor sends forwarded CancelRequests (16 bytes each, as a client sends them) until either
/// side closes.
public enum HandoverLine {
    public static let request = Array("POOL64-HANDOVER 1\n".utf8)
    public static let accepted = Array("OK\n".utf8)
    public static let refused = Array("NO\n".utf8)
}
