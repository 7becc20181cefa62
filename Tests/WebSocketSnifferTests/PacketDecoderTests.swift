import Testing
import WebSocketSniffer

/// One link-layer framing of the same TCP segment.
struct LinkSample: Sendable, CustomTestStringConvertible {
    var name: String
    var linkType: Int32
    var bytes: [UInt8]
    var vlanID: UInt16?
    var testDescription: String { name }
}

@Suite("PacketDecoder")
struct PacketDecoderTests {
    static let payload = Array("GET /chat HTTP/1.1\r\n".utf8)
    static let v4 = Build.ip(from: Build.client4, to: Build.server4, seq: 1000, ack: 2000, flags: [.psh, .ack], payload: payload)
    static let v6 = Build.ip(from: Build.client6, to: Build.server6, seq: 1000, ack: 2000, flags: [.psh, .ack], payload: payload)

    static let linkSamples: [LinkSample] = [
        LinkSample(name: "Ethernet IPv4", linkType: 1, bytes: Build.ethernet(v4)),
        LinkSample(name: "Ethernet IPv6", linkType: 1, bytes: Build.ethernet(v6)),
        LinkSample(name: "802.1Q", linkType: 1, bytes: Build.ethernet(v4, vlans: [(0x8100, 42)]), vlanID: 42),
        LinkSample(name: "802.1ad QinQ", linkType: 1, bytes: Build.ethernet(v6, vlans: [(0x88A8, 100), (0x8100, 7)]), vlanID: 7),
        LinkSample(name: "Linux cooked v1 IPv4", linkType: 113, bytes: Build.sll(v4)),
        LinkSample(name: "Linux cooked v1 IPv6", linkType: 113, bytes: Build.sll(v6)),
        LinkSample(name: "Linux cooked v1 with a VLAN tag", linkType: 113,
                   bytes: Build.sll(Build.be16(0x0005) + Build.be16(0x0800) + v4, type: 0x8100), vlanID: 5),
        LinkSample(name: "Linux cooked v2 IPv4", linkType: 276, bytes: Build.sll2(v4)),
        LinkSample(name: "Linux cooked v2 IPv6", linkType: 276, bytes: Build.sll2(v6)),
        LinkSample(name: "NULL little-endian AF_INET", linkType: 0, bytes: Build.null(v4, family: 2, bigEndian: false)),
        LinkSample(name: "NULL big-endian AF_INET", linkType: 0, bytes: Build.null(v4, family: 2, bigEndian: true)),
        LinkSample(name: "NULL AF_INET6 (BSD 24)", linkType: 0, bytes: Build.null(v6, family: 24, bigEndian: false)),
        LinkSample(name: "NULL AF_INET6 (FreeBSD 28)", linkType: 0, bytes: Build.null(v6, family: 28, bigEndian: true)),
        LinkSample(name: "NULL AF_INET6 (Darwin 30)", linkType: 0, bytes: Build.null(v6, family: 30, bigEndian: false)),
        LinkSample(name: "LOOP big-endian AF_INET", linkType: 108, bytes: Build.null(v4, family: 2, bigEndian: true)),
        LinkSample(name: "LOOP little-endian AF_INET6", linkType: 108, bytes: Build.null(v6, family: 10, bigEndian: false)),
        LinkSample(name: "RAW (12) IPv4", linkType: 12, bytes: v4),
        LinkSample(name: "RAW (12) IPv6", linkType: 12, bytes: v6),
        LinkSample(name: "RAW (14, OpenBSD) IPv4", linkType: 14, bytes: v4),
        LinkSample(name: "LINKTYPE_RAW (101) IPv6", linkType: 101, bytes: v6),
        LinkSample(name: "IPV4 (228)", linkType: 228, bytes: v4),
        LinkSample(name: "IPV6 (229)", linkType: 229, bytes: v6),
    ]

    @Test(arguments: linkSamples)
    func everyLinkType(_ sample: LinkSample) throws {
        let packet = try #require(PacketDecoder.decode(linkType: sample.linkType, data: sample.bytes).packet)
        let isV6 = packet.ipVersion == .v6
        #expect(packet.sourceEndpoint == (isV6 ? Build.client6 : Build.client4))
        #expect(packet.destinationEndpoint == (isV6 ? Build.server6 : Build.server4))
        #expect(packet.sequenceNumber == 1000)
        #expect(packet.acknowledgmentNumber == 2000)
        #expect(packet.flags == [.psh, .ack])
        #expect(packet.window == 65_535)
        #expect(Array(sample.bytes[packet.payloadRange]) == Self.payload)
        #expect(packet.uncapturedPayloadLength == 0)
        #expect(packet.vlanID == sample.vlanID)
    }

    /// The loopback packet from the hex-dump tests, captured on Linux: IPv4, TCP with timestamps, carrying
    /// the RFC 6455 §5.7 masked "Hello" frame.
    @Test func realLoopbackPacket() throws {
        let hex = "4500003f1c464000400620717f0000017f000001d4311f90000f4241001e848180180200bc3500000101080a0000000b00000008"
            + "8185" + "37fa213d7f9f4d5158"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        let packet = try #require(PacketDecoder.decode(linkType: 228, data: bytes).packet)
        #expect(packet.source.description == "127.0.0.1")
        #expect(packet.sourcePort == 54321)
        #expect(packet.destinationPort == 8080)
        #expect(packet.sequenceNumber == 1_000_001)
        #expect(packet.acknowledgmentNumber == 2_000_001)
        #expect(packet.flags == [.psh, .ack])
        #expect(packet.window == 512)
        #expect(packet.payloadRange == 52..<63)
        #expect(bytes[packet.payloadRange].first == 0x81)
    }

    @Test func ipv4OptionsAreSkipped() throws {
        let segment = Build.tcp(from: Build.client4, to: Build.server4, seq: 1, flags: .ack, payload: [7, 8, 9])
        let ip = Build.ipv4(from: Build.client4.address, to: Build.server4.address, payload: segment,
                            options: [0x94, 0x04, 0, 0, 1, 1, 1, 0])  // Router Alert, NOPs, EOL
        let packet = try #require(PacketDecoder.decode(linkType: 1, data: Build.ethernet(ip)).packet)
        #expect(Array(Build.ethernet(ip)[packet.payloadRange]) == [7, 8, 9])
    }

    @Test func tcpOptionsAreSkipped() throws {
        let options: [UInt8] = [0x02, 0x04, 0x05, 0xB4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02, 0x00, 0x00]  // MSS, NOP, WS, SACK-permitted
        let ip = Build.ip(from: Build.client4, to: Build.server4, seq: 1, flags: .syn, payload: [], options: options)
        let packet = try #require(PacketDecoder.decode(linkType: 228, data: ip).packet)
        #expect(packet.payloadRange == ip.count..<ip.count)
        #expect(packet.flags == .syn)
    }

    /// Ethernet pads short frames to 60 bytes; the padding is not TCP payload.
    @Test func ethernetPaddingIsNotPayload() throws {
        let ip = Build.ip(from: Build.client4, to: Build.server4, seq: 1, flags: .ack, payload: [0x41])
        let frame = Build.ethernet(ip)
        #expect(frame.count == 60)
        let packet = try #require(PacketDecoder.decode(linkType: 1, data: frame).packet)
        #expect(packet.payloadRange.count == 1)
        #expect(frame[packet.payloadRange.lowerBound] == 0x41)
    }

    /// The snapshot length cut the payload: the rest is reported as uncaptured.
    @Test func snapshotCutPayload() throws {
        let frame = Build.ethernet(Build.ip(from: Build.client4, to: Build.server4, seq: 1, flags: .ack, payload: Build.pattern(500)))
        let cut = Array(frame.prefix(14 + 20 + 20 + 100))
        let packet = try #require(PacketDecoder.decode(linkType: 1, data: cut).packet)
        #expect(packet.payloadRange.count == 100)
        #expect(packet.uncapturedPayloadLength == 400)
        #expect(packet.payloadLength == 500)
    }

    /// Segmentation offload leaves a total length of 0 in packets captured on the sender.
    @Test func offloadedZeroTotalLength() throws {
        let segment = Build.tcp(from: Build.client4, to: Build.server4, seq: 1, flags: .ack, payload: Build.pattern(3000))
        let ip = Build.ipv4(from: Build.client4.address, to: Build.server4.address, payload: segment, totalLength: 0)
        let packet = try #require(PacketDecoder.decode(linkType: 228, data: ip).packet)
        #expect(packet.payloadRange.count == 3000)
    }

    @Test func ipv4FragmentsAreSkipped() {
        let segment = Build.tcp(from: Build.client4, to: Build.server4, seq: 1, flags: .ack, payload: Build.pattern(64))
        let first = Build.ipv4(from: Build.client4.address, to: Build.server4.address, payload: segment, moreFragments: true)
        let later = Build.ipv4(from: Build.client4.address, to: Build.server4.address, payload: Array(segment.prefix(40)), fragmentOffset: 185)
        #expect(PacketDecoder.decode(linkType: 228, data: first) == .skipped(.ipFragment))
        #expect(PacketDecoder.decode(linkType: 228, data: later) == .skipped(.ipFragment))
    }

    @Test func ipv6ExtensionHeadersAreWalked() throws {
        let segment = Build.tcp(from: Build.client6, to: Build.server6, seq: 5, flags: .ack, payload: [1, 2, 3, 4])
        let ip = Build.ipv6(
            from: Build.client6.address, to: Build.server6.address,
            extensions: [Build.optionsHeader(type: 0), Build.optionsHeader(type: 43, units: 2), Build.fragmentHeader(offset: 0, more: false),
                         Build.optionsHeader(type: 60, units: 1)],
            payload: segment)
        let packet = try #require(PacketDecoder.decode(linkType: 229, data: ip).packet)
        #expect(packet.sequenceNumber == 5)
        #expect(Array(ip[packet.payloadRange]) == [1, 2, 3, 4])
    }

    @Test func ipv6AuthenticationHeaderIsWalked() throws {
        let segment = Build.tcp(from: Build.client6, to: Build.server6, seq: 5, flags: .ack, payload: [1])
        // AH with a 12-byte ICV: length field (24 / 4) - 2 = 4.
        let ah: (type: UInt8, bytes: [UInt8]) = (51, [0, 4, 0, 0] + Build.be32(0x100) + Build.be32(1) + [UInt8](repeating: 0xAA, count: 12))
        let ip = Build.ipv6(from: Build.client6.address, to: Build.server6.address, extensions: [ah], payload: segment)
        let packet = try #require(PacketDecoder.decode(linkType: 229, data: ip).packet)
        #expect(Array(ip[packet.payloadRange]) == [1])
    }

    /// IPv4 with an Authentication Header before TCP (RFC 4302 §3.1.1), as tshark decodes it.
    @Test func ipv4AuthenticationHeaderIsWalked() throws {
        let segment = Build.tcp(from: Build.client4, to: Build.server4, seq: 5, flags: .ack, payload: [1, 2])
        let ah: [UInt8] = [6, 4, 0, 0] + Build.be32(0x100) + Build.be32(1) + [UInt8](repeating: 0xAA, count: 12)
        let frame = Build.ethernet(Build.ipv4(from: Build.client4.address, to: Build.server4.address, protocol: 51, payload: ah + segment))
        let packet = try #require(PacketDecoder.decode(linkType: 1, data: frame).packet)
        #expect(Array(frame[packet.payloadRange]) == [1, 2])
        // An AH that claims to run past the packet.
        var bad = ah
        bad[1] = 200
        let broken = Build.ethernet(Build.ipv4(from: Build.client4.address, to: Build.server4.address, protocol: 51, payload: bad + segment))
        #expect(PacketDecoder.decode(linkType: 1, data: broken).packet == nil)
    }

    /// IEEE 802.3 frames with an LLC/SNAP header (RFC 1042) carrying IP.
    @Test func llcSnapIsUnwrapped() throws {
        let ip = Build.ip(from: Build.client4, to: Build.server4, seq: 1, flags: .ack, payload: [0x41, 0x42])
        let snap: [UInt8] = [0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00]
        let frame = Build.ethernet(snap + ip, type: UInt16(snap.count + ip.count))
        let packet = try #require(PacketDecoder.decode(linkType: 1, data: frame).packet)
        #expect(Array(frame[packet.payloadRange]) == [0x41, 0x42])
        // Another LLC (spanning tree's 42 42 03) is not IP.
        let stp = Build.ethernet([0x42, 0x42, 0x03, 0, 0, 0, 0, 0] + ip, type: UInt16(8 + ip.count))
        #expect(PacketDecoder.decode(linkType: 1, data: stp).packet == nil)
    }

    @Test func ipv6SkipReasons() {
        let segment = Build.tcp(from: Build.client6, to: Build.server6, seq: 5, flags: .ack, payload: [1])
        let fragment = Build.ipv6(from: Build.client6.address, to: Build.server6.address,
                                  extensions: [Build.fragmentHeader(offset: 0, more: true)], payload: segment)
        let laterFragment = Build.ipv6(from: Build.client6.address, to: Build.server6.address,
                                       extensions: [Build.fragmentHeader(offset: 10, more: false)], payload: segment)
        let esp = Build.ipv6(from: Build.client6.address, to: Build.server6.address, finalHeader: 50, payload: [0, 0, 1, 0, 0, 0, 0, 1])
        let udp = Build.ipv6(from: Build.client6.address, to: Build.server6.address, finalHeader: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0])
        let noNext = Build.ipv6(from: Build.client6.address, to: Build.server6.address, finalHeader: 59, payload: [])
        #expect(PacketDecoder.decode(linkType: 229, data: fragment) == .skipped(.ipFragment))
        #expect(PacketDecoder.decode(linkType: 229, data: laterFragment) == .skipped(.ipFragment))
        #expect(PacketDecoder.decode(linkType: 229, data: esp) == .skipped(.unsupportedIPv6Header))
        #expect(PacketDecoder.decode(linkType: 229, data: udp) == .skipped(.notTCP))
        #expect(PacketDecoder.decode(linkType: 229, data: noNext) == .skipped(.notTCP))
    }

    @Test func skipReasons() {
        let ip = Self.v4
        let udp = Build.ipv4(from: Build.client4.address, to: Build.server4.address, protocol: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0])
        var badOffset = ip
        badOffset[20 + 12] = 0x40  // TCP data offset 4 words
        var badVersion = ip
        badVersion[0] = 0x55
        let arp = Build.ethernet([0, 1, 8, 0, 6, 4, 0, 1] + [UInt8](repeating: 0, count: 20), type: 0x0806)
        let cases: [(Int32, [UInt8], PacketSkipReason)] = [
            (105, ip, .unsupportedLinkType),  // 802.11
            (1, Array(Build.ethernet(ip).prefix(13)), .truncatedLinkHeader),
            (1, Array(Build.ethernet(ip, vlans: [(0x8100, 1)]).prefix(16)), .truncatedLinkHeader),
            (113, Array(Build.sll(ip).prefix(15)), .truncatedLinkHeader),
            (276, Array(Build.sll2(ip).prefix(19)), .truncatedLinkHeader),
            (0, [2, 0], .truncatedLinkHeader),
            (0, Build.null(ip, family: 7, bigEndian: false), .notIP),
            (1, arp, .notIP),
            (12, [0x10] + ip.dropFirst(), .notIP),
            (228, Array(ip.prefix(19)), .malformedIPHeader),
            (228, badVersion, .malformedIPHeader),
            (229, Array(Self.v6.prefix(39)), .malformedIPHeader),
            (228, udp, .notTCP),
            (228, Array(ip.prefix(20 + 19)), .malformedTCPHeader),
            (228, badOffset, .malformedTCPHeader),
        ]
        for (linkType, bytes, reason) in cases {
            #expect(PacketDecoder.decode(linkType: linkType, data: bytes) == .skipped(reason), "expected \(reason)")
        }
    }

    /// No input crashes the decoder: every prefix of every sample, and random bytes.
    @Test func everyPrefixIsHandled() {
        var seed: UInt64 = 0x1234_5678
        func random() -> UInt8 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: seed >> 33)
        }
        var decoded = 0
        for sample in Self.linkSamples {
            for length in 0...sample.bytes.count {
                if case .tcp(let p) = PacketDecoder.decode(linkType: sample.linkType, data: Array(sample.bytes.prefix(length))) {
                    #expect(p.payloadRange.upperBound <= length)
                    decoded += 1
                }
            }
            for _ in 0..<50 {
                var bytes = sample.bytes
                bytes[Int(random()) % bytes.count] = random()
                _ = PacketDecoder.decode(linkType: sample.linkType, data: bytes)
            }
        }
        #expect(decoded > Self.linkSamples.count)
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),  // RFC 5952 §4.2.3: first longest run
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // §4.2.2: a single zero group stays
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::", "::"),
        ("fe80::", "fe80::"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("2001:DB8::A", "2001:db8::a"),
    ])
    func addressText(_ input: String, _ canonical: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.256", "1.2.3.4.5", "::1::", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7"])
    func invalidAddressText(_ input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func endpointsAndFlags() {
        #expect(Build.client4.description == "192.0.2.10:50000")
        #expect(Build.server6.description == "[2001:db8::20]:443")
        #expect(TCPFlags([.syn, .ack]).description == "S.")
        #expect(TCPFlags([.fin, .psh, .ack]).description == "FP.")
    }
}
