import NIOCore

/// Splits a byte stream of typed PostgreSQL messages (type byte + Int32 length + body) into frames.
///
/// Small messages come out whole, as slices of the received buffers (no copy unless a message straddles two reads).
/// Large messages of *streamable* types (DataRow, CopyData) are handed out in pieces as they arrive, so a 1 GB
/// COPY never sits in memory: relaying them needs only their type, not their content.
public struct MessageFramer: Sendable {
    /// One unit of output.
    public enum Frame: Sendable {
        /// A whole message: its type and a slice holding header and body.
        case message(type: UInt8, frame: ByteBuffer)
        /// A piece of a large streamable message of `type`; `first` marks the piece carrying the header.
        case piece(type: UInt8, bytes: ByteBuffer, first: Bool)
    }

    private var buffer: ByteBuffer?
    private var streamingType: UInt8 = 0
    private var streamingRemaining = 0
    /// Largest message accepted (header included); longer lengths are rejected before anything is buffered.
    public let maximumMessageSize: Int
    /// Messages at least this long of a streamable type are streamed instead of buffered.
    public let streamingThreshold: Int
    private let streamable: (UInt8, UInt8)

    /// - Parameter streamableTypes: up to two type bytes whose large messages are streamed in pieces.
    public init(maximumMessageSize: Int, streamingThreshold: Int = 64 * 1024, streamableTypes: (UInt8, UInt8)) {
        self.maximumMessageSize = maximumMessageSize
        self.streamingThreshold = streamingThreshold
        self.streamable = streamableTypes
    }

    /// Bytes received but not yet returned as frames.
    public var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    /// Adds received bytes.
    public mutating func append(_ incoming: ByteBuffer) {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = incoming
        } else {
            var incoming = incoming
            buffer!.writeBuffer(&incoming)
        }
    }

    /// Adds bytes left over from an earlier phase (e.g. startup) in front of nothing else.
    public mutating func prepend(_ leftover: ByteBuffer) {
        guard leftover.readableBytes > 0 else { return }
        if var existing = buffer, existing.readableBytes > 0 {
            var combined = leftover
            combined.writeBuffer(&existing)
            buffer = combined
        } else {
            buffer = leftover
        }
    }

    /// The next frame, nil when more bytes are needed. Throws on a length that is negative or too large.
    public mutating func next() throws(WireError) -> Frame? {
        guard var buf = buffer, buf.readableBytes > 0 else { return nil }
        defer { buffer = buf.readableBytes > 0 ? buf : nil }
        if streamingRemaining > 0 {
            let n = min(streamingRemaining, buf.readableBytes)
            streamingRemaining -= n
            return .piece(type: streamingType, bytes: buf.readSlice(length: n)!, first: false)
        }
        guard buf.readableBytes >= 5 else { return nil }
        let type = buf.getInteger(at: buf.readerIndex, as: UInt8.self)!
        let length = Int(buf.getInteger(at: buf.readerIndex + 1, as: Int32.self)!)
        guard length >= 4 else {
            throw WireError(.invalidLength, message: String(UnicodeScalar(type)), detail: "length \(length)")
        }
        guard length < maximumMessageSize else {
            throw WireError(
                .messageTooLarge, message: String(UnicodeScalar(type)),
                detail: "length \(length) exceeds the limit of \(maximumMessageSize) bytes", sqlstate: "54000")
        }
        let total = length + 1
        if buf.readableBytes >= total {
            return .message(type: type, frame: buf.readSlice(length: total)!)
        }
        if total >= streamingThreshold && (type == streamable.0 || type == streamable.1) {
            let n = buf.readableBytes
            streamingType = type
            streamingRemaining = total - n
            return .piece(type: type, bytes: buf.readSlice(length: n)!, first: true)
        }
        return nil
    }
}
