/// Finds the TCP payload in a packet pasted from tcpdump or tshark (which dump whole packets),
/// so that `decode` can read WebSocket bytes out of them. Ethernet (with 802.1Q tags), Linux
/// cooked capture v1, IPv4 and IPv6 are recognised; anything else is left alone.
enum PacketHeaders {
    struct TCPSegment {
        /// "src:port > dst:port", which also identifies the direction.
        var flow: String
        var payload: ArraySlice<UInt8>
    }

    static func tcpPayload(_ p: ArraySlice<UInt8>) -> TCPSegment? {
        let b = Array(p)
        if let s = ip(b, at: 0) { return s }
        // Ethernet II: 6+6 bytes of addresses, then the EtherType (after any 802.1Q tags).
        if b.count >= 14 {
            var at = 12
            while at + 4 <= b.count && b[at] == 0x81 && b[at + 1] == 0x00 { at += 4 }
            if at + 2 <= b.count, (b[at] == 0x08 && b[at + 1] == 0x00) || (b[at] == 0x86 && b[at + 1] == 0xDD),
                let s = ip(b, at: at + 2) { return s }
        }
        // Linux cooked capture v1: 16-byte header ending in the protocol type.
        if b.count >= 16, (b[14] == 0x08 && b[15] == 0x00) || (b[14] == 0x86 && b[15] == 0xDD), let s = ip(b, at: 16) { return s }
        return nil
    }

    private static func ip(_ b: [UInt8], at start: Int) -> TCPSegment? {
        guard start < b.count else { return nil }
        let version = b[start] >> 4
        if version == 4 {
            let ihl = Int(b[start] & 0x0F) * 4
            guard ihl >= 20, start + ihl <= b.count, b[start + 9] == 6 else { return nil }
            let total = Int(b[start + 2]) << 8 | Int(b[start + 3])
            // The total length must fit what was pasted (Ethernet may pad short frames).
            guard total >= ihl, start + total <= b.count else { return nil }
            let src = b[(start + 12)..<(start + 16)].map(String.init).joined(separator: ".")
            let dst = b[(start + 16)..<(start + 20)].map(String.init).joined(separator: ".")
            return tcp(b, at: start + ihl, end: start + total, src: src, dst: dst)
        }
        if version == 6 {
            guard start + 40 <= b.count, b[start + 6] == 6 else { return nil }
            let payloadLength = Int(b[start + 4]) << 8 | Int(b[start + 5])
            guard start + 40 + payloadLength <= b.count else { return nil }
            func addr(_ o: Int) -> String {
                stride(from: o, to: o + 16, by: 2).map { String(Int(b[$0]) << 8 | Int(b[$0 + 1]), radix: 16) }.joined(separator: ":")
            }
            return tcp(b, at: start + 40, end: start + 40 + payloadLength, src: "[\(addr(start + 8))]", dst: "[\(addr(start + 24))]")
        }
        return nil
    }

    private static func tcp(_ b: [UInt8], at start: Int, end: Int, src: String, dst: String) -> TCPSegment? {
        guard start + 20 <= end else { return nil }
        let offset = Int(b[start + 12] >> 4) * 4
        guard offset >= 20, start + offset <= end else { return nil }
        let sport = Int(b[start]) << 8 | Int(b[start + 1])
        let dport = Int(b[start + 2]) << 8 | Int(b[start + 3])
        return TCPSegment(flow: "\(src):\(sport) > \(dst):\(dport)", payload: b[(start + offset)..<end])
    }
}
