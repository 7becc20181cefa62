import Testing
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

/// TCP segments that were fragmented at the IP layer (RFC 791 §3.2) are put back together and
/// dissected like any other; what cannot be completed is counted, and memory stays bounded.
@Suite struct IPv4FragmentTests {
    static let client = Build.client4
    static let server = Build.server4

    /// A masked text frame in one TCP segment, as an IPv4 packet (no handshake: the server's port
    /// is given as WebSocket; a SYN would make sniff wait for the upgrade).
    static func packets(text: String) -> (syn: Void, data: [UInt8]) {
        let frame = WebSocketFrameEncoder.encode(.text(text, maskingKey: WebSocketMaskingKey(1, 2, 3, 4)))
        let segment = Build.tcp(from: client, to: server, seq: 1000, flags: [.psh, .ack], payload: frame)
        return ((), Build.ipv4(from: client.address, to: server.address, payload: segment))
    }

    /// `datagram` (an IPv4 packet with a 20-byte header) cut into fragments of `size` data bytes.
    static func fragments(of datagram: [UInt8], size: Int, id: UInt16 = 0x4242) -> [[UInt8]] {
        let data = Array(datagram[20...])
        return stride(from: 0, to: data.count, by: size).map { start in
            let end = min(start + size, data.count)
            return Build.ipv4(from: client.address, to: server.address, payload: Array(data[start..<end]), id: id,
                              moreFragments: end < data.count, fragmentOffset: UInt16(start / 8))
        }
    }

    /// Texts of the messages sniff finds in `packets` (raw IPv4), and its skip counts.
    static func sniff(_ packets: [[UInt8]]) -> (texts: [String], skipped: [PacketSkipReason: Int]) {
        let session = SniffSession(configuration: SniffConfiguration(webSocketPorts: [Int(server.port)]))
        var texts: [String] = []
        let collect: (SniffEvent) -> Void = { event in
            if case .message(_, _, _, let m, _) = event { texts.append(m.textString ?? "?") }
        }
        for (n, bytes) in packets.enumerated() {
            bytes.withUnsafeBytes { raw in
                let packet = PcapPacket(number: n + 1, seconds: 1_000 + Int64(n), nanoseconds: 0, wireLength: raw.count, data: raw)
                session.process(packet, linkType: PcapLinkType.ipv4, emit: collect)
            }
        }
        session.finish(emit: collect)
        return (texts, session.skipped)
    }

    @Test(arguments: [[0, 1, 2], [2, 0, 1], [1, 2, 0, 1]])  // in order, out of order, one fragment twice
    func fragmentedSegmentIsDissected(order: [Int]) {
        let text = String(repeating: "fragmented on the way ", count: 6)
        let (_, data) = Self.packets(text: text)
        let pieces = Self.fragments(of: data, size: 64)
        #expect(pieces.count == 3)
        let result = Self.sniff(order.map { pieces[$0] })
        #expect(result.texts == [text])
        // A copy of a fragment after its datagram was complete belongs to none: counted, not used.
        #expect(result.skipped[.ipFragment] == (order.count > 3 ? 1 : nil))
    }

    /// A fragment that never comes: nothing is made up, and the others are counted as skipped.
    @Test func missingFragmentIsCounted() {
        let (_, data) = Self.packets(text: String(repeating: "x", count: 150))
        let pieces = Self.fragments(of: data, size: 64)
        let result = Self.sniff([pieces[0], pieces[2]])
        #expect(result.texts.isEmpty)
        #expect(result.skipped[.ipFragment] == 2)
    }

    /// Many datagrams that never complete: at most `maxDatagrams` are held; the rest are given up
    /// and counted, and a datagram that completes afterwards is still put together.
    @Test func incompleteDatagramsAreBounded() {
        let reassembler = IPv4FragmentReassembler()
        let (_, data) = Self.packets(text: String(repeating: "y", count: 150))
        for id in 0..<1000 {
            let first = Self.fragments(of: data, size: 64, id: UInt16(id))[0]
            first.withUnsafeBytes { raw in
                var fragment: IPv4Fragment? = nil
                _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
                #expect(reassembler.add(fragment!, packet: raw, time: 1) == nil)
            }
        }
        #expect(reassembler.pending == IPv4FragmentReassembler.maxDatagrams)
        #expect(reassembler.takeDropped() == 1000 - IPv4FragmentReassembler.maxDatagrams)
        var whole: [UInt8]? = nil
        for piece in Self.fragments(of: data, size: 64, id: 5000) {
            piece.withUnsafeBytes { raw in
                var fragment: IPv4Fragment? = nil
                _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
                whole = reassembler.add(fragment!, packet: raw, time: 2) ?? whole
            }
        }
        #expect(whole.map { Array($0[20...]) } == Array(data[20...]))
        // Thirty seconds later the rest have expired.
        let late = Self.fragments(of: data, size: 64, id: 6000)[0]
        late.withUnsafeBytes { raw in
            var fragment: IPv4Fragment? = nil
            _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
            _ = reassembler.add(fragment!, packet: raw, time: 40)
        }
        #expect(reassembler.pending == 1)
    }
}
