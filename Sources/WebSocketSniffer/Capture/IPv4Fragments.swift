/// Where an IPv4 fragment lies in a captured packet (RFC 791 §3.2), as `PacketDecoder` found it.
public struct IPv4Fragment: Sendable, Hashable {
    public var source: UInt32
    public var destination: UInt32
    public var identification: UInt16
    public var protocolNumber: UInt8
    /// Byte offset of this fragment's data in the datagram's payload.
    public var offset: Int
    public var moreFragments: Bool
    /// The IP header's bytes in the packet.
    public var header: Range<Int>
    /// The fragment's data in the packet.
    public var payload: Range<Int>
    /// The capture holds all of the fragment's data (the snapshot length did not cut it).
    public var complete: Bool
}

/// Puts IPv4 datagrams back together from their fragments (RFC 791 §3.2, RFC 815's hole list kept
/// as covered ranges), so a TCP segment that was fragmented on the way is dissected like any other.
/// Bounded: at most `maxDatagrams` in progress (the oldest is given up for a new one), 65,535
/// bytes each, and a datagram whose fragments stop coming for `timeout` seconds of capture time is
/// given up. Fragments of given-up datagrams are counted (`takeDropped`). Overlapping fragments
/// keep the bytes that came first.
public final class IPv4FragmentReassembler {
    public static let maxDatagrams = 256
    public static let timeout = 30.0

    private struct Key: Hashable {
        var source: UInt32
        var destination: UInt32
        var identification: UInt16
        var protocolNumber: UInt8
    }

    private struct Partial {
        var header: [UInt8]?
        var data: [UInt8] = []
        var covered: [Range<Int>] = []
        var total: Int?
        var fragments = 0
        var lastTime: Double
    }

    private var partials: [Key: Partial] = [:]
    private var dropped = 0
    private var lastSweep = -Double.infinity

    public init() {}

    /// Datagrams in progress.
    public var pending: Int { partials.count }

    /// Fragments given up since the last call (expired, over a bound, cut short by the snapshot
    /// length, or inconsistent).
    public func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }

    /// Adds a fragment found in `packet`; returns the whole datagram (header and payload, fragment
    /// fields cleared) once its last missing piece has come.
    public func add(_ f: IPv4Fragment, packet: UnsafeRawBufferPointer, time: Double) -> [UInt8]? {
        if time - lastSweep >= 1 { sweep(now: time) }
        let key = Key(source: f.source, destination: f.destination, identification: f.identification, protocolNumber: f.protocolNumber)
        let end = f.offset + f.payload.count
        guard f.complete, end <= 65_535 - 20, f.moreFragments ? f.payload.count % 8 == 0 : true else {
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
                dropped += p.fragments
                return nil
            }
            p.total = end
        }
        if f.offset == 0 { p.header = Array(UnsafeRawBufferPointer(rebasing: packet[f.header])) }
        if p.data.count < end { p.data.append(contentsOf: repeatElement(0, count: end - p.data.count)) }
        // Keep what came first: write only the parts not yet covered.
        var start = f.offset
        for c in p.covered.sorted(by: { $0.lowerBound < $1.lowerBound }) where c.upperBound > start && c.lowerBound < end {
            if c.lowerBound > start { copy(packet, f, from: start, to: c.lowerBound, into: &p.data) }
            start = max(start, c.upperBound)
        }
        if start < end { copy(packet, f, from: start, to: end, into: &p.data) }
        p.covered = merged(p.covered + [f.offset..<end])
        if let total = p.total, var header = p.header, p.covered == [0..<total] {
            let length = header.count + total
            header[2] = UInt8(length >> 8)
            header[3] = UInt8(length & 0xFF)
            header[6] = 0
            header[7] = 0
            return header + p.data[0..<total]
        }
        partials[key] = p
        return nil
    }

    /// Gives up every datagram still in progress (the end of the capture).
    public func finish() {
        for key in Array(partials.keys) { drop(key) }
    }

    private func copy(_ packet: UnsafeRawBufferPointer, _ f: IPv4Fragment, from: Int, to: Int, into data: inout [UInt8]) {
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

    private func drop(_ key: Key, plus extra: Int = 0) {
        dropped += (partials.removeValue(forKey: key)?.fragments ?? 0) + extra
    }

    private func sweep(now: Double) {
        lastSweep = now
        for (key, p) in partials where now - p.lastTime >= Self.timeout { drop(key) }
    }
}
