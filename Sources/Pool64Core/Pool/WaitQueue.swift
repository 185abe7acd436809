/// Links a node carries so it can sit in a `WaitQueue` (one queue at a time).
struct WaitLinks<Node: AnyObject> {
    fileprivate var next: Unmanaged<Node>?
    fileprivate var previous: Unmanaged<Node>?
    /// True while the node is in a queue.
    fileprivate(set) var queued = false

    init() {}
}

/// Something that can wait in a `WaitQueue`: it stores the queue's links itself.
protocol WaitQueueNode: AnyObject {
    var waitLinks: WaitLinks<Self> { get set }
}

/// Clients waiting for a server connection, first come first served: an intrusive doubly linked list whose links live
/// in the nodes. Appending and popping touch no storage of the queue's own, and removing a client that gives up is
/// O(1) with no search. (A `CircularBuffer` of references cost ~250 instructions per wait under callgrind at
/// `pgbench -c 100`: uniqueness checks on its storage, and a retain and release for each access.)
///
/// The queue keeps each node alive while it is queued (one retain on `append`, given back by `popFirst` or `remove`).
/// Not thread-safe: confined to the proxy event loop like the pool that owns it.
struct WaitQueue<Node: WaitQueueNode> {
    private var head: Unmanaged<Node>?
    private var tail: Unmanaged<Node>?
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { head == nil }

    /// The longest waiter, still queued.
    var first: Node? { head?.takeUnretainedValue() }

    /// Queues `node` last. A node already in a queue is a programming error.
    mutating func append(_ node: Node) {
        precondition(!node.waitLinks.queued, "node is already waiting")
        let n = Unmanaged.passRetained(node)
        node.waitLinks.queued = true
        node.waitLinks.previous = tail
        node.waitLinks.next = nil
        if let tail {
            tail._withUnsafeGuaranteedRef { $0.waitLinks.next = n }
        } else {
            head = n
        }
        tail = n
        count += 1
    }

    /// Takes the longest waiter out of the queue.
    mutating func popFirst() -> Node? {
        guard let h = head else { return nil }
        unlink(h)
        return h.takeRetainedValue()
    }

    /// Takes `node` out of the queue wherever it is; false when it was not queued (it was served, or timed out).
    @discardableResult
    mutating func remove(_ node: Node) -> Bool {
        guard node.waitLinks.queued else { return false }
        let n = Unmanaged.passUnretained(node)
        unlink(n)
        n.release()
        return true
    }

    private mutating func unlink(_ n: Unmanaged<Node>) {
        n._withUnsafeGuaranteedRef { node in
            let previous = node.waitLinks.previous
            let next = node.waitLinks.next
            if let previous {
                previous._withUnsafeGuaranteedRef { $0.waitLinks.next = next }
            } else {
                head = next
            }
            if let next {
                next._withUnsafeGuaranteedRef { $0.waitLinks.previous = previous }
            } else {
                tail = previous
            }
            node.waitLinks = WaitLinks()
        }
        count -= 1
    }
}
