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
///
/// A fragment of a datagram completed within `timeout` that repeats its bytes (the network or
/// the capture saw it twice, maybe stamped a little earlier) is a duplicate. It is put together
/// as any fragment is, but a datagram made of duplicates only is not counted or reported as
/// given up when it expires, nor delivered if it completes (it is the datagram before, again).
/// A fragment with other bytes is a new datagram's that reuses the identification: the
/// fragments before it, which may be its own with the same bytes, are put together with it.
public final class IPFragmentReassembler {
    public static let maxDatagrams = 256
    public static let timeout = 30.0
    /// Bytes of completed datagrams kept to recognise their duplicate fragments (at most
    /// `maxDatagrams` datagrams, the oldest let go first).
    public static let maxRecentBytes = 4 << 20

    /// What became of a fragment.
    public enum Outcome: Equatable {
        /// It completed its datagram: the whole datagram (header and payload, fragment fields cleared).
        case whole([UInt8])
        /// Its datagram is still missing pieces.
        case held
        /// It repeats part of a datagram completed within `timeout`.
        case duplicate
        /// It was given up (with its datagram, or alone), and counted (`takeDropped`).
        case givenUp
    }

    private struct Partial {
        var header: [UInt8]?
        var data: [UInt8] = []
        var covered: [Range<Int>] = []
        var total: Int?
        var fragments = 0
        var lastTime: Double
        /// Every fragment so far repeats the datagram completed before under this identification.
        var duplicatesOnly = false
    }

    /// Keep the list of datagrams given up (`takeDroppedDatagrams`), for -w, which holds their
    /// fragments' packets until it knows what became of them.
    public let reportsDrops: Bool
    private var partials: [IPFragment.Datagram: Partial] = [:]
    /// Datagrams completed lately: their payload, remembered at their completion's time, and the
    /// bytes of them all.
    private var recent = AgedMemory<IPFragment.Datagram, [UInt8]>()
    private var recentBytes = 0
    /// Completed datagrams let go since the last call (with `reportsDrops`): their duplicates
    /// are no longer recognised.
    private var forgotten: [IPFragment.Datagram] = []
    private var dropped = 0
    private var droppedDatagrams: [IPFragment.Datagram] = []
    private var lastSweep = -Double.infinity

    public init(reportsDrops: Bool = false) {
        self.reportsDrops = reportsDrops
    }

    /// Datagrams in progress.
    public var pending: Int { partials.count }


    /// The datagrams given up since the last call (with `reportsDrops`), each once, in order.
    public func takeDroppedDatagrams() -> [IPFragment.Datagram] {
        defer { droppedDatagrams = [] }
        return droppedDatagrams
    }

    /// The completed datagrams let go since the last call (with `reportsDrops`), in order:
    /// fragments repeating them are no longer duplicates.
    public func takeForgottenDatagrams() -> [IPFragment.Datagram] {
        defer { forgotten = [] }
        return forgotten
    }

    /// Fragments given up since the last call (expired, over a bound, cut short by the snapshot
    /// length, or inconsistent).
    public func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }

    /// Adds a fragment found in `packet`: the whole datagram once its last missing piece has come.
    public func add(_ f: IPFragment, packet data: UnsafeRawBufferPointer, time: Double) -> Outcome {
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
            return .givenUp
        }
        // (While the datagram before is remembered, a partial one under its identification is
        // made of its duplicates only: one with another fragment made it forget that datagram.)
        var duplicate = false
        if let (before, completed) = recent[key] {
            duplicate = abs(time - completed) < Self.timeout && repeats(f, data, before)
            if !duplicate { forgetRecent(key) }  // the identification used again, for another datagram
        }
        if partials[key] == nil, partials.count >= Self.maxDatagrams,
           let oldest = partials.min(by: { $0.value.lastTime < $1.value.lastTime })?.key {
            drop(oldest)
        }
        var p = partials.removeValue(forKey: key) ?? Partial(lastTime: time, duplicatesOnly: true)
        if !duplicate { p.duplicatesOnly = false }
        guard absorb(f, data, into: &p, time: time) else {
            giveUp(key, p)
            return .givenUp
        }
        // The datagram before, whole again: nothing new.
        if p.duplicatesOnly, let total = p.total, p.covered == [0..<total] { return .duplicate }
        if let total = p.total, var header = p.header, p.covered == [0..<total] {
            switch key {
            case .v4:
                // Total Length: a header with options can make it more than 16 bits hold.
                let length = header.count + total
                guard length <= 65_535 else {
                    giveUp(key, p)
                    return .givenUp
                }
                header[2] = UInt8(length >> 8)
                header[3] = UInt8(length & 0xFF)
                header[6] = 0
                header[7] = 0
            case .v6:
                // Payload Length: the extension headers kept, and the reassembled data.
                let length = header.count - 40 + total
                guard length <= 65_535 else {
                    giveUp(key, p)
                    return .givenUp
                }
                header[4] = UInt8(length >> 8)
                header[5] = UInt8(length & 0xFF)
            }
            p.data.removeSubrange(total...)
            remember(key, p.data, time: time)
            return .whole(header + p.data)
        }
        partials[key] = p
        return duplicate ? .duplicate : .held
    }

    /// Puts fragment `f`'s bytes into `p` where they are not yet (what came first is kept). False
    /// when, a last fragment, it ends elsewhere than one before it said the datagram does.
    private func absorb(_ f: IPFragment, _ data: UnsafeRawBufferPointer, into p: inout Partial, time: Double) -> Bool {
        let end = f.offset + f.payload.count
        p.fragments += 1
        p.lastTime = time
        if !f.moreFragments {
            if let total = p.total, total != end { return false }
            p.total = end
        }
        if f.offset == 0 {
            var header = Array(UnsafeRawBufferPointer(rebasing: data[f.header]))
            if let next = f.nextHeader { header[next.at - f.header.lowerBound] = next.value }
            p.header = header
        }
        if p.data.count < end { p.data.append(contentsOf: repeatElement(0, count: end - p.data.count)) }
        var start = f.offset
        for c in p.covered.sorted(by: { $0.lowerBound < $1.lowerBound }) where c.upperBound > start && c.lowerBound < end {
            if c.lowerBound > start { copy(data, f, from: start, to: c.lowerBound, into: &p.data) }
            start = max(start, c.upperBound)
        }
        if start < end { copy(data, f, from: start, to: end, into: &p.data) }
        p.covered = merged(p.covered + [f.offset..<end])
        return true
    }

    /// Whether fragment `f` holds bytes of the completed datagram `data` where it says they lie
    /// (and, as its last fragment, ends where it ended).
    private func repeats(_ f: IPFragment, _ packet: UnsafeRawBufferPointer, _ data: [UInt8]) -> Bool {
        let end = f.offset + f.payload.count
        guard f.complete, end <= data.count, f.moreFragments || end == data.count else { return false }
        return data.withUnsafeBytes { whole in
            UnsafeRawBufferPointer(rebasing: whole[f.offset..<end]).elementsEqual(UnsafeRawBufferPointer(rebasing: packet[f.payload]))
        }
    }

    private func remember(_ key: IPFragment.Datagram, _ data: [UInt8], time: Double) {
        forgetRecent(key)
        recent.remember(data, for: key, at: time)
        recentBytes += data.count
        // Bounded: the oldest let go first.
        while recent.count > Self.maxDatagrams || recentBytes > Self.maxRecentBytes, let (oldest, data) = recent.forgetOldest() {
            letGo(oldest, data)
        }
    }

    private func forgetRecent(_ key: IPFragment.Datagram) {
        if let data = recent.forget(key) { letGo(key, data) }
    }

    /// A completed datagram let go: its bytes no longer held, and -w told.
    private func letGo(_ key: IPFragment.Datagram, _ data: [UInt8]) {
        recentBytes -= data.count
        if reportsDrops { forgotten.append(key) }
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

    /// Gives up the datagram in progress under `key`, if any, with `extra` fragments of it that
    /// were never added.
    private func drop(_ key: IPFragment.Datagram, plus extra: Int = 0) {
        giveUp(key, partials.removeValue(forKey: key), plus: extra)
    }

    /// Counts a datagram's fragments as dropped (it is no longer in `partials`), and reports it
    /// once; not the fragments of one made of duplicates only, which -w saved with the datagram
    /// they repeat.
    private func giveUp(_ key: IPFragment.Datagram, _ p: Partial?, plus extra: Int = 0) {
        let counted = (p.map { $0.duplicatesOnly ? 0 : $0.fragments } ?? 0) + extra
        guard counted > 0 || p.map({ !$0.duplicatesOnly }) == true else { return }
        dropped += counted
        if reportsDrops { droppedDatagrams.append(key) }
    }

    /// Gives up the datagrams that have waited `timeout` for a fragment, at capture time `now`
    /// (at most once a second): called for every packet, not only for fragments, so that a
    /// datagram whose fragments stopped coming is given up while other traffic goes on (-w holds
    /// everything after its fragments until then).
    public func expire(now: Double) {
        // (Also when the clock went back: a packet stamped far ahead must not put sweeps off.)
        if !(partials.isEmpty && recent.isEmpty) && (now - lastSweep >= 1 || now < lastSweep) { sweep(now: now) }
    }

    private func sweep(now: Double) {
        lastSweep = now
        for (key, p) in partials where now - p.lastTime >= Self.timeout { drop(key) }
        // Completed datagrams `timeout` old.
        recent.forget(while: { now - $0 >= Self.timeout }) { key, data in letGo(key, data) }
    }
}
