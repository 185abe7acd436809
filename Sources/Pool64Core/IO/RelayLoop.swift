import CPool64Sys
import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// A descriptor watched by the relay loop. A base class rather than a protocol so the loop can call it through
/// `Unmanaged` without retaining it per event (`RelayLoop.run`).
public class RelayLoopHandler {
    init() {}
    /// Readable, hung up or in error: read (a read of 0 or an error tells which).
    func readable() {}
    /// Writable again after a write that did not complete.
    func writable() {}
}

/// pool64's proxy event loop: one thread, one epoll set, every plaintext client and server socket.
///
/// Why not a NIO `SelectableEventLoop` with channels: issue 6 measured the relay through NIO channels at ~23k
/// instructions per `pgbench -S` transaction, a third of it reference counting in the channel pipeline, and 7 KiB
/// per idle client (a channel, its pipeline, contexts and a pooled receive buffer each). PgBouncer spends ~5k
/// instructions and 1 KiB. Here a socket is a descriptor, an entry in an array and a small object
/// (`SocketConnection`); reads go into one buffer shared by the whole loop, writes go straight to `send(2)`.
///
/// It is still a NIO `EventLoop`: futures, promises, `scheduleTask`, `submit` and `execute` work as before, so
/// the pool, the admin bridge and the lifecycle code use it unchanged. TLS connections stay NIO channels on a
/// helper loop (`ChannelTransport`) and hop here for every read.
///
/// Thread safety: `execute`, `scheduleTask` and `submit` may be called from any thread; everything else only on the
/// loop's own thread.
public final class RelayLoop: EventLoop, @unchecked Sendable {
    private let epfd: Int32
    private let wakeFD: Int32
    private var threadID = pthread_t()
    private let lock = NIOLock()
    // Guarded by `lock`.
    private var tasks: [() -> Void] = []
    private var wakePending = false
    private var stopRequested = false
    private var shutdownCallbacks: [(Error?) -> Void] = []
    // Loop-confined.
    /// Per descriptor number: its handler (retained while registered) and a registration generation. Raw memory,
    /// not arrays: every read of an array held by a class retains and releases its buffer, twice per event here.
    private var slotCount = 0
    private var handlers = UnsafeMutablePointer<Unmanaged<RelayLoopHandler>?>.allocate(capacity: 1)
    private var generations = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    /// Handlers unregistered (and transport delegates detached) during the current batch of events, released when it
    /// ends: the loop calls handlers, and sockets their delegates, without retaining them, so one dropped while it
    /// runs must stay alive until it returns.
    private var retired: [AnyObject] = []
    /// `!retired.isEmpty`, kept as a Bool: the loop checks it after every batch, and reading the array would retain
    /// its buffer each time.
    private var hasRetired = false
    /// Delegates whose output waits for the end of the turn (`flushAtEndOfTurn`), and `!deferred.isEmpty` as a Bool
    /// for the same reason as `hasRetired`.
    private var deferred: [TransportDelegate] = []
    private var hasDeferred = false
    private var timers = TimerHeap()
    private var timerSequence: UInt64 = 0
    private var stopped = false
    /// Tasks were queued from the loop thread itself (those do not signal the eventfd).
    private var localTasksQueued = false
    /// The eventfd fired in this turn: other threads queued tasks (or asked the loop to stop).
    private var woken = false
    /// When the current turn's events arrived (refreshed again before timers run). Loop thread only. Handlers
    /// stamp activity and transaction times with it instead of reading the clock per message.
    private(set) var turnTime = NIODeadline.now()
    /// The buffer every read lands in. Receivers keep slices of it; when one does, the next read gets fresh
    /// storage (`ByteBuffer.clear()` copies on write), so idle sockets hold no buffer of their own.
    private var readBuffer: ByteBuffer
    static let readBufferSize = 64 * 1024
    /// Output buffers of clients between transactions: a client takes one when it gets a server and gives it back
    /// when the transaction ends, so idle clients hold none and busy ones do not malloc and free one each time.
    private var spareBuffers: [ByteBuffer] = []

    /// Never written (a write copies it first): left in place of buffers moved out (`recycle`), and what idle
    /// clients hold as their output buffer.
    let emptyBuffer = ByteBufferAllocator().buffer(capacity: 0)

    /// Runs `body` with the shared read buffer in place (loop thread only; reads do not nest).
    @inline(__always)
    func withReadBuffer<R>(_ body: (inout ByteBuffer) -> R) -> R {
        body(&readBuffer)
    }

    /// A cleared output buffer (loop thread only).
    func takeBuffer() -> ByteBuffer {
        spareBuffers.popLast() ?? allocator.buffer(capacity: 1024)
    }

    /// Moves a buffer nobody else references to the spares, leaving an empty one in its place (loop thread only).
    /// `inout` so the buffer is moved, not copied: a copy would make `clear()` allocate fresh storage.
    func recycle(_ buffer: inout ByteBuffer) {
        var b = emptyBuffer
        swap(&b, &buffer)
        guard spareBuffers.count < 256, b.capacity <= 16 * 1024 else { return }
        b.clear()
        spareBuffers.append(b)
    }

    public let allocator = ByteBufferAllocator()

    /// Starts the loop's thread.
    public init(name: String = "pool64-relay") {
        // Sockets are written with MSG_NOSIGNAL; libpq and NIO guard their own writes. Ignore SIGPIPE anyway so a
        // write path that forgets cannot kill the process.
        _ = signal(SIGPIPE, SIG_IGN)
        epfd = cpool64_epoll_create()
        precondition(epfd >= 0, "epoll_create1 failed: errno \(errno)")
        wakeFD = cpool64_eventfd()
        precondition(wakeFD >= 0, "eventfd failed: errno \(errno)")
        readBuffer = allocator.buffer(capacity: Self.readBufferSize)
        _ = cpool64_epoll_ctl(epfd, Int32(CPOOL64_EPOLL_CTL_ADD), wakeFD, UInt32(CPOOL64_EPOLLIN), UInt64(UInt32.max))
        let started = DispatchSemaphore(value: 0)
        let box = Unmanaged.passRetained(ThreadStart { [self] in
            threadID = pthread_self()
            cpool64_set_thread_name(name)
            started.signal()
            run()
        })
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let start = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
            start.body()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(t)
        started.wait()
    }

    // MARK: Descriptors

    /// Watches `fd` for the given `CPOOL64_EPOLL*` events. Loop thread only.
    func register(_ fd: Int32, _ handler: RelayLoopHandler, events: UInt32) -> Bool {
        let i = Int(fd)
        if i >= slotCount { growSlots(to: max(i + 1, slotCount * 2, 64)) }
        retire(i)
        generations[i] &+= 1
        handlers[i] = .passRetained(handler)
        if cpool64_epoll_ctl(epfd, Int32(CPOOL64_EPOLL_CTL_ADD), fd, events, token(fd)) != 0 {
            retire(i)
            return false
        }
        return true
    }

    private func growSlots(to n: Int) {
        let h = UnsafeMutablePointer<Unmanaged<RelayLoopHandler>?>.allocate(capacity: n)
        let g = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        if slotCount > 0 {
            h.moveInitialize(from: handlers, count: slotCount)
            g.moveInitialize(from: generations, count: slotCount)
        }
        (h + slotCount).initialize(repeating: nil, count: n - slotCount)
        (g + slotCount).initialize(repeating: 0, count: n - slotCount)
        handlers.deallocate()
        generations.deallocate()
        handlers = h
        generations = g
        slotCount = n
    }

    /// Empties slot `i`; its handler is released when the current batch of events ends.
    private func retire(_ i: Int) {
        guard let h = handlers[i] else { return }
        handlers[i] = nil
        retired.append(h.takeRetainedValue())
        hasRetired = true
    }

    /// Keeps `object` alive until the current batch of events ends (something may be calling it unretained).
    func keepUntilBatchEnds(_ object: AnyObject) {
        retired.append(object)
        hasRetired = true
    }

    /// Changes the events watched for `fd`.
    func modify(_ fd: Int32, events: UInt32) {
        _ = cpool64_epoll_ctl(epfd, Int32(CPOOL64_EPOLL_CTL_MOD), fd, events, token(fd))
    }

    /// Stops watching `fd` (call before closing it).
    /// `closing`: the caller closes `fd` next and no other descriptor shares its socket, so closing removes it
    /// from the epoll set and the `EPOLL_CTL_DEL` system call is skipped (one per short connection).
    func unregister(_ fd: Int32, closing: Bool = false) {
        let i = Int(fd)
        guard i < slotCount else { return }
        if !closing { _ = cpool64_epoll_ctl(epfd, Int32(CPOOL64_EPOLL_CTL_DEL), fd, 0, 0) }
        retire(i)
        // Events for the old registration still in this batch must not reach a new socket with the same number.
        generations[i] &+= 1
    }

    private func token(_ fd: Int32) -> UInt64 {
        UInt64(generations[Int(fd)]) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    // MARK: The loop

    private func run() {
        let capacity = 256
        let data = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        defer {
            data.deallocate()
            events.deallocate()
        }
        while !stopped {
            let n = cpool64_epoll_wait(epfd, data, events, Int32(capacity), nextTimeout())
            turnTime = .now()
            if n > 0 {
                for k in 0..<Int(n) {
                    let d = data[k]
                    if d == UInt64(UInt32.max) {
                        cpool64_eventfd_drain(wakeFD)
                        woken = true
                        continue
                    }
                    let fd = Int(UInt32(truncatingIfNeeded: d))
                    let gen = UInt32(truncatingIfNeeded: d >> 32)
                    guard fd < slotCount, generations[fd] == gen, let h = handlers[fd] else { continue }
                    // Called without a retain and a release per event: `retired` keeps a handler alive until the
                    // batch ends if it is unregistered while it runs.
                    let ev = events[k]
                    if ev & UInt32(CPOOL64_EPOLLIN | CPOOL64_EPOLLERR | CPOOL64_EPOLLHUP | CPOOL64_EPOLLRDHUP) != 0 {
                        h._withUnsafeGuaranteedRef { $0.readable() }
                    }
                    if ev & UInt32(CPOOL64_EPOLLOUT) != 0, generations[fd] == gen {
                        h._withUnsafeGuaranteedRef { $0.writable() }
                    }
                }
                if hasRetired {
                    hasRetired = false
                    retired.removeAll(keepingCapacity: true)
                }
            }
            runTimers()
            runTasks()
            if hasDeferred { runDeferredFlushes() }
        }
        let callbacks = lock.withLock { () -> [(Error?) -> Void] in
            let c = shutdownCallbacks
            shutdownCallbacks = []
            return c
        }
        Glibc.close(epfd)
        Glibc.close(wakeFD)
        for c in callbacks { c(nil) }
    }

    /// Asks for `delegate.flushDeferred()` once the events, timers and tasks of this turn have run (loop thread
    /// only). Clients' responses wait for it: the turn first sends every server its next query (a finished
    /// transaction's server goes to the next waiter before its client hears back), and a client woken by its
    /// response then finds the others that arrived in the same turn instead of being woken once for each. Waking
    /// pgbench or a driver's thread once per response made the pooler be preempted mid-turn about once every three
    /// transactions on 2 cores (issue 6 measured it with `scripts/bench`: `preempted/tx`).
    func flushAtEndOfTurn(_ delegate: TransportDelegate) {
        guard !delegate.flushQueued else { return }
        delegate.flushQueued = true
        deferred.append(delegate)
        hasDeferred = true
    }

    private func runDeferredFlushes() {
        var i = 0
        // Indexing, not iteration: a flush may queue another delegate (it then runs in this same pass).
        while i < deferred.count {
            let d = deferred[i]
            d.flushQueued = false
            d.flushDeferred()
            i += 1
        }
        deferred.removeAll(keepingCapacity: true)
        hasDeferred = false
    }

    // No lock here or in `runTasks` unless there is work: other threads always signal the eventfd (`enqueue`), so a
    // turn without a wake-up and without local tasks has nothing queued.
    private func nextTimeout() -> Int32 {
        if localTasksQueued { return 0 }
        guard let first = timers.first else { return -1 }
        // From the turn's start: at most the handlers' running time longer than exact.
        let ns = (first.deadline - turnTime).nanoseconds
        if ns <= 0 { return 0 }
        // Round up so a timer is never polled a little early and spun on.
        return Int32(min(ns / 1_000_000 + 1, 60_000))
    }

    private func runTimers() {
        // Due by the turn's start or not this turn: one clock read per turn (a timer that came due while
        // handlers ran fires on the next turn, microseconds later).
        guard let first = timers.first, first.deadline <= turnTime else { return }
        let now = NIODeadline.now()
        turnTime = now
        while let first = timers.first, first.deadline <= now {
            timers.removeFirst()
            if let task = first.task {
                first.task = nil
                task()
            }
        }
    }

    private func runTasks() {
        guard woken || localTasksQueued else { return }
        woken = false
        localTasksQueued = false
        // Bounded: tasks queued by these tasks run on the next turn, after I/O.
        let batch = lock.withLock { () -> [() -> Void] in
            wakePending = false
            if stopRequested { stopped = true }
            let b = tasks
            tasks = []
            return b
        }
        for t in batch { t() }
    }

    // MARK: EventLoop

    public var inEventLoop: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    public func execute(_ task: @escaping @Sendable () -> Void) {
        enqueue(task)
    }

    /// `execute` for closures that are not `Sendable`: relay-loop-confined state only; call on the loop.
    func later(_ task: @escaping () -> Void) {
        enqueue(task)
    }

    private func enqueue(_ task: @escaping () -> Void) {
        if inEventLoop {
            lock.withLock { tasks.append(task) }
            localTasksQueued = true
            return
        }
        let wake = lock.withLock { () -> Bool in
            tasks.append(task)
            if wakePending { return false }
            wakePending = true
            return true
        }
        if wake { cpool64_eventfd_signal(wakeFD) }
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise: EventLoopPromise<T> = makePromise()
        let entry = TimerEntry(deadline: deadline)
        entry.task = {
            do { promise.succeed(try task()) } catch { promise.fail(error) }
        }
        let schedule = { [self] in
            timerSequence &+= 1
            entry.sequence = timerSequence
            timers.insert(entry)
        }
        if inEventLoop { schedule() } else { enqueue(schedule) }
        return Scheduled(promise: promise) { [self] in
            let cancel = {
                guard entry.task != nil else { return }
                entry.task = nil
                promise.fail(EventLoopError.cancelled)
            }
            if inEventLoop { cancel() } else { enqueue(cancel) }
        }
    }

    public func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + delay, task)
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(inEventLoop, "not on the relay loop", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!inEventLoop, "on the relay loop", file: file, line: line)
    }

    // MARK: EventLoopGroup

    public func next() -> EventLoop { self }
    public func any() -> EventLoop { self }
    public func makeIterator() -> EventLoopIterator { EventLoopIterator([self]) }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let wake = lock.withLock { () -> Bool in
            shutdownCallbacks.append { e in queue.async { callback(e) } }
            stopRequested = true
            return true
        }
        if wake { cpool64_eventfd_signal(wakeFD) }
    }
}

private final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A timer; `task` is nil once run or cancelled.
final class TimerEntry {
    let deadline: NIODeadline
    var sequence: UInt64 = 0
    var task: (() -> Void)?
    init(deadline: NIODeadline) { self.deadline = deadline }
}

/// Binary min-heap of timers by deadline, then by insertion order.
struct TimerHeap {
    private var items: [TimerEntry] = []

    var first: TimerEntry? { items.first }
    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }

    private static func less(_ a: TimerEntry, _ b: TimerEntry) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence)
    }

    mutating func insert(_ e: TimerEntry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    @discardableResult
    mutating func removeFirst() -> TimerEntry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && Self.less(items[l], items[m]) { m = l }
                if r < items.count && Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
