/// Where an IP fragment lies in a captured packet, as `PacketDecoder` found it: an IPv4 packet
/// with More Fragments or a fragment offset (RFC 791 §3.2), or an IPv6 packet with a Fragment
/// extension header (RFC 8200 §4.5).
public struct IPFragment: Sendable, Hashable {
    public enum Datagram: Sendable, Hashable {
        case v4(source: UInt32, destination: UInt32, identification: UInt16, protocolNumber: UInt8)
        case v6(source: IPAddress, destination: IPAddress, identification: UInt32)
    }

    /// Which datagram the fragment belongs to.
    public var datagram: Datagram
    /// Byte offset of this fragment's data in the datagram's payload (its fragmentable part).
    public var offset: Int
    public var moreFragments: Bool
    /// The header bytes the whole datagram gets from its first fragment: the IPv4 header, or the
    /// IPv6 header and the extension headers before the Fragment header.
    public var header: Range<Int>
    /// IPv6: where in the packet the Next Header field that names the Fragment header lies, and the
    /// value it gets in the whole datagram (the Fragment header's own Next Header).
    public var nextHeader: (at: Int, value: UInt8)? {
        get { nextHeaderAt.map { ($0, nextHeaderValue) } }
        set { nextHeaderAt = newValue?.at; nextHeaderValue = newValue?.value ?? 0 }
    }
    private var nextHeaderAt: Int?
    private var nextHeaderValue: UInt8 = 0
    /// The fragment's data in the packet.
    public var payload: Range<Int>
    /// The capture holds all of the fragment's data (the snapshot length did not cut it).
    public var complete: Bool

    public init(datagram: Datagram, offset: Int, moreFragments: Bool, header: Range<Int>,
                nextHeader: (at: Int, value: UInt8)? = nil, payload: Range<Int>, complete: Bool) {
        self.datagram = datagram
        self.offset = offset
        self.moreFragments = moreFragments
        self.header = header
        self.payload = payload
        self.complete = complete
        self.nextHeader = nextHeader
    }
}

/// Puts IP datagrams back together from their fragments, IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200
/// §4.5), with RFC 815's hole list kept as covered ranges, so a TCP segment that was fragmented on
/// the way is dissected like any other. Bounded: at most `maxDatagrams` in progress (the oldest is
/// given up for a new one), 65,535 bytes each, and a datagram whose fragments stop coming for
/// `timeout` seconds of capture time is given up. Fragments of given-up datagrams are counted
/// (`takeDropped`). Overlapping fragments keep the bytes that came first.
public final class IPFragmentReassembler {
    public static let maxDatagrams = 256
    public static let timeout = 30.0

    private struct Partial {
        var header: [UInt8]?
        var data: [UInt8] = []
        var covered: [Range<Int>] = []
        var total: Int?
        var fragments = 0
        var lastTime: Double
    }

    /// Keep the list of datagrams given up (`takeDroppedDatagrams`), for -w, which holds their
    /// fragments' packets until it knows what became of them.
    public let reportsDrops: Bool
    private var partials: [IPFragment.Datagram: Partial] = [:]
    private var dropped = 0
    private var droppedDatagrams: [IPFragment.Datagram] = []
    private var lastSweep = -Double.infinity

    public init(reportsDrops: Bool = false) {
        self.reportsDrops = reportsDrops
    }

    /// Datagrams in progress.
    public var pending: Int { partials.count }

    /// Whether `datagram` is in progress: some of its fragments came, and it was not given up.
    public func isPending(_ datagram: IPFragment.Datagram) -> Bool { partials[datagram] != nil }

    /// The datagrams given up since the last call (with `reportsDrops`), each once, in order.
    public func takeDroppedDatagrams() -> [IPFragment.Datagram] {
        defer { droppedDatagrams = [] }
        return droppedDatagrams
    }

    /// Fragments given up since the last call (expired, over a bound, cut short by the snapshot
    /// length, or inconsistent).
    public func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }

    /// Adds a fragment found in `packet`; returns the whole datagram (header and payload, fragment
    /// fields cleared) once its last missing piece has come.
    public func add(_ f: IPFragment, packet data: UnsafeRawBufferPointer, time: Double) -> [UInt8]? {
        expire(now: time)
        let key = f.datagram
        // Its own timeout exactly, whenever the sweep last ran: a fragment 30 s after the one
        // before starts the datagram again (once, a sweep a moment earlier decided that).
        if let p = partials[key], time - p.lastTime >= Self.timeout { drop(key) }
        let end = f.offset + f.payload.count
        let headerRoom: Int
        if case .v4 = key { headerRoom = 20 } else { headerRoom = 0 }
        guard f.complete, end <= 65_535 - headerRoom, f.moreFragments ? f.payload.count % 8 == 0 : true else {
            drop(key, plus: 1)
            return nil
        }
        if partials[key] == nil, partials.count >= Self.maxDatagrams,
           let oldest = partials.min(by: { $0.value.lastTime < $1.value.lastTime })?.key {
            drop(oldest)
        }
        var p = partials.removeValue(forKey: key) ?? Partial(lastTime: time)
        p.fragments += 1
        p.lastTime = time
        if !f.moreFragments {
            if let total = p.total, total != end {
                giveUp(key, fragments: p.fragments)
                return nil
            }
            p.total = end
        }
        if f.offset == 0 {
            var header = Array(UnsafeRawBufferPointer(rebasing: data[f.header]))
            if let next = f.nextHeader { header[next.at - f.header.lowerBound] = next.value }
            p.header = header
        }
        if p.data.count < end { p.data.append(contentsOf: repeatElement(0, count: end - p.data.count)) }
        // Keep what came first: write only the parts not yet covered.
        var start = f.offset
        for c in p.covered.sorted(by: { $0.lowerBound < $1.lowerBound }) where c.upperBound > start && c.lowerBound < end {
            if c.lowerBound > start { copy(data, f, from: start, to: c.lowerBound, into: &p.data) }
            start = max(start, c.upperBound)
        }
        if start < end { copy(data, f, from: start, to: end, into: &p.data) }
        p.covered = merged(p.covered + [f.offset..<end])
        if let total = p.total, var header = p.header, p.covered == [0..<total] {
            switch key {
            case .v4:
                // Total Length: a header with options can make it more than 16 bits hold.
                let length = header.count + total
                guard length <= 65_535 else {
                    giveUp(key, fragments: p.fragments)
                    return nil
                }
                header[2] = UInt8(length >> 8)
                header[3] = UInt8(length & 0xFF)
                header[6] = 0
                header[7] = 0
            case .v6:
                // Payload Length: the extension headers kept, and the reassembled data.
                let length = header.count - 40 + total
                guard length <= 65_535 else {
                    giveUp(key, fragments: p.fragments)
                    return nil
                }
                header[4] = UInt8(length >> 8)
                header[5] = UInt8(length & 0xFF)
            }
            return header + p.data[0..<total]
        }
        partials[key] = p
        return nil
    }

    /// Gives up every datagram still in progress (the end of the capture).
    public func finish() {
        for key in Array(partials.keys) { drop(key) }
    }

    private func copy(_ packet: UnsafeRawBufferPointer, _ f: IPFragment, from: Int, to: Int, into data: inout [UInt8]) {
        let source = UnsafeRawBufferPointer(rebasing: packet[(f.payload.lowerBound + from - f.offset)..<(f.payload.lowerBound + to - f.offset)])
        data.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[from..<to]).copyMemory(from: source) }
    }

    private func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    private func drop(_ key: IPFragment.Datagram, plus extra: Int = 0) {
        giveUp(key, fragments: (partials.removeValue(forKey: key)?.fragments ?? 0) + extra)
    }

    /// Counts a datagram's fragments as dropped (it is no longer in `partials`).
    private func giveUp(_ key: IPFragment.Datagram, fragments: Int) {
        dropped += fragments
        if reportsDrops { droppedDatagrams.append(key) }
    }

    /// Gives up the datagrams that have waited `timeout` for a fragment, at capture time `now`
    /// (at most once a second): called for every packet, not only for fragments, so that a
    /// datagram whose fragments stopped coming is given up while other traffic goes on (-w holds
    /// everything after its fragments until then).
    public func expire(now: Double) {
        // (Also when the clock went back: a packet stamped far ahead must not put sweeps off.)
        if !partials.isEmpty && (now - lastSweep >= 1 || now < lastSweep) { sweep(now: now) }
    }

    private func sweep(now: Double) {
        lastSweep = now
        for (key, p) in partials where now - p.lastTime >= Self.timeout { drop(key) }
    }
}
