/// pool64's BackendKeyData layout. The process ID a client receives carries the issuing process's tag in bits 27–30,
/// so a CancelRequest that reaches the successor after a hand-over (the listening socket is shared; the cancel's
/// connection lands on whichever process accepts now) can be told apart and forwarded to the process that owns the
/// client (PgBouncer's `peer_id` idea, with the peer found through the hand-over instead of configured).
public enum CancelKey {
    /// Tags are 4 bits: 16 generations of hand-overs before a tag repeats, by then long drained.
    public static let maximumTag: UInt8 = 15
    static let tagShift: UInt32 = 27
    static let randomMask: UInt32 = (1 << 27) - 1

    /// A positive process ID made of `tag` and 27 random bits (0 when those bits are all zero: the caller retries,
    /// since PostgreSQL clients treat 0 as "no key").
    public static func processID(tag: UInt8, random: UInt32) -> Int32 {
        Int32(bitPattern: (UInt32(tag & maximumTag) << tagShift) | (random & randomMask))
    }

    /// The tag a process ID was issued with.
    public static func tag(of processID: Int32) -> UInt8 {
        UInt8((UInt32(bitPattern: processID) >> tagShift) & UInt32(maximumTag))
    }

    /// The tag a successor takes after a predecessor with `tag`.
    public static func successor(of tag: UInt8) -> UInt8 {
        (tag &+ 1) & maximumTag
    }

    /// The 16-byte CancelRequest packet (PostgreSQL "Message Formats": length 16, code 80877102, process ID, key).
    public static func cancelRequest(processID: Int32, secretKey: Int32) -> [UInt8] {
        var out: [UInt8] = []
        for v in [Int32(16), 80_877_102, processID, secretKey] {
            withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// The process ID and key of a 16-byte CancelRequest packet; nil for anything else.
    public static func parseCancelRequest(_ bytes: [UInt8]) -> (processID: Int32, secretKey: Int32)? {
        guard bytes.count == 16 else { return nil }
        func int(_ at: Int) -> Int32 {
            Int32(bitPattern: bytes[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        guard int(0) == 16, int(4) == 80_877_102 else { return nil }
        return (int(8), int(12))
    }
}
