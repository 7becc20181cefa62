import WebSocketSniffer

/// Turns the packets of a tcpdump or tshark dump (which hold whole packets, headers and all) into
/// the byte streams of their TCP connections, so that `decode` reads WebSocket bytes out of them
/// as `sniff` reads a capture: with the sniffer's own packet decoder and TCP reassembler, so
/// retransmitted and reordered segments are put in sequence-number order, and bytes the dump
/// does not hold are reported as gaps rather than read across.
enum PacketDumpStreams {
    /// One direction of one TCP connection.
    struct Stream {
        /// `TCP 127.0.0.1:37862 > 127.0.0.1:28081`, or `[::1]:58436` for IPv6 (as sniff writes it).
        var label: String
        var bytes: [UInt8]
        /// Where bytes are missing, in stream order.
        var gaps: [DissectionPrinter.Gap]
    }

    /// A dump holds no link-layer type: these are tried in turn on each packet, and the first
    /// that finds a TCP segment wins. Raw IP first (tshark and tcpdump print it for captures of
    /// tunnels), then Ethernet (tcpdump -xx, tshark -x of most captures), then Linux cooked
    /// capture v1 and v2 (`-i any`; v2 is tcpdump 4.99's default there). Each is tried strictly
    /// (a header length, a version, a next-protocol field and a TCP header that fit the bytes),
    /// so one type's header is not read as another's.
    static let linkTypes: [Int32] = [PcapLinkType.raw, PcapLinkType.ethernet, PcapLinkType.linuxSLL, PcapLinkType.linuxSLL2]

    /// The TCP segment in one pasted packet, or nil if none of `linkTypes` finds one.
    static func segment(_ packet: [UInt8]) -> DecodedPacket? {
        for type in linkTypes {
            if case .tcp(let p) = PacketDecoder.decode(linkType: type, data: packet) { return p }
        }
        return nil
    }

    /// The streams of `packets` (in dump order), or nil unless every packet is a TCP segment (then
    /// the dump is not read as packets). Streams come in the order their first packet appears; a
    /// direction whose packets carried no payload still has its (empty) stream, so that nothing
    /// is dropped silently, and two connections on the same ports are two streams.
    static func streams(_ packets: [[UInt8]]) -> [Stream]? {
        var segments: [DecodedPacket] = []
        segments.reserveCapacity(packets.count)
        for p in packets {
            guard let s = segment(p) else { return nil }
            segments.append(s)
        }
        var flows: [TCPFlowID: TCPFlowInfo] = [:]
        var index: [StreamKey: Int] = [:]
        var streams: [Stream] = []
        func stream(_ flow: TCPFlowID, _ direction: TCPDirection) -> Int? {
            let key = StreamKey(flow: flow, direction: direction)
            if let i = index[key] { return i }
            guard let info = flows[flow] else { return nil }
            index[key] = streams.count
            streams.append(Stream(label: "TCP \(info.source(of: direction)) > \(info.destination(of: direction))", bytes: [], gaps: []))
            return streams.count - 1
        }
        func take(_ event: TCPReassemblyEvent) {
            switch event {
            case .flowOpened(let info):
                flows[info.id] = info
            case .data(let flow, let direction, let bytes, _, _, _):
                if let i = stream(flow, direction) { streams[i].bytes.append(contentsOf: bytes) }
            case .gap(let flow, let direction, let missing, _, _, _):
                guard let i = stream(flow, direction), missing > 0 else { return }
                let at = streams[i].bytes.count
                if let last = streams[i].gaps.last, last.at == at {
                    streams[i].gaps[streams[i].gaps.count - 1].missing += missing
                } else {
                    streams[i].gaps.append(DissectionPrinter.Gap(at: at, missing: missing))
                }
            case .directionClosed, .flowClosed:
                break
            }
        }
        // A dump has no times worth trusting (tshark -x prints none): every packet is given the
        // same one, so no flow idles out and the order of the dump alone decides.
        var reassembler = TCPReassembler()
        for (n, (packet, segment)) in zip(packets, segments).enumerated() {
            let flow = packet.withUnsafeBytes { data in
                reassembler.process(segment, packetData: data, time: 0, packetNumber: n + 1, emit: take)
            }
            if let flow, let info = flows[flow], let direction = info.direction(from: segment.sourceEndpoint) {
                _ = stream(flow, direction)
            }
        }
        reassembler.finish(time: 0, emit: take)
        return streams
    }

    private struct StreamKey: Hashable {
        var flow: TCPFlowID
        var direction: TCPDirection
    }
}
