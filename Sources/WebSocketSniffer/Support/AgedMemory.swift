/// Values remembered for a while, by key, each with the capture time it was remembered at: let go
/// oldest first, when too many are kept or they grow too old. (A key remembered again keeps only
/// the later value; its earlier place in the order is passed over when reached.)
struct AgedMemory<Key: Hashable, Value> {
    private var entries: [Key: (value: Value, time: Double)] = [:]
    private var order = FIFOQueue<(key: Key, time: Double)>()

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    subscript(key: Key) -> (value: Value, time: Double)? { entries[key] }

    /// Remembers `value` for `key` at `time`, in place of what was remembered for it.
    mutating func remember(_ value: Value, for key: Key, at time: Double) {
        entries[key] = (value, time)
        order.append((key, time))
    }

    /// Lets go of what is remembered for `key`.
    @discardableResult
    mutating func forget(_ key: Key) -> Value? { entries.removeValue(forKey: key)?.value }

    /// Lets go of the oldest value, if any.
    mutating func forgetOldest() -> (key: Key, value: Value)? {
        while let (key, time) = order.first {
            order.removeFirst()
            if let e = entries[key], e.time == time {
                entries[key] = nil
                return (key, e.value)
            }
        }
        return nil
    }

    /// Lets go of the oldest values while `isOld` says their time is old (a clock gone back keeps
    /// the ones after until they are let go for room), telling `body` each one.
    mutating func forget(while isOld: (Double) -> Bool, _ body: (Key, Value) -> Void = { _, _ in }) {
        while let (key, time) = order.first, isOld(time) {
            order.removeFirst()
            if let e = entries[key], e.time == time {
                entries[key] = nil
                body(key, e.value)
            }
        }
    }
}
