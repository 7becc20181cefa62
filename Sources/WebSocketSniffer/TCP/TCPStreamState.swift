/// Where a direction's events go, and the limits and counters it shares with the other flows.
struct TCPStreamContext {
    let flow: TCPFlowID
    let direction: TCPDirection
    let time: Double
    let maxFlowBuffer: Int
    let maxTotalBuffer: Int

    init(flow: TCPFlowID, direction: TCPDirection, time: Double, configuration: TCPReassemblerConfiguration) {
        self.flow = flow
        self.direction = direction
        self.time = time
        maxFlowBuffer = configuration.maxFlowBuffer
        maxTotalBuffer = configuration.maxTotalBuffer
    }
}

/// A segment held until the hole in front of it fills.
struct TCPPendingSegment {
    var sequence: UInt32
    var bytes: [UInt8]
    /// Uncaptured bytes after `bytes` (snapshot length).
    var missing: Int
    var time: Double
    var packetNumber: Int

    var length: Int { bytes.count + missing }
    /// What the segment counts against the buffer limits.
    var cost: Int { bytes.count + TCPStreamState.segmentOverhead }
}

/// One direction of a flow: the next sequence number expected and the segments that arrived ahead of it.
struct TCPStreamState {
    /// Bookkeeping charged per buffered segment, so many tiny segments cannot exceed the limits' intent.
    static let segmentOverhead = 64
    /// Segments buffered per direction at most, for a buffer of `maxFlowBuffer` bytes: one per KiB
    /// of it, and at least 4,096 (a new segment is kept in order by moving those after it, so a
    /// flood of tiny segments in falling order costs time in the square of their number: the limit
    /// holds that to a few milliseconds a segment at the largest buffers). 4,096 full-size segments
    /// are more than the 4 MiB default buffer holds anyway; `--max-flow-buffer` raises both.
    static func maxPendingSegments(_ maxFlowBuffer: Int) -> Int { max(4_096, maxFlowBuffer >> 10) }
    /// An acknowledgment further than this ahead of what was seen is not trusted to mean lost data.
    static let maxAcknowledgedJump = 1 << 30
    /// Packets of the flow that fill nothing, after an acknowledgment of unseen bytes, before the
    /// bytes are taken as lost.
    static let acknowledgmentPatience: UInt8 = 3
    /// Capture time after an acknowledgment of unseen bytes past which they are taken as lost.
    static let acknowledgmentWait = 1.0

    /// True once the starting sequence number is known (SYN, or first segment seen).
    var started = false
    var synSeen = false
    var initialSequence: UInt32 = 0
    /// The next byte expected in stream order.
    var nextSequence: UInt32 = 0
    /// Stream offset of `nextSequence`.
    var offset: UInt64 = 0
    /// Sequence number of the FIN, once seen (possibly out of order).
    var finSequence: UInt32?
    /// The FIN was reached in order.
    var closed = false
    /// Out-of-order segments from `pendingStart` on, sorted by sequence number, all after `nextSequence`.
    var pending: [TCPPendingSegment] = []
    var pendingStart = 0
    var pendingCost = 0
    /// An acknowledgment of bytes beyond those seen, not acted on yet (`waitsForAcknowledgedData`):
    /// a capture can show an ACK before the data it acknowledges (merged from two vantage points,
    /// taken on a switch's mirror port, or on several CPUs), so the data gets a few more packets to
    /// arrive before the hole is given up as lost (`settleAcknowledgment`).
    var acknowledgedAhead: UInt32 = 0
    var waitsForAcknowledgedData = false
    /// Packets of the flow still to wait for the acknowledged data; reset whenever the hole shrinks.
    var acknowledgmentPatience: UInt8 = 0
    /// `nextSequence` when the wait started or last moved: progress is a change of it.
    var acknowledgmentMark: UInt32 = 0
    /// Which wait this is (the reassembler numbers them): its queue entry is this wait's only if
    /// they agree. (Times cannot tell two waits apart in a capture whose clock stands still.)
    var acknowledgmentSerial: UInt64 = 0

    var hasPending: Bool { pendingStart < pending.count }

    /// Starts the direction at a SYN.
    mutating func startWithSYN(_ sequence: UInt32) {
        started = true
        synSeen = true
        initialSequence = sequence
        nextSequence = sequence &+ 1
    }

    /// Whether a segment starting at `sequence` lies in what this direction sent, from its SYN (or
    /// first byte seen) to its FIN: a copy of something it sent, or a keep-alive. A
    /// direction that never started covers nothing; one that sent 4 GiB or more covers everything.
    func covers(_ sequence: UInt32) -> Bool { sent.covers(sequence) }

    /// What this direction sent, as `covers` needs it (kept after the flow is let go, see
    /// `TCPReassembler`'s ended connections).
    var sent: TCPSentRange {
        let finConsumed = finSequence.map { nextSequence == $0 &+ 1 } ?? false
        return TCPSentRange(started: started, nextSequence: nextSequence,
                            consumed: offset + (synSeen ? 1 : 0) + (finConsumed ? 1 : 0))
    }

    /// True until the direction has delivered or buffered anything (a SYN may still start it again).
    var isEmpty: Bool { offset == 0 && !hasPending && finSequence == nil }

    /// Whether a RST with sequence number `sequence` sent in this direction belongs to the
    /// connection: anything before the direction started (a refused SYN); exactly the next byte
    /// expected while nothing has been sent yet (a RST from an earlier attempt at the same ports
    /// carries that attempt's numbers); after that, within `maxResetDistance` of it (RFC 5961 §3.2
    /// asks for the receive window, which a capture does not always show).
    func acceptsReset(_ sequence: UInt32) -> Bool {
        guard started else { return true }
        // Bytes the receiver acknowledged but the capture has not shown yet were sent: the RST
        // may come after them.
        if waitsForAcknowledgedData, abs(sequenceDistance(from: acknowledgedAhead, to: sequence)) <= Self.maxResetDistance {
            return true
        }
        let distance = sequenceDistance(from: nextSequence, to: sequence)
        if isEmpty { return distance == 0 }
        // Behind what this direction sent (delivered, or buffered past a hole) it cannot be the
        // sender's: its next sequence number is already past that. (Such a RST closed the
        // connection, and everything after it was lost without a word.)
        if distance < 0 { return false }
        if hasPending, let last = pending.last,
           sequenceDistance(from: sequence, to: last.sequence &+ UInt32(truncatingIfNeeded: last.length)) > 0 {
            return false
        }
        return distance <= Self.maxResetDistance
    }

    /// How far from the next byte expected a RST's sequence number may be.
    static let maxResetDistance = 1 << 24

    /// Starts the direction mid-stream at the first segment seen.
    mutating func startMidStream(_ sequence: UInt32) {
        started = true
        nextSequence = sequence
    }

    /// Takes a segment whose data starts at `sequence`: `bytes` captured and `missing` uncaptured after
    /// them, and a FIN after both if `fin`.
    mutating func accept(
        sequence: UInt32, bytes: UnsafeRawBufferPointer, missing: Int, fin: Bool, packetNumber: Int,
        context: TCPStreamContext, statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void
    ) {
        let length = bytes.count + missing
        if closed {
            statistics.retransmittedBytes += length
            return
        }
        if fin, finSequence == nil {
            finSequence = sequence &+ UInt32(truncatingIfNeeded: length)
        }
        guard length > 0 else { return reachFIN(context: context, statistics: &statistics, emit: emit) }
        if sequenceDistance(from: nextSequence, to: sequence) <= 0 {
            deliver(
                sequence: sequence, bytes: bytes, missing: missing, time: context.time, packetNumber: packetNumber,
                context: context, statistics: &statistics, emit: emit)
            drain(context: context, statistics: &statistics, emit: emit)
        } else {
            statistics.outOfOrderSegments += 1
            hold(
                sequence: sequence, bytes: bytes, missing: missing, packetNumber: packetNumber, context: context,
                statistics: &statistics, emit: emit)
        }
        reachFIN(context: context, statistics: &statistics, emit: emit)
    }

    /// `accept` for the common case, taken on its own (see `TCPReassembler.process`): a segment
    /// without SYN, FIN or RST, captured whole, that starts at the next byte expected (or carries
    /// no bytes), on a direction that started, has seen no FIN (so is not closed), holds nothing
    /// ahead of a hole and awaits no acknowledged bytes. It does what `accept` does with such a
    /// segment; false, with nothing changed, for any other.
    @inline(__always)
    mutating func acceptInOrder(
        sequence: UInt32, bytes: UnsafeRawBufferPointer, flow: TCPFlowID, direction: TCPDirection, time: Double,
        packetNumber: Int, emit: (TCPReassemblyEvent) -> Void
    ) -> Bool {
        guard started, finSequence == nil, pending.isEmpty, !waitsForAcknowledgedData else { return false }
        if bytes.isEmpty { return true }
        guard sequence == nextSequence else { return false }
        emit(.data(flow, direction, bytes: bytes, offset: offset, time: time, packetNumber: packetNumber))
        advance(by: bytes.count)
        return true
    }

    /// The receiver acknowledged `acknowledgment`. Bytes before it that the capture has not shown were
    /// received by the peer, so they will not be retransmitted: they are either still to come in the
    /// capture (which put the ACK first) or lost by it. The direction waits a few packets for them
    /// (`settleAcknowledgment`), then reports them as a gap rather than wait for the buffer limit or the
    /// end of the capture. An acknowledged FIN ends the wait at once: everything before it was sent.
    ///
    /// - Returns: true if the direction started waiting (the reassembler then watches its time).
    @discardableResult
    mutating func acknowledge(
        _ acknowledgment: UInt32, context: TCPStreamContext, statistics: inout TCPReassemblyStatistics,
        emit: (TCPReassemblyEvent) -> Void
    ) -> Bool {
        guard started, !closed else { return false }
        var target = acknowledgment
        var finAcknowledged = false
        // The FIN takes one sequence number; the bytes stop before it.
        if let finSequence, sequenceDistance(from: finSequence, to: target) > 0 {
            target = finSequence
            finAcknowledged = true
        }
        let distance = sequenceDistance(from: nextSequence, to: target)
        guard distance > 0, distance <= Self.maxAcknowledgedJump else { return false }
        if finAcknowledged {
            waitsForAcknowledgedData = false
            flush(upTo: target, context: context, statistics: &statistics, emit: emit)
            reachFIN(context: context, statistics: &statistics, emit: emit)
            return false
        }
        if waitsForAcknowledgedData {
            if sequenceDistance(from: acknowledgedAhead, to: target) > 0 { acknowledgedAhead = target }
            return false
        }
        waitsForAcknowledgedData = true
        acknowledgedAhead = target
        acknowledgmentMark = nextSequence
        acknowledgmentPatience = Self.acknowledgmentPatience
        return true
    }

    /// After a later packet of the flow (`timedOut` false) or at a capture time a second past the
    /// acknowledgment (`timedOut` true): ends the wait for acknowledged bytes if they came, or gives
    /// them up as a gap once the patience is spent.
    mutating func settleAcknowledgment(
        timedOut: Bool, context: TCPStreamContext, statistics: inout TCPReassemblyStatistics,
        emit: (TCPReassemblyEvent) -> Void
    ) {
        guard waitsForAcknowledgedData else { return }
        if closed || sequenceDistance(from: nextSequence, to: acknowledgedAhead) <= 0 {
            waitsForAcknowledgedData = false
            return
        }
        if !timedOut {
            if nextSequence != acknowledgmentMark {
                acknowledgmentMark = nextSequence
                acknowledgmentPatience = Self.acknowledgmentPatience
                return
            }
            acknowledgmentPatience -= 1
            if acknowledgmentPatience > 0 { return }
        }
        waitsForAcknowledgedData = false
        flush(upTo: acknowledgedAhead, context: context, statistics: &statistics, emit: emit)
        reachFIN(context: context, statistics: &statistics, emit: emit)
    }

    /// Delivers everything buffered, reporting the holes between as gaps (the flow is closing).
    mutating func flushAll(context: TCPStreamContext, statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void) {
        guard started else { return }
        if waitsForAcknowledgedData, !closed {
            // Acknowledged bytes that never came are a gap, even past everything buffered.
            waitsForAcknowledgedData = false
            flush(upTo: acknowledgedAhead, context: context, statistics: &statistics, emit: emit)
        }
        flush(upTo: nil, context: context, statistics: &statistics, emit: emit)
        release(statistics: &statistics)
    }

    /// Drops buffered segments without delivering them, returning their cost to the totals.
    mutating func release(statistics: inout TCPReassemblyStatistics) {
        statistics.bufferedBytes -= pendingCost
        pendingCost = 0
        pending = []
        pendingStart = 0
    }

    // MARK: Internals

    private mutating func reachFIN(
        context: TCPStreamContext, statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void
    ) {
        guard !closed, let finSequence, sequenceDistance(from: nextSequence, to: finSequence) <= 0 else { return }
        closed = true
        nextSequence = finSequence &+ 1
        // Nothing travels after the FIN: segments held beyond it are dropped, not shown as a gap.
        for segment in pending[pendingStart...] { statistics.retransmittedBytes += segment.length }
        release(statistics: &statistics)
        emit(.directionClosed(context.flow, context.direction, time: context.time))
    }

    /// True once the FIN's place is known and reached (or passed).
    private var atFIN: Bool {
        guard let finSequence else { return false }
        return sequenceDistance(from: nextSequence, to: finSequence) <= 0
    }

    /// Emits the part of a segment at or before `nextSequence` that is new, and advances.
    private mutating func deliver(
        sequence: UInt32, bytes: UnsafeRawBufferPointer, missing: Int, time: Double, packetNumber: Int,
        context: TCPStreamContext, statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void
    ) {
        var total = bytes.count + missing
        // Nothing travels after the FIN.
        if let finSequence { total = min(total, max(0, sequenceDistance(from: sequence, to: finSequence))) }
        let skip = -sequenceDistance(from: nextSequence, to: sequence)
        guard skip < total else {
            statistics.retransmittedBytes += total
            return
        }
        statistics.retransmittedBytes += skip
        let capturedEnd = min(bytes.count, total)
        if skip < capturedEnd {
            emit(
                .data(
                    context.flow, context.direction, bytes: UnsafeRawBufferPointer(rebasing: bytes[skip..<capturedEnd]),
                    offset: offset, time: time, packetNumber: packetNumber))
            advance(by: capturedEnd - skip)
        }
        let uncapturedStart = max(skip, capturedEnd)
        if total > uncapturedStart {
            gap(total - uncapturedStart, context: context, statistics: &statistics, emit: emit)
        }
    }

    private mutating func advance(by count: Int) {
        nextSequence &+= UInt32(truncatingIfNeeded: count)
        offset += UInt64(count)
    }

    private mutating func gap(
        _ count: Int, bufferFull: Bool = false, context: TCPStreamContext, statistics: inout TCPReassemblyStatistics,
        emit: (TCPReassemblyEvent) -> Void
    ) {
        statistics.gaps += 1
        statistics.gapBytes += count
        if bufferFull {
            statistics.bufferFullGaps += 1
            statistics.bufferFullGapBytes += count
        }
        emit(.gap(context.flow, context.direction, missing: count, offset: offset, time: context.time, bufferFull: bufferFull))
        advance(by: count)
    }

    /// Delivers buffered segments that are now in order.
    private mutating func drain(context: TCPStreamContext, statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void) {
        while pendingStart < pending.count, sequenceDistance(from: nextSequence, to: pending[pendingStart].sequence) <= 0 {
            let segment = pending[pendingStart]
            pending[pendingStart].bytes = []
            pendingStart += 1
            pendingCost -= segment.cost
            statistics.bufferedBytes -= segment.cost
            segment.bytes.withUnsafeBytes { bytes in
                deliver(
                    sequence: segment.sequence, bytes: bytes, missing: segment.missing, time: segment.time,
                    packetNumber: segment.packetNumber, context: context, statistics: &statistics, emit: emit)
            }
        }
        if pendingStart == pending.count {
            if pending.capacity > 64 { pending = [] } else { pending.removeAll(keepingCapacity: true) }
            pendingStart = 0
        } else if pendingStart > 32, pendingStart * 2 > pending.count {
            pending.removeFirst(pendingStart)
            pendingStart = 0
        }
    }

    /// Reports the hole before the first buffered segment as a gap and delivers what follows it in order.
    private mutating func skipFirstHole(
        upTo target: UInt32?, bufferFull: Bool = false, context: TCPStreamContext, statistics: inout TCPReassemblyStatistics,
        emit: (TCPReassemblyEvent) -> Void
    ) {
        var hole = hasPending ? sequenceDistance(from: nextSequence, to: pending[pendingStart].sequence) : Int.max
        if let target { hole = min(hole, sequenceDistance(from: nextSequence, to: target)) }
        if hole > 0, hole != Int.max { gap(hole, bufferFull: bufferFull, context: context, statistics: &statistics, emit: emit) }
        drain(context: context, statistics: &statistics, emit: emit)
    }

    /// Advances to `target` (or past everything buffered, if nil), delivering buffered data and reporting
    /// holes as gaps.
    private mutating func flush(
        upTo target: UInt32?, context: TCPStreamContext, statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void
    ) {
        drain(context: context, statistics: &statistics, emit: emit)
        while true {
            if let target, sequenceDistance(from: nextSequence, to: target) <= 0 { return }
            if target == nil, !hasPending { return }
            // The bytes end at the FIN: a hole past it is no gap.
            if atFIN { return reachFIN(context: context, statistics: &statistics, emit: emit) }
            skipFirstHole(upTo: target, context: context, statistics: &statistics, emit: emit)
        }
    }

    /// Buffers an out-of-order segment, making room first by skipping holes if a limit would be exceeded.
    private mutating func hold(
        sequence: UInt32, bytes: UnsafeRawBufferPointer, missing: Int, packetNumber: Int, context: TCPStreamContext,
        statistics: inout TCPReassemblyStatistics, emit: (TCPReassemblyEvent) -> Void
    ) {
        let cost = bytes.count + Self.segmentOverhead
        let length = bytes.count + missing
        var fits: Bool {
            pendingCost + cost <= context.maxFlowBuffer && statistics.bufferedBytes + cost <= context.maxTotalBuffer
                && pending.count - pendingStart < Self.maxPendingSegments(context.maxFlowBuffer)
        }
        // An exact copy of a buffered segment (a retransmission of data still ahead of a hole).
        let index = insertionIndex(for: sequence)
        if index < pending.count, pending[index].sequence == sequence, pending[index].length >= length {
            // Unless the snapshot length cut the buffered copy and this one brings more of it: the
            // copy cut short gives way (its uncaptured part would be a gap).
            guard pending[index].missing > 0, bytes.count > pending[index].bytes.count else {
                statistics.retransmittedBytes += length
                return
            }
            let replaced = pending.remove(at: index)
            pendingCost -= replaced.cost
            statistics.bufferedBytes -= replaced.cost
            statistics.retransmittedBytes += replaced.bytes.count
        }
        // Skip the holes in front, as long as they come before this segment.
        while !fits, hasPending,
            sequenceDistance(from: nextSequence, to: pending[pendingStart].sequence)
                <= sequenceDistance(from: nextSequence, to: sequence)
        {
            skipFirstHole(upTo: nil, bufferFull: true, context: context, statistics: &statistics, emit: emit)
        }
        let distance = sequenceDistance(from: nextSequence, to: sequence)
        if distance > 0, !fits {
            // Even an empty buffer cannot take it: skip straight to it.
            gap(distance, bufferFull: true, context: context, statistics: &statistics, emit: emit)
        }
        if sequenceDistance(from: nextSequence, to: sequence) <= 0 {
            deliver(
                sequence: sequence, bytes: bytes, missing: missing, time: context.time, packetNumber: packetNumber,
                context: context, statistics: &statistics, emit: emit)
            drain(context: context, statistics: &statistics, emit: emit)
            return
        }
        // Beyond a FIN already seen nothing travels.
        if let finSequence, sequenceDistance(from: finSequence, to: sequence) >= 0 {
            statistics.retransmittedBytes += length
            return
        }
        // The first copy seen wins: only the parts no buffered segment covers are kept.
        var start = 0  // in the segment
        let first = sequenceDistance(from: nextSequence, to: sequence)
        var at = insertionIndex(for: sequence)
        if at > pendingStart {
            let before = pending[at - 1]
            let end = sequenceDistance(from: nextSequence, to: before.sequence) + before.length
            start = max(0, end - first)
            statistics.retransmittedBytes += min(start, length)
        }
        while start < length {
            let next = at < pending.count ? sequenceDistance(from: nextSequence, to: pending[at].sequence) - first : length
            let end = min(length, next)
            if end > start {
                let capturedEnd = min(bytes.count, end)
                let piece = start < capturedEnd ? Array(bytes[start..<capturedEnd]) : []
                let segment = TCPPendingSegment(
                    sequence: sequence &+ UInt32(truncatingIfNeeded: start), bytes: piece, missing: end - max(start, capturedEnd),
                    time: context.time, packetNumber: packetNumber)
                pending.insert(segment, at: at)
                at += 1
                pendingCost += segment.cost
                statistics.bufferedBytes += segment.cost
            }
            guard at < pending.count else { break }
            let covered = sequenceDistance(from: nextSequence, to: pending[at].sequence) + pending[at].length - first
            statistics.retransmittedBytes += max(0, min(covered, length) - max(start, end))
            start = max(start, covered)
            at += 1
        }
        statistics.peakBufferedBytes = max(statistics.peakBufferedBytes, statistics.bufferedBytes)
    }

    /// The index of the first buffered segment not before `sequence`.
    private func insertionIndex(for sequence: UInt32) -> Int {
        let key = sequenceDistance(from: nextSequence, to: sequence)
        var low = pendingStart
        var high = pending.count
        while low < high {
            let mid = (low + high) / 2
            if sequenceDistance(from: nextSequence, to: pending[mid].sequence) < key { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// The sequence numbers one direction of a connection consumed: from its SYN (or first byte
/// seen) to its FIN.
struct TCPSentRange {
    var started: Bool
    /// The sequence number after everything sent.
    var nextSequence: UInt32
    /// Sequence numbers consumed: bytes, and the SYN and the FIN.
    var consumed: UInt64

    /// See `TCPStreamState.covers`.
    func covers(_ sequence: UInt32) -> Bool {
        guard started else { return false }
        guard consumed < UInt64(UInt32.max) else { return true }
        // How far before what comes next: from 1 (the last byte, or the FIN) to all it consumed.
        // (Not signed distances: past 2 GiB sent, the first byte's would wrap negative.)
        let back = nextSequence &- sequence
        return back >= 1 && UInt64(back) <= consumed
    }
}
