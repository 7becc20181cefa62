import WebSocketCodec
import WebSocketInspect

/// Limits and choices for a sniffing session.
public struct SniffConfiguration: Sendable {
    public var dissector: WebSocketDissectorConfiguration
    public var reassembly: TCPReassemblerConfiguration
    /// Ports that speak WebSocket even when no handshake was seen (connections already open when
    /// the capture began).
    public var webSocketPorts: Set<Int>
    /// Closed-connection summaries kept for --stats (the oldest are dropped past this; 0 keeps
    /// none, when no stats will be printed).
    public var maxSummaries: Int
    /// For -w, which saves every packet of a connection it keeps, in capture order: say which IP
    /// datagram each fragment's packet belongs to and what became of it (`takeFragment`,
    /// `takeDroppedDatagrams`), and which flows each packet closed (`takeClosedFlows`); -w takes them
    /// all at once (`takeSavingNews`).
    public var reportsForSaving: Bool

    public init(dissector: WebSocketDissectorConfiguration = .init(), reassembly: TCPReassemblerConfiguration = .init(),
                webSocketPorts: Set<Int> = [], maxSummaries: Int = 10_000, reportsForSaving: Bool = false) {
        self.dissector = dissector
        self.reassembly = reassembly
        self.webSocketPorts = webSocketPorts
        self.maxSummaries = maxSummaries
        self.reportsForSaving = reportsForSaving
    }
}

/// Counts over a session's closed connections (every one, not only those whose summaries are kept).
public struct SniffTotals: Sendable {
    public var connections = 0
    public var messages = 0
    public var bytes = 0
    /// Protocol violations flagged in frames and messages (the rules in the README's table), and
    /// the connections they were flagged in.
    public var violations = 0
    public var connectionsWithViolations = 0
    /// Stream gaps (bytes the capture lost), the bytes they lost, and the connections they were in.
    public var gaps = 0
    public var gapBytes = 0
    public var bufferFullGapBytes = 0
    public var connectionsWithGaps = 0
}

/// Packets in, WebSocket events out: link/IP/TCP decoding, per-flow reassembly, upgrade detection
/// and dissection, with connections numbered in the order they appear.
public final class SniffSession {
    public let configuration: SniffConfiguration
    /// The first half's state, in an object of its own (see "In two halves").
    private let capture: PacketReassembly
    private var connections: [TCPFlowID: Connection] = [:]
    /// Connections by the low bits of their flow ID, checked before the dictionary: packets come from
    /// a few busy connections at a time, and hashing costs more than the rest of the lookup. The
    /// entries are plain values with the dissector unretained: `connections` holds it, and an entry
    /// goes when its flow leaves `connections` (copying an entry that retained it cost a retain and a
    /// release for every segment).
    private var recent = [RecentConnection?](repeating: nil, count: 64)

    private struct RecentConnection {
        let dissector: Unmanaged<WebSocketConnectionDissector>
        let info: TCPFlowInfo
    }
    private var nextConnection = 0
    /// Packets given to `process` or `reassemble`.
    public var packets: Int { capture.packets }
    /// Packets that carried no TCP segment, by reason.
    public var skipped: [PacketSkipReason: Int] { capture.skipped }
    /// Packets of IP traffic the snapshot length cut (fewer bytes captured than were on the
    /// wire): TCP segments, fragments, and packets cut inside their IP or TCP headers; not the
    /// other protocols' packets, which are skipped whole anyway (nor a damaged file's garbage
    /// records, which mostly decode as no IP at all).
    public var packetsCut: Int { capture.packetsCut }
    /// The most bytes kept of a packet counted in `packetsCut`: the snapshot length they were
    /// taken with (a file's header may give a larger one than was used).
    public var longestCutPacket: Int { capture.longestCutPacket }
    /// The last `maxSummaries` closed connections' summaries, oldest first.
    public var summaries: [ConnectionSummary] { Array(keptSummaries.suffix(configuration.maxSummaries)) }
    private var keptSummaries: [ConnectionSummary] = []
    /// Counts over every closed connection shown, including those whose summaries were let go.
    public private(set) var totals = SniffTotals()
    /// The capture time of the last packet.
    public var lastTime: Double { capture.lastTime }

    private struct Connection {
        let dissector: WebSocketConnectionDissector
        let info: TCPFlowInfo
    }

    /// A connection's dissector, unretained, and its flow. `connections` holds the dissector, and
    /// lets it go only on a `flowClosed` event, never handled during another event: call its
    /// methods inside `dissector._withUnsafeGuaranteedRef`.
    private func connection(_ id: TCPFlowID) -> RecentConnection? {
        let hint = Int(truncatingIfNeeded: id.rawValue) & (recent.count - 1)
        if let c = recent[hint], c.info.id == id { return c }
        guard let c = connections[id] else { return nil }
        let entry = RecentConnection(dissector: Unmanaged.passUnretained(c.dissector), info: c.info)
        recent[hint] = entry
        return entry
    }

    private func forgetRecent(_ id: TCPFlowID) {
        let hint = Int(truncatingIfNeeded: id.rawValue) & (recent.count - 1)
        if recent[hint]?.info.id == id { recent[hint] = nil }
    }

    public init(configuration: SniffConfiguration) {
        self.configuration = configuration
        capture = PacketReassembly(configuration: configuration)
    }

    /// The two endpoints of a TCP connection in a fixed order: what identifies its packets for -w,
    /// even after the reassembler has closed the flow (the last ACKs of a FIN).
    public struct ConnectionKey: Hashable, Sendable {
        public let low: TCPEndpoint
        public let high: TCPEndpoint
        init(_ a: TCPEndpoint, _ b: TCPEndpoint) { (low, high) = a < b ? (a, b) : (b, a) }
    }

    /// What -w does with a connection's packets: keep them (a WebSocket connection, or one that
    /// asked for an upgrade, granted or not), drop them (known not to be one), or hold them until
    /// that is known.
    public enum SaveVerdict: Sendable, Equatable { case keep, drop, undecided }

    /// A TCP packet's connection, for -w: its endpoints, its flow (nil when the reassembler took
    /// the packet for no flow: an ACK after the connection closed, or a stray segment), and what
    /// becomes of the flow's packets as far as is known after this one.
    public struct PacketFlow: Sendable {
        public let key: ConnectionKey
        public let flow: TCPFlowID?
        public let verdict: SaveVerdict
    }

    /// Flows closed while the last packet was processed (by it, by the idle sweep, or to make
    /// room), with whether -w keeps their packets; collected with `reportsForSaving` only.
    private var closedFlows: [(flow: TCPFlowID, keep: Bool)] = []

    /// The flows the last `process` call closed, with whether -w keeps their packets.
    public func takeClosedFlows() -> [(flow: TCPFlowID, keep: Bool)] {
        defer { closedFlows = [] }
        return closedFlows
    }

    /// Dissects one captured packet. Returns its connection and what -w does with its packets;
    /// nil for packets that are not TCP.
    @discardableResult
    public func process(_ packet: PcapPacket, linkType: Int32, emit: (SniffEvent) -> Void) -> PacketFlow? {
        // Fragments of a datagram the last packet completed that was not TCP, if not taken.
        capture.fragmentRole = nil
        capture.count(packet)
        var result: PacketFlow? = nil
        capture.segments(of: packet, linkType: linkType) { decoded, bytes in
            let flow = capture.reassembler.process(decoded, packetData: bytes, time: packet.time, packetNumber: packet.number) { event in
                handle(event, emit: emit)
            }
            var verdict = SaveVerdict.undecided
            if let flow {
                if let d = connection(flow)?.dissector.takeUnretainedValue() {
                    verdict = d.isWebSocket || d.sawUpgradeRequest ? .keep : (d.isIgnored ? .drop : .undecided)
                } else if let closed = closedFlows.last(where: { $0.flow == flow }) {
                    verdict = closed.keep ? .keep : .drop
                }
            }
            result = PacketFlow(key: ConnectionKey(decoded.sourceEndpoint, decoded.destinationEndpoint), flow: flow, verdict: verdict)
        }
        return result
    }

    /// What the packet just processed was as an IP fragment, if it was one whose datagram is
    /// still in progress, that it completed, or that it repeats (nil for one given up with its
    /// datagram at once).
    public enum FragmentRole: Sendable, Equatable {
        /// Its datagram is still missing pieces: the packet belongs to whatever connection the
        /// datagram turns out to be part of, once it is whole.
        case pending(IPFragment.Datagram)
        /// It completed its datagram: the datagram's earlier fragments belong to the packet's
        /// connection (`process`'s result; none when the datagram was not TCP).
        case completed(IPFragment.Datagram)
        /// It repeats part of a datagram completed lately: it belongs where that datagram did.
        case duplicate(IPFragment.Datagram)
    }

    /// What -w learns from the packets processed since the last call (with `reportsForSaving`).
    public struct SavingNews {
        /// The last packet's role as an IP fragment.
        public let fragment: FragmentRole?
        /// Datagrams given up: their fragments belong to no connection.
        public let droppedDatagrams: [IPFragment.Datagram]
        /// Completed datagrams let go: fragments repeating them are no longer duplicates.
        public let forgottenDatagrams: [IPFragment.Datagram]
        /// Flows closed, with whether -w keeps their packets.
        public let closedFlows: [(flow: TCPFlowID, keep: Bool)]
    }

    /// Everything -w takes after a packet (or at the end), in one call.
    public func takeSavingNews() -> SavingNews {
        SavingNews(fragment: takeFragment(), droppedDatagrams: takeDroppedDatagrams(),
                   forgottenDatagrams: takeForgottenDatagrams(), closedFlows: takeClosedFlows())
    }

    /// The last packet's `FragmentRole` (with `reportsForSaving`).
    public func takeFragment() -> FragmentRole? {
        defer { capture.fragmentRole = nil }
        return capture.fragmentRole
    }

    /// The datagrams given up since the last call (with `reportsForSaving`): their fragments
    /// belong to no connection.
    public func takeDroppedDatagrams() -> [IPFragment.Datagram] { capture.fragments.takeDroppedDatagrams() }

    /// The completed datagrams let go since the last call (with `reportsForSaving`): fragments
    /// repeating them are no longer `FragmentRole.duplicate`.
    public func takeForgottenDatagrams() -> [IPFragment.Datagram] { capture.fragments.takeForgottenDatagrams() }

    /// A read error after which the source reads again records it had returned out of step
    /// (`PcapError.outOfStepPackets`): `process` counted them, and they are no packets of the
    /// capture. On the thread that runs `process`.
    public func uncountPacketsReadOutOfStep(_ error: any Error) {
        if let e = error as? PcapError, e.outOfStepPackets > 0 { capture.uncountLast(e.outOfStepPackets) }
    }

    /// End of capture: every open connection is closed and reported.
    public func finish(emit: (SniffEvent) -> Void) {
        capture.finish { handle($0, emit: emit) }
    }

    // MARK: In two halves
    //
    // `process` is decoding and reassembly, then dissection. The halves are also callable apart,
    // so that a capture file can be reassembled on one thread and dissected on another: what one
    // half touches (the reassembler, `packets`, `skipped`, `lastTime`) the other does not (the
    // connections, `summaries`). Each half must be called from one thread at a time, and the
    // events must reach `dissect` in the order `reassemble` delivered them. The first half's
    // counters are only to be read once it has stopped. Its state is an object of its own
    // (`PacketReassembly`), so that the two threads share no reference count and no cache line:
    // when both halves were this object's, its count, changed by both for every packet, cost the
    // reading thread a tenth of its time.

    /// The first half of `process`: decodes the packet and reassembles its flow. `deliver` gets
    /// the reassembler's events; their bytes are borrowed for the call.
    public func reassemble(_ packet: PcapPacket, linkType: Int32, deliver: (TCPReassemblyEvent) -> Void) {
        capture.reassemble(packet, linkType: linkType, deliver: deliver)
    }

    /// The first half of `finish`: closes every open flow.
    public func finishReassembly(deliver: (TCPReassemblyEvent) -> Void) {
        capture.finish(deliver: deliver)
    }

    /// The second half of `process` and `finish`: one reassembler event, dissected. With
    /// `mayModify`, a `.data` event's bytes are the caller's own copy and WebSocket payloads are
    /// unmasked where they lie instead of in a copy of them. With a `sink`, frames and messages go
    /// there, every other event to `emit` (see `SniffRecordSink`).
    public func dissect(_ event: TCPReassemblyEvent, mayModify: Bool = false, sink: (any SniffRecordSink)? = nil,
                        emit: (SniffEvent) -> Void) {
        handle(event, mayModify: mayModify, sink: sink, emit: emit)
    }

    /// For a live capture, now and then: connections holding bytes after a gap that have gone quiet
    /// let out the frames they can (`WebSocketConnectionDissector.settleQuietHunts`).
    public func settleQuietHunts(now: Double, emit: (SniffEvent) -> Void) {
        // Acknowledged bytes still unseen a second later are given up here too (live, nothing
        // else moves the capture's clock on a quiet connection).
        capture.reassembler.settleWaitingAcknowledgments(now: now) { handle($0, emit: emit) }
        for entry in connections.values where entry.dissector.isHunting {
            entry.dissector.settleQuietHunts(now: now, emit: emit)
        }
    }

    /// Still-open connections' summaries (for --stats at an interrupted live capture).
    public var openSummaries: [ConnectionSummary] { connections.values.map(\.dissector).filter(\.isWebSocket).map(\.summary) }

    private func handle(_ event: TCPReassemblyEvent, mayModify: Bool = false, sink: (any SniffRecordSink)? = nil,
                        emit: (SniffEvent) -> Void) {
        switch event {
        case .flowOpened(let info):
            nextConnection += 1
            let dissector = WebSocketConnectionDissector(
                id: nextConnection, first: info.initiator, second: info.responder,
                clientIsFirst: info.handshakeSeen ? true : nil, time: info.time,
                configuration: configuration.dissector, webSocketPorts: configuration.webSocketPorts)
            forgetRecent(info.id)  // (flow IDs are not reused; should one be, no stale entry is left)
            connections[info.id] = Connection(dissector: dissector, info: info)
        case .data(let flow, let direction, let bytes, _, let time, _):
            guard let entry = connection(flow) else { return }
            entry.dissector._withUnsafeGuaranteedRef { d in
                if !d.isIgnored { d.data(from: entry.info.source(of: direction), bytes, mayModify: mayModify, time: time, sink: sink, emit: emit) }
            }
        case .gap(let flow, let direction, let missing, _, let time, let bufferFull):
            guard let entry = connection(flow) else { return }
            entry.dissector._withUnsafeGuaranteedRef { d in
                if !d.isIgnored { d.gap(from: entry.info.source(of: direction), missing: missing, time: time, bufferFull: bufferFull, emit: emit) }
            }
        case .directionClosed:
            break
        case .flowClosed(let flow, let reason, let time):
            forgetRecent(flow)
            guard let c = connections.removeValue(forKey: flow)?.dissector else { return }
            if configuration.reportsForSaving { closedFlows.append((flow, c.isWebSocket || c.sawUpgradeRequest)) }
            // An upgrade request was seen (answered, refused, or not answered in the capture).
            guard c.isWebSocket || c.sawUpgradeRequest else { return }
            c.close(reason: reason.description, time: time, emit: emit)
            let summary = c.summary
            totals.connections += 1
            totals.messages += summary.messages.values.reduce(0, +)
            totals.bytes += summary.bytes.values.reduce(0, +)
            totals.violations += summary.violations
            if summary.violations > 0 { totals.connectionsWithViolations += 1 }
            totals.gaps += summary.gaps
            totals.gapBytes += summary.gapBytes
            totals.bufferFullGapBytes += summary.bufferFullGapBytes
            if summary.gaps > 0 { totals.connectionsWithGaps += 1 }
            guard configuration.maxSummaries > 0 else { return }
            keptSummaries.append(summary)
            // Trimmed now and then, not on every close (each trim moves the whole array).
            if keptSummaries.count >= 2 * configuration.maxSummaries { keptSummaries.removeFirst(keptSummaries.count - configuration.maxSummaries) }
        }
    }
}

/// A session's first half: link, IP and TCP decoding, IP fragments and TCP reassembly, with the
/// counters they keep. Used by one thread at a time (see `SniffSession`'s "In two halves").
final class PacketReassembly {
    var reassembler: TCPReassembler
    /// IP datagrams that came in fragments, being put back together.
    let fragments: IPFragmentReassembler
    var packets = 0
    var skipped: [PacketSkipReason: Int] = [:]
    var packetsCut = 0
    var longestCutPacket = 0
    var lastTime: Double = 0
    /// With `reportsForSaving`: what the last packet was as a fragment.
    var fragmentRole: SniffSession.FragmentRole? = nil
    let reportsForSaving: Bool

    init(configuration: SniffConfiguration) {
        reassembler = TCPReassembler(configuration: configuration.reassembly)
        fragments = IPFragmentReassembler(reportsDrops: configuration.reportsForSaving)
        reportsForSaving = configuration.reportsForSaving
    }

    deinit {
        recentSkips.deinitialize(count: Self.recentCount)
        recentSkips.deallocate()
    }

    func count(_ packet: PcapPacket) {
        packets += 1
        lastTime = packet.time
        recentAt = (recentAt &+ 1) & (Self.recentCount &- 1)
        recentSkips[recentAt] = nil
    }

    /// Why each of the last `recentCount` packets counted was skipped, if it was (a ring, the
    /// latest at `recentAt`): the packets a damaged file's source returned out of step are taken
    /// back from `skipped` as well as from `packets`.
    /// (Memory of its own, not an Array: written for every packet, an Array's uniqueness and
    /// bounds checks cost more than the write.)
    private let recentSkips: UnsafeMutablePointer<PacketSkipReason?> = {
        let p = UnsafeMutablePointer<PacketSkipReason?>.allocate(capacity: PacketReassembly.recentCount)
        p.initialize(repeating: nil, count: PacketReassembly.recentCount)
        return p
    }()
    private var recentAt = 0
    static let recentCount = 1 << 16

    private func skip(_ reason: PacketSkipReason) {
        skipped[reason, default: 0] += 1
        recentSkips[recentAt] = reason
    }

    /// Takes back the last `n` packets counted (read out of step, see `PcapError.outOfStepPackets`):
    /// from `packets`, and what the last `recentCount` of them added to `skipped`.
    func uncountLast(_ n: Int) {
        packets -= n
        for k in 0..<min(n, Self.recentCount) {
            let at = (recentAt &- k) & (Self.recentCount &- 1)
            guard let reason = recentSkips[at] else { continue }
            recentSkips[at] = nil
            let left = (skipped[reason] ?? 1) - 1
            skipped[reason] = left > 0 ? left : nil
        }
    }

    func reassemble(_ packet: PcapPacket, linkType: Int32, deliver: (TCPReassemblyEvent) -> Void) {
        count(packet)
        // Unretained: the closure runs inside this call. (A retain and a release of this object
        // for every packet were a twentieth of the reading thread's time; `unowned(unsafe)` still
        // retained it for the call, a guaranteed reference does not.)
        let me = Unmanaged.passUnretained(self)
        segments(of: packet, linkType: linkType) { decoded, bytes in
            me._withUnsafeGuaranteedRef {
                _ = $0.reassembler.process(decoded, packetData: bytes, time: packet.time, packetNumber: packet.number, emit: deliver)
            }
        }
    }

    /// Closes every open flow.
    func finish(deliver: (TCPReassemblyEvent) -> Void) {
        fragments.finish()
        countDroppedFragments()
        reassembler.finish(time: lastTime, emit: deliver)
    }

    /// The TCP segment in `packet`, if any, with the bytes it lies in: the packet's own, or those of
    /// the datagram the packet's fragment completed. What is not TCP is counted in `skipped`.
    func segments(of packet: PcapPacket, linkType: Int32, _ body: (DecodedPacket, UnsafeRawBufferPointer) -> Void) {
        var fragment: IPFragment? = nil
        fragments.expire(now: packet.time)
        switch PacketDecoder.decode(linkType: linkType, data: packet.data, fragment: &fragment) {
        case .tcp(var decoded):
            // Bytes the IP header claims beyond the captured ones are uncaptured (a gap) only as far
            // as the snapshot length cut the packet: past its length on the wire, the header lies
            // (tshark: "IPv4 total length exceeds packet length") and the segment is what came.
            let cut = max(0, packet.wireLength - packet.data.count)
            if decoded.uncapturedPayloadLength > cut { decoded.uncapturedPayloadLength = cut }
            if decoded.uncapturedPayloadLength > 0 { countCut(packet) }
            body(decoded, packet.data)
        case .skipped(.ipFragment) where fragment != nil:
            if !fragment!.complete { countCut(packet) }
            let datagram = fragment!.datagram
            switch fragments.add(fragment!, packet: packet.data, time: packet.time) {
            case .whole(let whole):
                if reportsForSaving { fragmentRole = .completed(datagram) }
                whole.withUnsafeBytes { raw in
                    // Raw IP: version 4 or 6 from the first byte.
                    switch PacketDecoder.decode(linkType: PcapLinkType.raw, data: raw) {
                    case .tcp(let decoded): body(decoded, raw)
                    case .skipped(let reason): skip(reason)
                    }
                }
            case .held:
                if reportsForSaving { fragmentRole = .pending(datagram) }
            case .duplicate:
                if reportsForSaving { fragmentRole = .duplicate(datagram) }
            case .givenUp:
                break
            }
            countDroppedFragments()
        case .skipped(let reason):
            // Cut inside its headers (a fragment without its IP header is one too).
            switch reason {
            case .malformedTCPHeader, .malformedIPHeader, .truncatedLinkHeader, .ipFragment:
                if packet.data.count < packet.wireLength { countCut(packet) }
            default: break
            }
            skip(reason)
        }
    }

    /// A packet the snapshot length cut where it matters: bytes of the IP datagram are missing (not
    /// an Ethernet frame's padding or checksum left out).
    private func countCut(_ packet: PcapPacket) {
        packetsCut += 1
        longestCutPacket = max(longestCutPacket, packet.data.count)
    }

    func countDroppedFragments() {
        let dropped = fragments.takeDropped()
        if dropped > 0 { skipped[.ipFragment, default: 0] += dropped }
    }
}
