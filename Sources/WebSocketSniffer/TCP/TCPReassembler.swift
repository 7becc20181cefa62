/// Turns TCP segments, in capture order, into each connection's two byte streams.
///
/// Flows are keyed by their two endpoints in canonical order; each direction has its own next expected
/// sequence number (32-bit serial arithmetic, so streams may wrap past 2^32). In-order data is reported at
/// once, without copying; segments ahead of a hole are buffered until it fills. Retransmitted bytes, exact or
/// overlapping, are trimmed: every stream byte is reported at most once. The first copy seen wins, except
/// that a segment arriving in order is delivered whole ahead of buffered copies of its later bytes, and a
/// buffered copy cut short by the snapshot length gives way to a whole one. Data on a RST is ignored.
///
/// A hole is given up on, and reported as a `gap` with its size and offset, when
/// - the receiver acknowledges bytes the capture never showed (the capture lost them; the peer will not
///   send them again),
/// - the direction's buffer would exceed `maxFlowBuffer` (or all flows' `maxTotalBuffer`),
/// - the flow closes (RST, idle, evicted, end of capture) with segments still buffered.
/// Bytes the snapshot length cut off are gaps too. Data resumes after each gap.
///
/// A SYN sets a direction's initial sequence number and marks its sender as the client. A flow whose
/// handshake was not captured starts at the first segment carrying data (or a FIN) and each direction at
/// its first such segment. FIN closes a direction once reached in order; both FINs, or a RST, close the
/// flow. Flows idle for `idleTimeout` seconds of capture time are closed, and when `maxFlows` are tracked
/// the least recently active one is evicted, so memory stays bounded whatever the capture length.
///
/// The reassembler does no I/O and keeps no clock of its own: time is the capture time passed in.
public struct TCPReassembler {
    public let configuration: TCPReassemblerConfiguration
    public private(set) var statistics = TCPReassemblyStatistics()
    private var table = TCPFlowTable()
    private var nextFlowID: UInt64 = 1
    /// The latest capture time seen (captures merged from several files may step back a little).
    private var clock = -Double.infinity
    /// Directions waiting for acknowledged bytes the capture has not shown (see
    /// `TCPStreamState.acknowledge`), in the order they started (so by `clock`): each is given up
    /// on a second of capture time later if its own packets have not settled it by then.
    private var waiting: [WaitingAcknowledgment] = []
    private var waitingStart = 0

    private struct WaitingAcknowledgment {
        let slot: Int
        let flow: TCPFlowID
        let direction: TCPDirection
        let time: Double
        let serial: UInt64
    }

    private var waitSerial: UInt64 = 0

    /// Connections that ended (FIN or RST) and whose flows were let go, idle for `idleTimeout`
    /// (shorter than `endedMemory`) or evicted: what each direction sent, so that a late copy (a
    /// FIN sent again from TIME_WAIT, a retransmission) still opens no flow of its own, as it
    /// opens none while the flow is kept, remembered at their last packet's time; at most `maxEnded`.
    private var ended = AgedMemory<TCPFlowKey, EndedConnection>()
    /// How long after its last packet an ended connection's late copies may come: TIME_WAIT,
    /// twice the maximum segment lifetime (RFC 9293 §3.4.2: 2 × 2 minutes; Linux waits 60 s).
    static let endedMemory = 240.0
    static let maxEnded = 65_536

    private struct EndedConnection {
        let initiator: TCPEndpoint
        let forward: TCPSentRange
        let backward: TCPSentRange
        let reset: Bool
    }

    /// Entries in the queue of waits (for tests: it stays bounded).
    var waitingQueueLength: Int { waiting.count - waitingStart }

    public init(configuration: TCPReassemblerConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Flows being tracked, including recently closed ones kept to absorb their last packets.
    public var trackedFlowCount: Int { table.count }

    /// The flows open now, in ID order.
    public var openFlows: [TCPFlowInfo] {
        table.slotsByID.compactMap { table[$0].finished ? nil : table[$0].info }
    }

    /// Takes one segment, whose payload is `packet.payloadRange` of `packetData` (the bytes given to
    /// `PacketDecoder.decode`).
    ///
    /// - Returns: the flow the segment belongs to, or nil if it belongs to none (a pure ACK of a connection
    ///   never seen, a segment of a closed flow). The sniffer uses it to save a connection's packets.
    @discardableResult
    public mutating func process(
        _ packet: DecodedPacket, packetData: UnsafeRawBufferPointer, time: Double, packetNumber: Int,
        emit: (TCPReassemblyEvent) -> Void
    ) -> TCPFlowID? {
        process(
            packet, payload: UnsafeRawBufferPointer(rebasing: packetData[packet.payloadRange]), time: time,
            packetNumber: packetNumber, emit: emit)
    }

    /// Takes one segment whose payload is `payload` (its captured part; `packet.uncapturedPayloadLength`
    /// more bytes follow on the wire).
    @discardableResult
    public mutating func process(
        _ packet: DecodedPacket, payload: [UInt8], time: Double, packetNumber: Int, emit: (TCPReassemblyEvent) -> Void
    ) -> TCPFlowID? {
        payload.withUnsafeBytes { process(packet, payload: $0, time: time, packetNumber: packetNumber, emit: emit) }
    }

    /// Takes one segment whose payload is `payload` (its captured part; `packet.uncapturedPayloadLength`
    /// more bytes follow on the wire).
    @discardableResult
    public mutating func process(
        _ packet: DecodedPacket, payload: UnsafeRawBufferPointer, time: Double, packetNumber: Int,
        emit: (TCPReassemblyEvent) -> Void
    ) -> TCPFlowID? {
        statistics.segments += 1
        clock = max(clock, time)
        let source = packet.sourceEndpoint
        let destination = packet.destinationEndpoint
        var slot = table.slot(between: source, destination)
        // A flow quiet for longer than the timeout is alive again with this packet: it must not be
        // the one the sweep forgets (its data would then be dropped as a connection picked up
        // mid-stream). (Removing other flows leaves this one's slot where it is.) A connection that
        // ended (FIN or RST) is not: its slot goes now, as the sweep would take it, and the packet
        // is another connection's on the same ports (revived, it swallowed that connection whole).
        if let s = slot, clock - table.slots[s].lastSeen > configuration.idleTimeout {
            if table.slots[s].finished {
                rememberEnded(s)
                table.remove(s)
                slot = nil
            } else {
                table.touch(s, time: clock)
            }
        }
        if oldestIsIdle(at: clock) || !ended.isEmpty {
            expireIdleFlows(now: clock, emit: emit)
        }
        if waitingStart < waiting.count { settleWaitingAcknowledgments(now: clock, emit: emit) }

        let flags = packet.flags
        // Most segments are the next bytes of an open connection, or an ACK: what the general path
        // below does with them, without its checks for the rest (`acceptInOrder`).
        if fastPath, let s = slot, flags.isDisjoint(with: Self.generalFlags), packet.uncapturedPayloadLength == 0,
           let done = table.acceptInOrder(
               s, from: source, sequence: packet.sequenceNumber, bytes: payload,
               acknowledgment: flags.contains(.ack) ? packet.acknowledgmentNumber : nil, time: time,
               packetNumber: packetNumber, configuration: configuration, statistics: &statistics, emit: emit)
        {
            if done.waits { fileWait(s, done.flow, done.direction.reversed) }
            return done.flow
        }
        // Data on a RST is a diagnostic for the peer, not stream data (RFC 9293 §3.10.7.4).
        let carriesData = !flags.contains(.rst)
        let length = carriesData ? payload.count + packet.uncapturedPayloadLength : 0
        let isSYN = flags.contains(.syn)
        let isBareSYN = isSYN && !flags.contains(.ack)

        if let existing = slot {
            if table.slots[existing].finished {
                // After the end, only a new connection on the same ports: its SYN, or (the SYN not
                // captured) data or a FIN outside what the ended connection sent that way. Copies of
                // what it sent and its last ACKs are passed over, and after a RST, data just past
                // what it sent (in flight when the RST came, or sent on by a stack that refused a
                // RST not exactly in sequence, RFC 5961). After a FIN nothing is in flight: a
                // connection reusing the ports at once starts just past the old one (Linux: its
                // next sequence number + 65,537), and is another connection.
                let fromInitiator = source == table.slots[existing].info.initiator
                let sent = fromInitiator ? table.slots[existing].forward.sent : table.slots[existing].backward.sent
                guard isBareSYN || Self.startsAnother(packet, length: length, after: sent, reset: table.slots[existing].reset) else {
                    statistics.ignoredSegments += 1
                    return nil
                }
                table.remove(existing)
                slot = nil
            } else if isBareSYN {
                let sameSYN = source == table.slots[existing].info.initiator && table.slots[existing].forward.synSeen
                    && table.slots[existing].forward.initialSequence == packet.sequenceNumber
                if !sameSYN {
                    close(existing, reason: .reused, time: time, emit: emit)
                    table.remove(existing)
                    slot = nil
                }
            }
        }
        if slot == nil {
            // Only segments that start something open a flow: a stray ACK or RST of an unknown connection
            // would otherwise create a flow with nothing in it.
            guard isSYN || length > 0 || flags.contains(.fin), !flags.contains(.rst) else {
                statistics.ignoredSegments += 1
                return nil
            }
            // A connection that ended and was let go: its late copies are passed over, as they are
            // while its flow is kept.
            let key = TCPFlowKey(source, destination)
            if let (end, lastSeen) = ended[key] {
                if clock - lastSeen <= Self.endedMemory && !isBareSYN
                    && !Self.startsAnother(packet, length: length, after: source == end.initiator ? end.forward : end.backward, reset: end.reset) {
                    statistics.ignoredSegments += 1
                    return nil
                }
                ended.forget(key)
            }
            slot = open(key: key, packet: packet, time: time, packetNumber: packetNumber, emit: emit)
        }
        guard let slot else { return nil }
        table.touch(slot, time: time)
        table[slot].lastPacket = time
        let info = table.slots[slot].info
        let direction: TCPDirection = source == info.initiator ? .initiatorToResponder : .responderToInitiator

        var dataSequence = packet.sequenceNumber
        if isSYN {
            dataSequence &+= 1
            if !table.isStarted(slot, direction) {
                table[slot][direction].startWithSYN(packet.sequenceNumber)
            } else if table.slots[slot][direction].initialSequence != packet.sequenceNumber || !table.slots[slot][direction].synSeen,
                      table.slots[slot][direction].isEmpty {
                // A SYN-ACK answering a SYN sent again, with a new initial sequence number, before
                // any data: the direction starts from it (a bare SYN that differs opened a new flow above).
                table[slot][direction] = TCPStreamState()
                table[slot][direction].startWithSYN(packet.sequenceNumber)
            }
        }
        if !table.isStarted(slot, direction), length > 0 || flags.contains(.fin) {
            table[slot][direction].startMidStream(dataSequence)
        }
        if table.isStarted(slot, direction), carriesData {
            table[slot][direction].accept(
                sequence: dataSequence, bytes: payload, missing: packet.uncapturedPayloadLength,
                fin: flags.contains(.fin), packetNumber: packetNumber,
                context: context(info.id, direction, time), statistics: &statistics, emit: emit)
        }
        // A packet after an acknowledgment of unseen bytes: did they come?
        for waiter in TCPDirection.allCases where table.waitsForAcknowledgedData(slot, waiter) {
            table[slot][waiter].settleAcknowledgment(
                timedOut: false, context: context(info.id, waiter, time), statistics: &statistics, emit: emit)
        }
        if flags.contains(.ack), !flags.contains(.rst),
           table[slot][direction.reversed].acknowledge(
               packet.acknowledgmentNumber, context: context(info.id, direction.reversed, time),
               statistics: &statistics, emit: emit)
        {
            fileWait(slot, info.id, direction.reversed)
        }
        if flags.contains(.rst), table.slots[slot][direction].acceptsReset(packet.sequenceNumber) {
            close(slot, reason: .rst, time: time, emit: emit)
            table[slot].finished = true
            table[slot].reset = true
        } else if flags.contains(.rst) {
            // Not this connection's (a late reply to an earlier attempt, or forged): it closes nothing.
            statistics.ignoredSegments += 1
        } else if table.slots[slot].forward.closed, table.slots[slot].backward.closed {
            close(slot, reason: .fin, time: time, emit: emit)
            table[slot].finished = true
        }
        return info.id
    }

    /// Segments with any of these take the general path.
    private static let generalFlags: TCPFlags = [.syn, .fin, .rst]

    /// Whether `process` takes its common case on its own (tests turn it off to compare the two).
    var fastPath = true

    /// After a RST ended a connection, data this far past what a direction sent is still its own
    /// (in flight, or sent on by a stack that refused the RST), not another connection's.
    static let inFlightWindow = 16 << 20

    /// Whether a packet on the ports of a connection that ended is another connection's (its SYN not
    /// captured): data or a FIN outside what the ended connection sent that way. Copies of what it
    /// sent and its last ACKs are not, nor, after a RST, data just past what it sent (in flight when
    /// the RST came, or sent on by a stack that refused a RST not exactly in sequence, RFC 5961).
    /// After a FIN nothing is in flight: a connection reusing the ports at once starts just past the
    /// old one (Linux: its next sequence number + 65,537), and is another connection.
    private static func startsAnother(_ packet: DecodedPacket, length: Int, after sent: TCPSentRange, reset: Bool) -> Bool {
        let flags = packet.flags
        let past = sequenceDistance(from: sent.nextSequence, to: packet.sequenceNumber)
        let afterReset = reset && past >= 0 && past < inFlightWindow
        return (length > 0 || flags.contains(.fin)) && !flags.contains(.rst) && sent.started
            && !sent.covers(packet.sequenceNumber) && !afterReset
    }

    /// A finished flow let go (idle, or evicted) is remembered as an ended connection, while its
    /// late copies may still come.
    private mutating func rememberEnded(_ slot: Int) {
        let flow = table.slots[slot]
        guard flow.finished, configuration.idleTimeout < Self.endedMemory else { return }
        ended.remember(EndedConnection(initiator: flow.info.initiator, forward: flow.forward.sent, backward: flow.backward.sent,
                                       reset: flow.reset),
                       for: flow.key, at: flow.lastSeen)
        while ended.count > Self.maxEnded, ended.forgetOldest() != nil {}
    }

    /// Ended connections remembered (for tests: bounded).
    var endedConnectionCount: Int { ended.count }

    /// Closes flows idle for `idleTimeout` at capture time `now`. `process` does this itself; call it
    /// during a quiet live capture (on a read timeout, with the wall-clock time) so idle flows still end.
    public mutating func expireIdleFlows(now: Double, emit: (TCPReassemblyEvent) -> Void) {
        while oldestIsIdle(at: now) {
            let slot = table.oldest
            if !table[slot].finished { close(slot, reason: .idle, time: now, emit: emit) }
            rememberEnded(slot)
            table.remove(slot)
        }
        if !ended.isEmpty { ended.forget(while: { now - $0 > Self.endedMemory }) }
    }

    /// Gives up, as gaps, acknowledged bytes still unseen a second of capture time after their
    /// acknowledgment (a flow gone quiet would otherwise hold what follows them until it closes).
    /// `process` does this itself; call it during a quiet live capture (on a read timeout, with the
    /// wall-clock time) so that a connection gone quiet still lets out what follows a loss.
    public mutating func settleWaitingAcknowledgments(now: Double, emit: (TCPReassemblyEvent) -> Void) {
        while waitingStart < waiting.count {
            let entry = waiting[waitingStart]
            let slot = entry.slot
            if isWaiting(entry) {
                guard now - entry.time > TCPStreamState.acknowledgmentWait else { break }
                table[slot][entry.direction].settleAcknowledgment(
                    timedOut: true, context: context(entry.flow, entry.direction, now), statistics: &statistics,
                    emit: emit)
            }
            waitingStart += 1
        }
        if waitingStart == waiting.count {
            waiting.removeAll(keepingCapacity: waiting.capacity <= 1024)
            waitingStart = 0
        } else if waitingStart > 1024, waitingStart * 2 > waiting.count {
            waiting.removeFirst(waitingStart)
            waitingStart = 0
        }
        // A capture whose clock stands still never times the front out: entries that no longer
        // wait (settled by their own packets) are dropped once they are most of the queue.
        if waiting.count - waitingStart > waitingCompactAt {
            waiting = waiting[waitingStart...].filter { isWaiting($0) }
            waitingStart = 0
            waitingCompactAt = max(4096, 2 * waiting.count)
        }
    }

    private var waitingCompactAt = 4096

    private func isWaiting(_ entry: WaitingAcknowledgment) -> Bool {
        entry.slot < table.slots.count && table.slots[entry.slot].info.id == entry.flow
            && table.waitsForAcknowledgedData(entry.slot, entry.direction)
            && table.slots[entry.slot][entry.direction].acknowledgmentSerial == entry.serial
    }

    /// Ends the capture: delivers everything still buffered (holes as gaps) and closes every open flow with
    /// `.endOfCapture`, in flow ID order. The reassembler is empty afterwards.
    public mutating func finish(time: Double, emit: (TCPReassemblyEvent) -> Void) {
        for slot in table.slotsByID {
            if !table[slot].finished { close(slot, reason: .endOfCapture, time: time, emit: emit) }
            table.remove(slot)
        }
    }

    // MARK: Internals

    private func context(_ flow: TCPFlowID, _ direction: TCPDirection, _ time: Double) -> TCPStreamContext {
        TCPStreamContext(flow: flow, direction: direction, time: time, configuration: configuration)
    }

    /// A direction of the flow in `slot` started waiting for acknowledged bytes (`acknowledge`
    /// said so): its wait is numbered and queued, to be given up on a second of capture time later.
    private mutating func fileWait(_ slot: Int, _ flow: TCPFlowID, _ direction: TCPDirection) {
        waitSerial += 1
        table[slot][direction].acknowledgmentSerial = waitSerial
        waiting.append(WaitingAcknowledgment(slot: slot, flow: flow, direction: direction, time: clock, serial: waitSerial))
    }

    /// Whether the least recently active flow has been idle longer than the timeout at `now`.
    private func oldestIsIdle(at now: Double) -> Bool {
        table.oldest >= 0 && now - table.slots[table.oldest].lastSeen > configuration.idleTimeout
    }

    private mutating func open(
        key: TCPFlowKey, packet: DecodedPacket, time: Double, packetNumber: Int, emit: (TCPReassemblyEvent) -> Void
    ) -> Int {
        while table.count >= max(configuration.maxFlows, 1), table.oldest >= 0 {
            let oldest = table.oldest
            if !table[oldest].finished { close(oldest, reason: .evicted, time: time, emit: emit) }
            rememberEnded(oldest)
            table.remove(oldest)
        }
        let syn = packet.flags.contains(.syn)
        // A SYN-ACK seen without its SYN still tells which side is the client: the one it is sent to.
        let synAck = syn && packet.flags.contains(.ack)
        let info = TCPFlowInfo(
            id: TCPFlowID(rawValue: nextFlowID),
            initiator: synAck ? packet.destinationEndpoint : packet.sourceEndpoint,
            responder: synAck ? packet.sourceEndpoint : packet.destinationEndpoint,
            handshakeSeen: syn, time: time, packetNumber: packetNumber)
        nextFlowID += 1
        statistics.flowsOpened += 1
        emit(.flowOpened(info))
        // Seen at the reassembler's clock, not at the packet's time: after the capture's clock
        // stepped back, a new flow stamped with its packet's time looked idle for as long as the
        // step to the next sweep, which closed it before its second packet (its SYN lost).
        var flow = TCPFlow(key: key, info: info, lastSeen: clock)
        flow.lastPacket = time
        return table.insert(flow)
    }

    /// Delivers what the flow still buffers and reports it closed: at `time` for FIN and RST (the
    /// packet that closed it), at the flow's own last packet otherwise (found idle, evicted, or at the
    /// end of the capture, it ended when it was last heard from, not when that was noticed).
    private mutating func close(_ slot: Int, reason: TCPFlowCloseReason, time: Double, emit: (TCPReassemblyEvent) -> Void) {
        let id = table[slot].info.id
        let time = reason == .fin || reason == .rst ? time : table.slots[slot].lastPacket
        for direction in TCPDirection.allCases {
            table[slot][direction].flushAll(context: context(id, direction, time), statistics: &statistics, emit: emit)
        }
        statistics.flowsClosed[reason, default: 0] += 1
        emit(.flowClosed(id, reason: reason, time: time))
    }
}
