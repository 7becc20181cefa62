/// A first-in, first-out queue over an array: an element taken from the front is let go at once
/// and passed by an index, and the array is compacted once at least half of it has been taken,
/// so each operation costs O(1) amortised. For the bounded queues that remember things oldest
/// first (ended connections, completed datagrams, packets held for -w).
public struct FIFOQueue<Element> {
    private var items: [Element?] = []
    private var head = 0

    public init() {}

    public var isEmpty: Bool { head == items.count }
    public var count: Int { items.count - head }
    /// The oldest element, if any.
    public var first: Element? { isEmpty ? nil : items[head] }

    public mutating func append(_ element: Element) { items.append(element) }

    /// Takes the oldest element (the queue must not be empty).
    @discardableResult
    public mutating func removeFirst() -> Element {
        let element = items[head]!
        items[head] = nil
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.capacity <= 4_096)
            head = 0
        } else if head >= 4_096 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }

    /// Changes the oldest element in place (the queue must not be empty).
    public mutating func updateFirst(_ body: (inout Element) -> Void) {
        body(&items[head]!)
    }

    /// The elements, oldest first.
    public var elements: [Element] { items[head...].map { $0! } }

    public mutating func removeAll() {
        items.removeAll()
        head = 0
    }
}
