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

    /// Unconsumed bytes; nil when there are none, so a framer with nothing pending holds no storage and the buffer
    /// a read landed in is not kept alive. (An optional rather than a shared empty buffer: a global from this module
    /// costs a `swift_once` call on every use.)
    // `@usableFromInline` (this and the state below): the per-read methods the relay calls (`scanMessages`, `consume`,
    // `take`, `append`, the spare-buffer checks) are `@inlinable`, so they are compiled into the relay itself.
    @usableFromInline var buffer: ByteBuffer?
    /// `buffer` is storage handed in by `movePending(into:)`: once drained it is kept, cleared, for `takeSpare`.
    @usableFromInline var bufferIsLent = false
    /// Lent storage drained and cleared, waiting for its owner to take it back.
    @usableFromInline var spare: ByteBuffer?
    private var streamingType: UInt8 = 0
    @usableFromInline var streamingRemaining = 0
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
    @inlinable public var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    /// Adds received bytes.
    @inlinable public mutating func append(_ incoming: ByteBuffer) {
        guard incoming.readableBytes > 0 else { return }
        if buffer == nil {
            buffer = incoming
        } else {
            // A stream whose reads keep ending mid-message never empties the buffer: drop the consumed prefix
            // (only the partial message moves) so it cannot grow without bound.
            if buffer!.readerIndex > 0 { buffer!.discardReadBytes() }
            buffer!.writeImmutableBuffer(incoming)
        }
    }

    /// True when the pending bytes are a small part of a large buffer (a slice of the relay loop's shared 64 KiB read
    /// buffer, see `movePending(into:)`).
    // `mutating get`: the framer lives in a class, and a plain getter would copy it (retaining its buffers).
    @inlinable public var pendingSharesLargeBuffer: Bool {
        mutating get {
            if buffer == nil { return false }
            return buffer!.capacity >= 16 * 1024 && buffer!.readableBytes * 4 < buffer!.capacity
        }
    }

    /// Moves the pending bytes into storage the caller lends (a cleared spare buffer). Call at the end of a read when
    /// `pendingSharesLargeBuffer`: a framer that kept a slice of the read buffer (a client waiting for a server, a
    /// message split across reads) would make the loop allocate a fresh read buffer for its next read (callgrind at
    /// `pgbench -c 100`: malloc of 64 KiB buffers was ~17 % of the instructions). Once the bytes are consumed the
    /// framer keeps the storage, cleared, until `takeSpare` gives it back.
    // `consuming`: a borrowed argument is still referenced by the caller, so writing to a copy of it would copy its
    // storage first.
    public mutating func movePending(into storage: consuming ByteBuffer) {
        storage.writeImmutableBuffer(buffer!)
        buffer = consume storage
        bufferIsLent = true
    }

    /// True when there is something for `takeSpare` or `movePending(into:)` to do (one check per read on the relay).
    @inlinable public var holdsSpareOrSharedBytes: Bool { mutating get { spare != nil || pendingSharesLargeBuffer } }

    /// Lent storage (`movePending(into:)`) that has been drained, cleared, for its owner to reuse.
    public mutating func takeSpare() -> ByteBuffer? {
        if spare == nil { return nil }
        return spare.take()
    }

    /// Drops the drained buffer; lent storage goes to `spare` instead (only if nothing else refers to it: slices
    /// handed out by `take` still do).
    // Inlined: it runs every time a read's messages are used up, and was one assignment before lending existed.
    @inlinable @inline(__always)
    mutating func drained(sliced: Bool) {
        if bufferIsLent {
            bufferIsLent = false
            if !sliced {
                buffer!.clear()
                spare = buffer.take()
                return
            }
        }
        buffer = nil
    }

    /// Adds bytes left over from an earlier phase (e.g. startup) in front of nothing else.
    public mutating func prepend(_ leftover: ByteBuffer) {
        guard leftover.readableBytes > 0 else { return }
        bufferIsLent = false
        if let current = buffer {
            var combined = leftover
            combined.writeImmutableBuffer(current)
            buffer = combined
        } else {
            buffer = leftover
        }
    }

    /// The next frame, nil when more bytes are needed. Throws on a length that is negative or too large.
    public mutating func next() throws(WireError) -> Frame? {
        let available = bufferedBytes
        guard available > 0 else { return nil }
        // Works on `buffer` in place: copying it out of the property would retain and release its storage per
        // message, which the relay does millions of times.
        if streamingRemaining > 0 {
            let n = min(streamingRemaining, available)
            streamingRemaining -= n
            return .piece(type: streamingType, bytes: take(n), first: false)
        }
        guard available >= 5 else { return nil }
        let start = buffer!.readerIndex
        let type = buffer!.getInteger(at: start, as: UInt8.self)!
        let length = Int(buffer!.getInteger(at: start + 1, as: Int32.self)!)
        guard length >= 4 else {
            throw WireError(.invalidLength, message: String(UnicodeScalar(type)), detail: "length \(length)")
        }
        guard length < maximumMessageSize else {
            throw WireError(
                .messageTooLarge, message: String(UnicodeScalar(type)),
                detail: "length \(length) exceeds the limit of \(maximumMessageSize) bytes", sqlstate: "54000")
        }
        let total = length + 1
        if available >= total {
            return .message(type: type, frame: take(total))
        }
        if total >= streamingThreshold && (type == streamable.0 || type == streamable.1) {
            streamingType = type
            streamingRemaining = total - available
            return .piece(type: type, bytes: take(available), first: true)
        }
        return nil
    }

    /// What `scanMessages` does with the message it just showed.
    public enum ScanStep: Sendable {
        /// Part of the run; go on.
        case take
        /// Part of the run; stop after it.
        case takeAndStop
        /// Not part of the run; stop before it.
        case stop
    }

    /// Shows `body` each whole message from the start (type and bytes, header included) inside one buffer access and
    /// returns how many bytes form the run it accepted, to be consumed with `take(_:)`. Stops at an incomplete or
    /// invalid message (`next()` reports the latter) and while a message is being streamed.
    // `@inlinable`: inlined into the relay's callers, `body` is no longer a closure called through a context per
    // message, and the pointer arithmetic below needs no bounds checks (the loop condition is the bound).
    @inlinable
    public mutating func scanMessages(_ body: (UInt8, UnsafeRawBufferPointer) -> ScanStep) -> Int {
        guard streamingRemaining == 0, let available = buffer?.readableBytes, available >= 5 else { return 0 }
        let limit = maximumMessageSize
        return buffer!.withUnsafeReadableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            let count = raw.count
            var offset = 0
            while count - offset >= 5 {
                let type = base.load(fromByteOffset: offset, as: UInt8.self)
                let length = Int(Int32(bigEndian: base.loadUnaligned(fromByteOffset: offset + 1, as: Int32.self)))
                guard length >= 4, length < limit, count - offset > length else { break }
                let end = offset + length + 1
                switch body(type, UnsafeRawBufferPointer(start: base + offset, count: end - offset)) {
                case .take: offset = end
                case .takeAndStop: return end
                case .stop: return offset
                }
            }
            return offset
        }
    }

    /// Shows `body` the next `n` bytes (whole messages accepted by `scanMessages`) without consuming them; `body`
    /// returns how many of them to consume. Lets the relay send a run straight from the read buffer.
    @inlinable public mutating func consume(upTo n: Int, _ body: (UnsafeRawBufferPointer) -> Int) {
        let used = buffer!.withUnsafeReadableBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        buffer!.moveReaderIndex(forwardBy: used)
        if buffer!.readableBytes == 0 { drained(sliced: false) }
    }

    /// The next `n` bytes as a slice; lets go of the storage when nothing is left. `n` must cover whole messages
    /// accepted by `scanMessages`.
    @inlinable public mutating func take(_ n: Int) -> ByteBuffer {
        let slice = buffer!.readSlice(length: n)!
        if buffer!.readableBytes == 0 { drained(sliced: true) }
        return slice
    }
}
