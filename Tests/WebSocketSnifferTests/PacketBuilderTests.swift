import Testing
import WebSocketSniffer

/// Builds link-layer, IP and TCP bytes for tests, with real checksums, independently of the decoder.
enum Build {
    /// The Internet checksum (RFC 1071) of `bytes`, starting from a partial sum.
    static func checksum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        var sum = initial
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func le32(_ v: UInt32) -> [UInt8] { be32(v).reversed() }

    /// A TCP header plus payload, with its checksum over the IPv4 or IPv6 pseudo-header.
    static func tcp(
        from source: TCPEndpoint, to destination: TCPEndpoint, seq: UInt32, ack: UInt32 = 0, flags: TCPFlags,
        window: UInt16 = 65_535, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let dataOffset = UInt8(5 + options.count / 4)
        var header = be16(source.port) + be16(destination.port) + be32(seq) + be32(ack)
        header += [dataOffset << 4 | UInt8(flags.rawValue >> 8), UInt8(flags.rawValue & 0xFF)]
        header += be16(window) + [0, 0] + [0, 0] + options
        let segment = header + payload
        var pseudo = source.address.bytes + destination.address.bytes
        if case .v4 = source.address {
            pseudo += [0, 6] + be16(UInt16(segment.count))
        } else {
            pseudo += be32(UInt32(segment.count)) + [0, 0, 0, 6]
        }
        let sum = checksum(pseudo + segment)
        var out = segment
        out[16] = UInt8(sum >> 8)
        out[17] = UInt8(sum & 0xFF)
        return out
    }

    /// An IPv4 header (with `options`, padded to 4 bytes) and payload.
    static func ipv4(
        from source: IPAddress, to destination: IPAddress, protocol proto: UInt8 = 6, payload: [UInt8],
        id: UInt16 = 0x1234, moreFragments: Bool = false, fragmentOffset: UInt16 = 0, options: [UInt8] = [],
        totalLength: UInt16? = nil
    ) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let headerLength = 20 + options.count
        let flags: UInt16 = (moreFragments ? 0x2000 : 0x4000) | fragmentOffset
        var header: [UInt8] = [0x40 | UInt8(headerLength / 4), 0]
        header += be16(totalLength ?? UInt16(headerLength + payload.count)) + be16(id) + be16(flags)
        header += [64, proto, 0, 0] + source.bytes + destination.bytes + options
        let sum = checksum(header)
        header[10] = UInt8(sum >> 8)
        header[11] = UInt8(sum & 0xFF)
        return header + payload
    }

    /// An IPv6 header, extension headers given as (type, bytes) in order, and payload.
    static func ipv6(
        from source: IPAddress, to destination: IPAddress, extensions: [(type: UInt8, bytes: [UInt8])] = [],
        finalHeader: UInt8 = 6, payload: [UInt8], payloadLength: UInt16? = nil
    ) -> [UInt8] {
        var chain: [UInt8] = []
        for (index, ext) in extensions.enumerated() {
            let next = index + 1 < extensions.count ? extensions[index + 1].type : finalHeader
            chain += [next] + ext.bytes.dropFirst()
        }
        let first = extensions.first?.type ?? finalHeader
        let body = chain + payload
        return [0x60, 0, 0, 0] + be16(payloadLength ?? UInt16(body.count)) + [first, 64] + source.bytes + destination.bytes + body
    }

    /// An IPv6 extension header of the Hop-by-Hop / Destination Options / Routing shape, `units` × 8 bytes
    /// beyond the first 8. The first byte (next header) is filled in by `ipv6`.
    static func optionsHeader(type: UInt8, units: UInt8 = 0) -> (type: UInt8, bytes: [UInt8]) {
        let total = (Int(units) + 1) * 8
        if type == 43 { return (type, [0, units] + [UInt8](repeating: 0, count: total - 2)) }
        // A PadN option fills the header, so it is well formed (RFC 8200 §4.2).
        return (type, [0, units, 1, UInt8(total - 4)] + [UInt8](repeating: 0, count: total - 4))
    }

    /// An IPv6 Fragment header.
    static func fragmentHeader(offset: UInt16, more: Bool) -> (type: UInt8, bytes: [UInt8]) {
        (44, [0, 0] + be16(offset << 3 | (more ? 1 : 0)) + be32(0xABCD))
    }

    /// IPv4 or IPv6 (by the addresses) carrying a TCP segment.
    static func ip(
        from source: TCPEndpoint, to destination: TCPEndpoint, seq: UInt32, ack: UInt32 = 0, flags: TCPFlags,
        payload: [UInt8] = [], options: [UInt8] = []
    ) -> [UInt8] {
        let segment = tcp(from: source, to: destination, seq: seq, ack: ack, flags: flags, options: options, payload: payload)
        switch source.address {
        case .v4: return ipv4(from: source.address, to: destination.address, payload: segment)
        case .v6: return ipv6(from: source.address, to: destination.address, payload: segment)
        }
    }

    static func etherType(of packet: [UInt8]) -> UInt16 { packet[0] >> 4 == 6 ? 0x86DD : 0x0800 }

    /// An Ethernet frame; `vlans` are (TPID, VLAN ID) tags, outermost first. Padded to 60 bytes like a real
    /// frame on the wire.
    static func ethernet(_ payload: [UInt8], type: UInt16? = nil, vlans: [(tpid: UInt16, id: UInt16)] = [], pad: Bool = true) -> [UInt8] {
        var frame: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
        for tag in vlans { frame += be16(tag.tpid) + be16(0x2000 | tag.id) }
        frame += be16(type ?? etherType(of: payload)) + payload
        if pad, frame.count < 60 { frame += [UInt8](repeating: 0, count: 60 - frame.count) }
        return frame
    }

    /// Linux cooked capture v1: packet type, ARPHRD_ETHER, address length and address, protocol.
    static func sll(_ payload: [UInt8], type: UInt16? = nil) -> [UInt8] {
        [0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0] + be16(type ?? etherType(of: payload)) + payload
    }

    /// Linux cooked capture v2: protocol, reserved, interface index, ARPHRD_ETHER, packet type, address.
    static func sll2(_ payload: [UInt8], type: UInt16? = nil) -> [UInt8] {
        be16(type ?? etherType(of: payload)) + [0, 0] + be32(1) + [0, 1, 4, 6] + [0x02, 0, 0, 0, 0, 0x01, 0, 0] + payload
    }

    /// BSD loopback: the address family as 4 bytes, little- or big-endian.
    static func null(_ payload: [UInt8], family: UInt32, bigEndian: Bool) -> [UInt8] {
        (bigEndian ? be32(family) : le32(family)) + payload
    }

    /// Test endpoints.
    static let client4 = TCPEndpoint(address: IPAddress("192.0.2.10")!, port: 50_000)
    static let server4 = TCPEndpoint(address: IPAddress("198.51.100.20")!, port: 8080)
    static let client6 = TCPEndpoint(address: IPAddress("2001:db8::10")!, port: 50_001)
    static let server6 = TCPEndpoint(address: IPAddress("2001:db8::20")!, port: 443)

    /// A repeatable byte pattern.
    static func pattern(_ count: Int, _ k: Int = 5) -> [UInt8] {
        (0..<count).map { UInt8(($0 * k + 3) % 251) }
    }
}

@Suite("Packet builders")
struct PacketBuilderTests {
    /// RFC 1071 §3's example: the one's-complement sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
    @Test func checksumMatchesRFC1071Example() {
        #expect(Build.checksum([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]) == ~UInt16(0xDDF2))
    }

    /// A header with its checksum filled in sums to zero, which is how receivers verify it.
    @Test func builtChecksumsVerify() {
        let ip = Build.ipv4(from: Build.client4.address, to: Build.server4.address, payload: [1, 2, 3], options: [1, 1, 1, 0])
        #expect(Build.checksum(Array(ip[0..<24])) == 0)
        let segment = Build.tcp(from: Build.client6, to: Build.server6, seq: 7, flags: [.psh, .ack], payload: [9, 9, 9])
        let pseudo = Build.client6.address.bytes + Build.server6.address.bytes + Build.be32(UInt32(segment.count)) + [0, 0, 0, 6]
        #expect(Build.checksum(pseudo + segment) == 0)
    }
}
