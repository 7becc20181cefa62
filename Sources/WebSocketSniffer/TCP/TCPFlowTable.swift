/// A flow's key: its two endpoints in canonical (sorted) order, so both directions find the same flow.
struct TCPFlowKey: Hashable {
    var low: TCPEndpoint
    var high: TCPEndpoint

    init(_ a: TCPEndpoint, _ b: TCPEndpoint) {
        if a < b {
            low = a
            high = b
        } else {
            low = b
            high = a
        }
    }
}

/// A tracked flow.
struct TCPFlow {
    var key: TCPFlowKey
    var info: TCPFlowInfo
    var forward = TCPStreamState()
    var backward = TCPStreamState()
    var lastSeen: Double
    /// Closed by FIN or RST and kept only so that its last ACKs and retransmissions are not taken for a new
    /// connection picked up mid-stream.
    var finished = false
    // Links of the recency list.
    var older = -1
    var newer = -1

    init(key: TCPFlowKey, info: TCPFlowInfo, lastSeen: Double) {
        self.key = key
        self.info = info
        self.lastSeen = lastSeen
    }

    subscript(direction: TCPDirection) -> TCPStreamState {
        _read {
            switch direction {
            case .initiatorToResponder: yield forward
            case .responderToInitiator: yield backward
            }
        }
        _modify {
            switch direction {
            case .initiatorToResponder: yield &forward
            case .responderToInitiator: yield &backward
            }
        }
    }
}

/// Flows by key, in slots linked from least to most recently active, so that lookup, touching, idle expiry
/// and eviction of the oldest are all O(1).
struct TCPFlowTable {
    private var index: [TCPFlowKey: Int] = [:]
    private(set) var slots: [TCPFlow] = []
    private var freeSlots: [Int] = []
    /// Least recently active slot, or -1.
    private(set) var oldest = -1
    private var newest = -1

    var count: Int { index.count }

    func slot(for key: TCPFlowKey) -> Int? { index[key] }

    subscript(slot: Int) -> TCPFlow {
        _read { yield slots[slot] }
        _modify { yield &slots[slot] }
    }

    /// Adds a flow as the most recent; returns its slot.
    mutating func insert(_ flow: TCPFlow) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = flow
        } else {
            slot = slots.count
            slots.append(flow)
        }
        index[flow.key] = slot
        link(slot)
        return slot
    }

    /// Removes a flow; its slot is reused.
    mutating func remove(_ slot: Int) {
        unlink(slot)
        index[slots[slot].key] = nil
        slots[slot].forward = TCPStreamState()
        slots[slot].backward = TCPStreamState()
        freeSlots.append(slot)
    }

    /// Marks a flow as the most recently active.
    mutating func touch(_ slot: Int, time: Double) {
        slots[slot].lastSeen = max(slots[slot].lastSeen, time)
        guard slot != newest else { return }
        unlink(slot)
        link(slot)
    }

    /// Slots of all flows, in flow ID order.
    var slotsByID: [Int] {
        index.values.sorted { slots[$0].info.id < slots[$1].info.id }
    }

    private mutating func link(_ slot: Int) {
        slots[slot].older = newest
        slots[slot].newer = -1
        if newest >= 0 { slots[newest].newer = slot } else { oldest = slot }
        newest = slot
    }

    private mutating func unlink(_ slot: Int) {
        let older = slots[slot].older
        let newer = slots[slot].newer
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        slots[slot].older = -1
        slots[slot].newer = -1
    }
}
