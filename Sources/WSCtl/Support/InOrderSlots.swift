/// Values put in one after another and moved out in the same order, in memory allocated once and
/// freed by `free()`: the item store of the batches `sniff -r` passes between its threads
/// (`ReassemblyReadAhead.Batch`, `SniffPipeline.Batch`). A plain value, so that passing a batch on,
/// adding an item and taking one out touch no reference count. It knows which values are still
/// in it, wherever it is when freed: a value holding a reference (a read error, a handshake's
/// box) is released exactly once, by whoever took it out, or by `free()` if nobody did.
struct InOrderSlots<Element>: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Element>
    let capacity: Int
    private(set) var count = 0
    /// Values moved out, from the first.
    private var taken = 0

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
    }

    var allTaken: Bool { taken == count }

    mutating func append(_ value: Element) {
        _ = appendSlot(value)
    }

    /// Appends `value` and returns its slot, for changes made in place while it is still the
    /// caller's (before the values are handed on).
    mutating func appendSlot(_ value: Element) -> UnsafeMutablePointer<Element> {
        let slot = appendUninitializedSlot()
        slot.initialize(to: value)
        return slot
    }

    /// Appends a slot for a value the caller initializes at once, in place (before anything else
    /// is done with these slots).
    mutating func appendUninitializedSlot() -> UnsafeMutablePointer<Element> {
        precondition(count < capacity)
        let slot = slots + count
        count += 1
        return slot
    }

    /// The next value, moved out.
    mutating func take() -> Element {
        precondition(taken < count)
        taken += 1
        return (slots + taken - 1).move()
    }

    /// The next value, lent where it lies for `body` and then done with (deinitialized).
    mutating func takeInPlace<R>(_ body: (UnsafePointer<Element>) -> R) -> R {
        precondition(taken < count)
        let slot = slots + taken
        taken += 1
        defer { slot.deinitialize(count: 1) }
        return body(slot)
    }

    /// Empties slots whose values were all taken.
    mutating func removeAll() {
        precondition(taken == count)
        count = 0
        taken = 0
    }

    /// Frees the memory and the values not taken.
    mutating func free() {
        if taken < count { (slots + taken).deinitialize(count: count - taken) }
        slots.deallocate()
        count = 0
        taken = 0
    }
}
