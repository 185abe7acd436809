import Testing

@testable import Pool64Core

/// A stand-in for a waiting client.
private final class Waiter: WaitQueueNode {
    let id: Int
    var waitLinks = WaitLinks<Waiter>()
    init(_ id: Int) { self.id = id }
}

@Suite struct WaitQueueTests {
    private func drain(_ q: inout WaitQueue<Waiter>) -> [Int] {
        var ids: [Int] = []
        while let w = q.popFirst() { ids.append(w.id) }
        return ids
    }

    @Test func servesWaitersInArrivalOrder() {
        var q = WaitQueue<Waiter>()
        #expect(q.isEmpty)
        let none = q.popFirst()
        #expect(none == nil)
        for i in 1...5 { q.append(Waiter(i)) }
        #expect(q.count == 5)
        #expect(q.first?.id == 1)
        let one = q.popFirst()?.id
        let two = q.popFirst()?.id
        #expect(one == 1 && two == 2)
        q.append(Waiter(6))
        let rest = drain(&q)
        #expect(rest == [3, 4, 5, 6])
        #expect(q.isEmpty && q.count == 0 && q.first == nil)
    }

    @Test func removesAWaiterFromAnyPlace() {
        var q = WaitQueue<Waiter>()
        let w = (0..<6).map(Waiter.init)
        for x in w { q.append(x) }
        let middle = q.remove(w[3])
        let head = q.remove(w[0])
        let tail = q.remove(w[5])
        #expect(middle && head && tail)
        #expect(q.count == 3)
        #expect(q.first === w[1])
        // The links were mended both ways: appending after removals keeps the order.
        q.append(w[0])
        let order = drain(&q)
        #expect(order == [1, 2, 4, 0])
    }

    @Test func removingAClientThatIsNotWaitingDoesNothing() {
        var q = WaitQueue<Waiter>()
        let a = Waiter(1)
        let b = Waiter(2)
        q.append(a)
        let stranger = q.remove(b)
        #expect(stranger == false)
        let served = q.popFirst()
        #expect(served === a)
        // Served (popped) and then gone: its cleanup's cancelWait must be a no-op.
        let again = q.remove(a)
        #expect(again == false)
        #expect(q.isEmpty)
        // A served client can wait again.
        q.append(a)
        #expect(q.count == 1)
        let removed = q.remove(a)
        #expect(removed)
    }

    @Test func keepsWaitersAliveWhileQueuedAndNoLonger() {
        var q = WaitQueue<Waiter>()
        weak var popped: Waiter?
        weak var removed: Waiter?
        weak var kept: Waiter?
        do {
            let a = Waiter(1)
            let b = Waiter(2)
            let c = Waiter(3)
            popped = a
            removed = b
            kept = c
            q.append(a)
            q.append(b)
            q.append(c)
        }
        // Only the queue refers to them now.
        #expect(popped != nil && removed != nil && kept != nil)
        _ = q.popFirst()
        #expect(popped == nil)
        q.remove(removed!)
        #expect(removed == nil)
        #expect(kept?.id == 3)
        _ = drain(&q)
        #expect(kept == nil)
    }
}
