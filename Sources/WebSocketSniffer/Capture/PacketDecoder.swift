/// Finds the TCP segment in a captured packet: link layer, then IPv4 or IPv6, then TCP.
///
/// Pure and allocation-free: it reads the bytes in place and returns header fields plus the payload's
/// position, so the sniffer's per-packet cost stays close to libpcap's own read loop. Anything it cannot
/// use is reported with a `PacketSkipReason`, never an error: a capture of a busy interface is full of ARP,
/// UDP and other traffic that is simply not ours.
public enum PacketDecoder {
    /// Decodes one packet captured with link type `linkType` (a libpcap DLT_ value, see `PcapLinkType`).
    public static func decode(linkType: Int32, data: UnsafeRawBufferPointer) -> PacketDecodeResult {
        var fragment: IPFragment? = nil
        return decode(linkType: linkType, data: data, fragment: &fragment)
    }

    /// `decode`, and for an IPv4 or IPv6 fragment (skipped as `.ipFragment`) where it lies in
    /// `data`, for `IPFragmentReassembler`.
    public static func decode(linkType: Int32, data: UnsafeRawBufferPointer, fragment: inout IPFragment?) -> PacketDecodeResult {
        var reader = Reader(data: data)
        // (Only when there is one: copying the reader's nil over `fragment` for every packet cost
        // as much as decoding the TCP header.)
        defer { if reader.fragment != nil { fragment = reader.fragment } }
        switch linkType {
        case PcapLinkType.ethernet:
            guard data.count >= 14 else { return .skipped(.truncatedLinkHeader) }
            return reader.etherType(reader.u16(12), at: 14)
        case PcapLinkType.linuxSLL:
            guard data.count >= 16 else { return .skipped(.truncatedLinkHeader) }
            return reader.etherType(reader.u16(14), at: 16)
        case PcapLinkType.linuxSLL2:
            guard data.count >= 20 else { return .skipped(.truncatedLinkHeader) }
            return reader.etherType(reader.u16(0), at: 20)
        case PcapLinkType.null, PcapLinkType.loop:
            guard data.count >= 4 else { return .skipped(.truncatedLinkHeader) }
            // The family is in the capturing host's byte order (DLT_NULL) or big-endian (DLT_LOOP); families
            // are small numbers, so whichever reading fits in 16 bits is the right one.
            var family = UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 | UInt32(data[3]) << 24
            if family > 0xFFFF { family = family.byteSwapped }
            switch family {
            case 2: return reader.ipv4(at: 4)
            // AF_INET6 is 10 on Linux, 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on Darwin.
            case 10, 24, 28, 30: return reader.ipv6(at: 4)
            default: return .skipped(.notIP)
            }
        case PcapLinkType.raw, PcapLinkType.rawOpenBSD, PcapLinkType.linktypeRaw:
            guard data.count >= 1 else { return .skipped(.malformedIPHeader) }
            switch data[0] >> 4 {
            case 4: return reader.ipv4(at: 0)
            case 6: return reader.ipv6(at: 0)
            default: return .skipped(.notIP)
            }
        case PcapLinkType.ipv4:
            return reader.ipv4(at: 0)
        case PcapLinkType.ipv6:
            return reader.ipv6(at: 0)
        default:
            return .skipped(.unsupportedLinkType)
        }
    }

    /// Decodes one packet held in an array; `payloadRange` indexes `data`.
    public static func decode(linkType: Int32, data: [UInt8]) -> PacketDecodeResult {
        data.withUnsafeBytes { decode(linkType: linkType, data: $0) }
    }
}

private struct Reader {
    let data: UnsafeRawBufferPointer
    var vlanID: UInt16?
    var fragment: IPFragment?

    init(data: UnsafeRawBufferPointer) {
        self.data = data
    }

    func u16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: data.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: data.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) -> UInt64 {
        UInt64(u32(offset)) << 32 | UInt64(u32(offset + 4))
    }

    /// Dispatches on an EtherType whose payload starts at `offset`, unwrapping VLAN tags first.
    @inline(__always)
    mutating func etherType(_ type: UInt16, at offset: Int) -> PacketDecodeResult {
        var type = type
        var offset = offset
        // IEEE 802.1Q (0x8100), 802.1ad (0x88A8) and the pre-standard QinQ 0x9100: a 2-byte TCI (VLAN ID in
        // the low 12 bits), then the next EtherType.
        while true {
            if type == 0x8100 || type == 0x88A8 || type == 0x9100 {
                guard data.count >= offset + 4 else { return .skipped(.truncatedLinkHeader) }
                vlanID = u16(offset) & 0x0FFF
                type = u16(offset + 2)
                offset += 4
            } else if type <= 1500, data.count >= offset + 8, data[offset] == 0xAA, data[offset + 1] == 0xAA, data[offset + 2] == 0x03,
                      data[offset + 3] == 0, data[offset + 4] == 0, data[offset + 5] == 0
            {
                // IEEE 802.3 with an 802.2 LLC/SNAP header (RFC 1042): a length where the EtherType
                // would be, then AA AA 03, OUI 00 00 00 and the EtherType.
                type = u16(offset + 6)
                offset += 8
            } else {
                break
            }
        }
        switch type {
        case 0x0800: return ipv4(at: offset)
        case 0x86DD: return ipv6(at: offset)
        default: return .skipped(.notIP)
        }
    }

    /// RFC 791 §3.1.
    @inline(__always)
    mutating func ipv4(at o: Int) -> PacketDecodeResult {
        guard data.count >= o + 20, data[o] >> 4 == 4 else { return .skipped(.malformedIPHeader) }
        let headerLength = Int(data[o] & 0x0F) * 4
        guard headerLength >= 20, data.count >= o + headerLength else { return .skipped(.malformedIPHeader) }
        var totalLength = Int(u16(o + 2))
        // A total length of 0 is what segmentation offload leaves in packets captured on the sending host;
        // the captured bytes are then the packet.
        if totalLength == 0 { totalLength = data.count - o }
        guard totalLength >= headerLength else { return .skipped(.malformedIPHeader) }
        let fragment = u16(o + 6)
        // More Fragments set, or a non-zero fragment offset.
        guard fragment & 0x3FFF == 0 else {
            let end = min(o + totalLength, data.count)
            if end >= o + headerLength {
                self.fragment = IPFragment(
                    datagram: .v4(source: u32(o + 12), destination: u32(o + 16), identification: u16(o + 4), protocolNumber: data[o + 9]),
                    offset: Int(fragment & 0x1FFF) * 8, moreFragments: fragment & 0x2000 != 0,
                    header: o..<(o + headerLength), payload: (o + headerLength)..<end,
                    complete: end == o + totalLength)
            }
            return .skipped(.ipFragment)
        }
        var t = o + headerLength
        var next = data[o + 9]
        // An Authentication Header (RFC 4302 §2: its length in 32-bit words, less 2) signs TCP
        // without hiding it.
        if next == 51 {
            guard data.count >= t + 2 else { return .skipped(.malformedIPHeader) }
            next = data[t]
            t += (Int(data[t + 1]) + 2) * 4
            guard t <= o + totalLength else { return .skipped(.malformedIPHeader) }
        }
        guard next == 6 else { return .skipped(.notTCP) }
        return tcp(
            at: t, end: o + totalLength, version: .v4,
            source: .v4(u32(o + 12)), destination: .v4(u32(o + 16)))
    }

    /// RFC 8200 §3 and §4: the fixed header, then the extension headers up to TCP.
    mutating func ipv6(at o: Int) -> PacketDecodeResult {
        guard data.count >= o + 40, data[o] >> 4 == 6 else { return .skipped(.malformedIPHeader) }
        let payloadLength = Int(u16(o + 4))
        // 0 means a jumbogram (RFC 2675) or a segmentation-offload packet from the sending host; either way
        // the captured bytes are the packet.
        let end = payloadLength == 0 ? data.count : o + 40 + payloadLength
        let source = IPAddress.v6(high: u64(o + 8), low: u64(o + 16))
        let destination = IPAddress.v6(high: u64(o + 24), low: u64(o + 32))
        var next = data[o + 6]
        // Where the field holding `next` lies (rewritten when fragments are put back together).
        var nextAt = o + 6
        var p = o + 40
        let available = min(end, data.count)
        for _ in 0..<16 {
            switch next {
            case 6:
                return tcp(at: p, end: end, version: .v6, source: source, destination: destination)
            case 0, 43, 60, 135, 139, 140:
                // Hop-by-Hop, Routing, Destination Options, Mobility, HIP, Shim6: length in 8-octet units
                // beyond the first 8 (RFC 8200 §4.3 and §4.8).
                guard available >= p + 2 else { return .skipped(.malformedIPHeader) }
                next = data[p]
                nextAt = p
                p += (Int(data[p + 1]) + 1) * 8
            case 44:
                // Fragment header (RFC 8200 §4.5). An atomic fragment (offset 0, M clear, RFC 6946) is a whole
                // packet; anything else is a piece, whose fragmentable part (what follows this header)
                // the reassembler puts together behind the first fragment's headers up to here.
                guard available >= p + 8 else { return .skipped(.malformedIPHeader) }
                let field = u16(p + 2)
                guard field & 0xFFF9 == 0 else {
                    guard end >= p + 8 else { return .skipped(.malformedIPHeader) }
                    fragment = IPFragment(
                        datagram: .v6(source: source, destination: destination, identification: u32(p + 4)),
                        offset: Int(field >> 3) * 8, moreFragments: field & 1 != 0,
                        header: o..<p, nextHeader: (at: nextAt, value: data[p]),
                        payload: (p + 8)..<available, complete: available == end)
                    return .skipped(.ipFragment)
                }
                next = data[p]
                nextAt = p
                p += 8
            case 51:
                // Authentication Header: length in 4-octet units minus 2 (RFC 4302 §2.2).
                guard available >= p + 2 else { return .skipped(.malformedIPHeader) }
                next = data[p]
                nextAt = p
                p += (Int(data[p + 1]) + 2) * 4
            case 50:
                // ESP encrypts what follows.
                return .skipped(.unsupportedIPv6Header)
            default:
                // 59 No Next Header, UDP, ICMPv6, …
                return .skipped(.notTCP)
            }
            guard p <= end else { return .skipped(.malformedIPHeader) }
        }
        return .skipped(.unsupportedIPv6Header)
    }

    /// RFC 9293 §3.1. `end` is where the IP header says the packet ends, which may lie beyond the captured
    /// bytes (snapshot length) and before them (Ethernet padding).
    @inline(__always)
    func tcp(at t: Int, end: Int, version: IPVersion, source: IPAddress, destination: IPAddress) -> PacketDecodeResult {
        let capturedEnd = min(end, data.count)
        guard capturedEnd >= t + 20 else { return .skipped(.malformedTCPHeader) }
        let headerLength = Int(data[t + 12] >> 4) * 4
        guard headerLength >= 20, capturedEnd >= t + headerLength else { return .skipped(.malformedTCPHeader) }
        let payloadStart = t + headerLength
        return .tcp(
            DecodedPacket(
                ipVersion: version, source: source, destination: destination,
                sourcePort: u16(t), destinationPort: u16(t + 2),
                sequenceNumber: u32(t + 4), acknowledgmentNumber: u32(t + 8),
                flags: TCPFlags(rawValue: UInt16(data[t + 12] & 0x01) << 8 | UInt16(data[t + 13])),
                window: u16(t + 14),
                payloadRange: payloadStart..<capturedEnd,
                uncapturedPayloadLength: end - capturedEnd,
                vlanID: vlanID))
    }
}
