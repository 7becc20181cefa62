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
    /// The time of the flow's own latest packet: where a flow that ends without FIN or RST (idle,
    /// evicted, end of capture) is said to end, as tshark's conversation times say, not when it was
    /// found quiet. (`lastSeen` may be pushed on by a clock stepping back, to keep the sweep's order.)
    var lastPacket: Double
    /// Closed by FIN or RST and kept only so that its last ACKs and retransmissions are not taken for a new
    /// connection picked up mid-stream.
    var finished = false
    /// Closed by a RST: data sent before the RST arrived (or that a stack checking resets exactly,
    /// RFC 5961, goes on sending) may still come, just past what each direction sent.
    var reset = false
    // Links of the recency list.
    var older = -1
    var newer = -1

    init(key: TCPFlowKey, info: TCPFlowInfo, lastSeen: Double) {
        self.key = key
        self.info = info
        self.lastSeen = lastSeen
        self.lastPacket = lastSeen
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
    /// Slots of recently looked-up keys, by a cheap hash of the key: a capture's packets come from a
    /// few busy connections at a time, and hashing a key for the dictionary costs more than the rest
    /// of a packet's bookkeeping. An entry is only a hint, checked against the slot's key; removing a
    /// flow clears its entry, since its slot may be reused.
    private var recent = [Int](repeating: -1, count: Self.recentCount)
    private static let recentCount = 64
    private(set) var slots: [TCPFlow] = []
    private var freeSlots: [Int] = []
    /// Least recently active slot, or -1.
    private(set) var oldest = -1
    private var newest = -1

    var count: Int { index.count }

    /// The slot of the flow between `a` and `b`, either way round. A recent one is found without
    /// building its key (`recentIndex` does not depend on the endpoints' order).
    mutating func slot(between a: TCPEndpoint, _ b: TCPEndpoint) -> Int? {
        let hint = Self.recentIndex(a, b)
        let cached = recent[hint]
        if cached >= 0 {
            let key = slots[cached].key
            if key.low == a ? key.high == b : key.low == b && key.high == a { return cached }
        }
        guard let slot = index[TCPFlowKey(a, b)] else { return nil }
        recent[hint] = slot
        return slot
    }

    subscript(slot: Int) -> TCPFlow {
        _read { yield slots[slot] }
        _modify { yield &slots[slot] }
    }

    /// Whether a direction of a flow has started, read through stored properties: reading through
    /// `TCPFlow`'s direction subscript copied the whole flow, buffers and all, on every packet.
    func isStarted(_ slot: Int, _ direction: TCPDirection) -> Bool {
        direction == .initiatorToResponder ? slots[slot].forward.started : slots[slot].backward.started
    }

    func waitsForAcknowledgedData(_ slot: Int, _ direction: TCPDirection) -> Bool {
        direction == .initiatorToResponder
            ? slots[slot].forward.waitsForAcknowledgedData : slots[slot].backward.waitsForAcknowledgedData
    }

    /// What `acceptInOrder` did: the flow and direction the segment went, and whether its
    /// acknowledgment made the other direction start waiting for bytes not seen yet.
    struct InOrder {
        let flow: TCPFlowID
        let direction: TCPDirection
        let waits: Bool
    }

    /// `TCPReassembler.process`'s common case: the next bytes in order from `source` (or none), on a
    /// flow that has not ended and whose directions await no acknowledged bytes (see
    /// `TCPStreamState.acceptInOrder`), then the segment's `acknowledgment` (if it has one) of the
    /// other direction, and the flow marked active at `time`. Nil, with nothing changed, when the
    /// segment is not that case. (The flow is reached once: through the array and the flow's
    /// direction subscript, each step checked its bounds and uniqueness again.)
    mutating func acceptInOrder(
        _ slot: Int, from source: TCPEndpoint, sequence: UInt32, bytes: UnsafeRawBufferPointer, acknowledgment: UInt32?,
        time: Double, packetNumber: Int, configuration: TCPReassemblerConfiguration, statistics: inout TCPReassemblyStatistics,
        emit: (TCPReassemblyEvent) -> Void
    ) -> InOrder? {
        guard let done = Self.acceptInOrder(
            &slots[slot], from: source, sequence: sequence, bytes: bytes, acknowledgment: acknowledgment, time: time,
            packetNumber: packetNumber, configuration: configuration, statistics: &statistics, emit: emit)
        else { return nil }
        touch(slot, time: time)
        return done
    }

    private static func acceptInOrder(
        _ flow: inout TCPFlow, from source: TCPEndpoint, sequence: UInt32, bytes: UnsafeRawBufferPointer, acknowledgment: UInt32?,
        time: Double, packetNumber: Int, configuration: TCPReassemblerConfiguration, statistics: inout TCPReassemblyStatistics,
        emit: (TCPReassemblyEvent) -> Void
    ) -> InOrder? {
        guard !flow.finished, !flow.forward.waitsForAcknowledgedData, !flow.backward.waitsForAcknowledgedData else { return nil }
        let id = flow.info.id
        let direction: TCPDirection
        if source == flow.info.initiator {
            direction = .initiatorToResponder
            guard flow.forward.acceptInOrder(
                sequence: sequence, bytes: bytes, flow: id, direction: direction, time: time, packetNumber: packetNumber,
                emit: emit)
            else { return nil }
        } else {
            direction = .responderToInitiator
            guard flow.backward.acceptInOrder(
                sequence: sequence, bytes: bytes, flow: id, direction: direction, time: time, packetNumber: packetNumber,
                emit: emit)
            else { return nil }
        }
        flow.lastPacket = time
        guard let acknowledgment else { return InOrder(flow: id, direction: direction, waits: false) }
        let reversed = direction.reversed
        let context = TCPStreamContext(flow: id, direction: reversed, time: time, configuration: configuration)
        let waits = direction == .initiatorToResponder
            ? flow.backward.acknowledge(acknowledgment, context: context, statistics: &statistics, emit: emit)
            : flow.forward.acknowledge(acknowledgment, context: context, statistics: &statistics, emit: emit)
        return InOrder(flow: id, direction: direction, waits: waits)
    }

    /// A cheap, well-mixed position in `recent` for the flow between `a` and `b`, the same either
    /// way round.
    private static func recentIndex(_ a: TCPEndpoint, _ b: TCPEndpoint) -> Int {
        func mix(_ e: TCPEndpoint) -> UInt64 {
            switch e.address {
            case .v4(let x): return (UInt64(x) << 16 | UInt64(e.port)) &* 0x9E37_79B9_7F4A_7C15
            case .v6(let high, let low): return (high ^ (low << 31 | low >> 33) ^ UInt64(e.port)) &* 0x9E37_79B9_7F4A_7C15
            }
        }
        // In the order of their mixes, not added: a sum would let 40001 → 8081 and 40002 → 8080 meet.
        let (x, y) = (mix(a), mix(b))
        let (low, high) = x < y ? (x, y) : (y, x)
        let h = (low ^ (high << 29 | high >> 35)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h >> 58) & (recentCount - 1)
    }

    private static func recentIndex(_ key: TCPFlowKey) -> Int { recentIndex(key.low, key.high) }

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
        recent[Self.recentIndex(flow.key)] = slot
        link(slot)
        return slot
    }

    /// Removes a flow; its slot is reused.
    mutating func remove(_ slot: Int) {
        let hint = Self.recentIndex(slots[slot].key)
        if recent[hint] == slot { recent[hint] = -1 }
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
