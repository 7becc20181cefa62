import Foundation
import Testing
import WebSocketSniffer

/// A temporary file removed when the value is released.
final class TemporaryFile {
    let path: String

    init(_ name: String = "capture.pcap") {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-sniffer-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent(name).path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }

    var bytes: [UInt8] { (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? [] }

    func write(_ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

/// A packet as read back, copied.
struct ReadPacket: Equatable {
    var number: Int
    var seconds: Int64
    var nanoseconds: Int32
    var wireLength: Int
    var bytes: [UInt8]
}

/// pcapng blocks (little-endian) for tests that build files by hand.
enum Pcapng {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }

    /// A block: type, total length, the body padded to 4 bytes, the total length again.
    static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let length = UInt32(12 + padded.count)
        return Build.le32(type) + Build.le32(length) + padded + Build.le32(length)
    }

    /// A section header block and one Ethernet interface (snapshot length 262,144).
    static let header = block(0x0A0D_0D0A, Build.le32(0x1A2B_3C4D) + le16(1) + le16(0) + [UInt8](repeating: 0xFF, count: 8))
        + block(1, le16(1) + le16(0) + Build.le32(262_144))

    /// An enhanced packet block on interface 0, captured whole, at `micros` microseconds.
    static func packet(_ data: [UInt8], micros: UInt64) -> [UInt8] {
        block(6, Build.le32(0) + timestamp(micros) + Build.le32(UInt32(data.count)) + Build.le32(UInt32(data.count)) + data)
    }

    /// An interface statistics block for interface 0 (no options).
    static func statistics(micros: UInt64) -> [UInt8] { block(5, Build.le32(0) + timestamp(micros)) }

    private static func timestamp(_ micros: UInt64) -> [UInt8] {
        Build.le32(UInt32(micros >> 32)) + Build.le32(UInt32(micros & 0xFFFF_FFFF))
    }
}

enum Capture {
    /// Writes packets with consecutive timestamps.
    static func write(_ packets: [[UInt8]], linkType: Int32, to file: TemporaryFile, start: Int64 = 1_700_000_000) throws {
        let writer = try PcapWriter(path: file.path, linkType: linkType)
        for (index, packet) in packets.enumerated() {
            try writer.write(packet, seconds: start + Int64(index), nanoseconds: Int32(index) * 1_000_001)
        }
        try writer.close()
    }

    /// Reads every packet, and the error that stopped the read if any.
    static func readAll(_ source: PcapSource) -> (packets: [ReadPacket], error: PcapError?) {
        var packets: [ReadPacket] = []
        do {
            while let packet = try source.next() {
                packets.append(ReadPacket(
                    number: packet.number, seconds: packet.seconds, nanoseconds: packet.nanoseconds,
                    wireLength: packet.wireLength, bytes: packet.bytes))
            }
        } catch let error as PcapError {
            return (packets, error)
        } catch {
            Issue.record("unexpected error \(error)")
        }
        return (packets, nil)
    }

    /// Decodes and reassembles a capture, the way the sniffer will.
    static func reassemble(_ source: PcapSource) throws -> (harness: [Recorded], skipped: [PacketSkipReason: Int]) {
        var reassembler = TCPReassembler()
        var events: [Recorded] = []
        var skipped: [PacketSkipReason: Int] = [:]
        var last = 0.0
        while let packet = try source.next() {
            last = packet.time
            switch PacketDecoder.decode(linkType: source.linkType, data: packet.data) {
            case .tcp(let decoded):
                reassembler.process(decoded, packetData: packet.data, time: packet.time, packetNumber: packet.number) {
                    events.append(Harness.record($0))
                }
            case .skipped(let reason):
                skipped[reason, default: 0] += 1
            }
        }
        reassembler.finish(time: last) { events.append(Harness.record($0)) }
        return (events, skipped)
    }

    static func stream(_ events: [Recorded], _ direction: TCPDirection, flow: UInt64 = 1) -> [UInt8] {
        var harness = Harness()
        harness.events = events
        return harness.stream(flow, direction)
    }

    /// A whole conversation between `client` and `server`: handshake, request, response, FINs.
    static func conversation(client: TCPEndpoint, server: TCPEndpoint, request: [UInt8], response: [UInt8]) -> [[UInt8]] {
        let c: UInt32 = 0xFFFF_FF00
        let s: UInt32 = 7000
        let req = UInt32(request.count)
        let res = UInt32(response.count)
        return [
            Build.ip(from: client, to: server, seq: c, flags: .syn),
            Build.ip(from: server, to: client, seq: s, ack: c &+ 1, flags: [.syn, .ack]),
            Build.ip(from: client, to: server, seq: c &+ 1, ack: s + 1, flags: .ack),
            Build.ip(from: client, to: server, seq: c &+ 1, ack: s + 1, flags: [.psh, .ack], payload: request),
            Build.ip(from: server, to: client, seq: s + 1, ack: c &+ 1 &+ req, flags: [.psh, .ack], payload: response),
            Build.ip(from: client, to: server, seq: c &+ 1 &+ req, ack: s + 1 + res, flags: [.fin, .ack]),
            Build.ip(from: server, to: client, seq: s + 1 + res, ack: c &+ 2 &+ req, flags: [.fin, .ack]),
            Build.ip(from: client, to: server, seq: c &+ 2 &+ req, ack: s + 2 + res, flags: .ack),
        ]
    }
}

/// One link type to write to a file and read back.
struct FileLinkSample: Sendable, CustomTestStringConvertible {
    var name: String
    var linkType: Int32
    var ipv6: Bool
    var frame: @Sendable ([UInt8]) -> [UInt8]
    var testDescription: String { name }
}

@Suite("Capture files")
struct CaptureFileTests {
    static let request = Array("GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".utf8)
    static let response = Build.pattern(3000, 7)

    static let fileLinkSamples: [FileLinkSample] = [
        FileLinkSample(name: "Ethernet", linkType: 1, ipv6: false) { Build.ethernet($0) },
        FileLinkSample(name: "Ethernet 802.1Q IPv6", linkType: 1, ipv6: true) { Build.ethernet($0, vlans: [(0x8100, 12)]) },
        FileLinkSample(name: "Linux cooked v1", linkType: 113, ipv6: false) { Build.sll($0) },
        FileLinkSample(name: "Linux cooked v2 IPv6", linkType: 276, ipv6: true) { Build.sll2($0) },
        FileLinkSample(name: "NULL", linkType: 0, ipv6: false) { Build.null($0, family: 2, bigEndian: false) },
        FileLinkSample(name: "LOOP IPv6", linkType: 108, ipv6: true) { Build.null($0, family: 24, bigEndian: true) },
        FileLinkSample(name: "RAW", linkType: 12, ipv6: false) { $0 },
        FileLinkSample(name: "IPV4", linkType: 228, ipv6: false) { $0 },
        FileLinkSample(name: "IPV6", linkType: 229, ipv6: true) { $0 },
    ]

    /// A conversation framed in each link type goes through PcapWriter, PcapSource, PacketDecoder and
    /// TCPReassembler intact.
    @Test(arguments: fileLinkSamples)
    func conversationThroughAFile(_ sample: FileLinkSample) throws {
        let file = TemporaryFile()
        let (client, server) = sample.ipv6 ? (Build.client6, Build.server6) : (Build.client4, Build.server4)
        let packets = Capture.conversation(client: client, server: server, request: Self.request, response: Self.response)
            .map(sample.frame)
        try Capture.write(packets, linkType: sample.linkType, to: file)
        let source = try PcapSource(offlinePath: file.path)
        #expect(source.linkType == sample.linkType)
        #expect(!source.isLive)
        let (events, skipped) = try Capture.reassemble(source)
        #expect(skipped.isEmpty)
        #expect(events.first == .opened(TCPFlowInfo(
            id: TCPFlowID(rawValue: 1), initiator: client, responder: server, handshakeSeen: true,
            time: 1_700_000_000, packetNumber: 1)))
        #expect(Capture.stream(events, .initiatorToResponder) == Self.request)
        #expect(Capture.stream(events, .responderToInitiator) == Self.response)
        #expect(events.last == .closed(1, .fin))
    }

    @Test func packetsTimestampsAndLengthsRoundTrip() throws {
        let file = TemporaryFile()
        let writer = try PcapWriter(path: file.path, linkType: 1, snaplen: 65_535)
        #expect(writer.linkType == 1)
        try writer.write([1, 2, 3], seconds: 1_700_000_000, nanoseconds: 123_456_789)
        try writer.write(Build.pattern(100), seconds: 1_700_000_001, nanoseconds: 999_999_999, wireLength: 1500)
        try writer.write([], seconds: 0, nanoseconds: 1)
        try writer.flush()
        try writer.close()
        try writer.close()
        let thrown = thrownError { try writer.write([1]) }
        #expect(thrown is PcapError, "threw \(String(describing: thrown))")
        let source = try PcapSource(offlinePath: file.path)
        #expect(source.snapshotLength == 65_535)
        #expect(source.linkTypeName == "EN10MB")
        #expect(source.stats == nil)
        let (packets, error) = Capture.readAll(source)
        #expect(error == nil)
        #expect(packets == [
            ReadPacket(number: 1, seconds: 1_700_000_000, nanoseconds: 123_456_789, wireLength: 3, bytes: [1, 2, 3]),
            ReadPacket(number: 2, seconds: 1_700_000_001, nanoseconds: 999_999_999, wireLength: 1500, bytes: Build.pattern(100)),
            ReadPacket(number: 3, seconds: 0, nanoseconds: 1, wireLength: 0, bytes: []),
        ])
        #expect(try source.next() == nil, "the end stays the end")
    }

    /// Copying a capture through a writer matching the source keeps every packet as it was.
    @Test func writerMatchingSourceCopiesPackets() throws {
        let original = TemporaryFile()
        let packets = Capture.conversation(client: Build.client4, server: Build.server4, request: Self.request, response: Self.response)
            .map { Build.sll2($0) }
        try Capture.write(packets, linkType: 276, to: original)
        let copy = TemporaryFile()
        let source = try PcapSource(offlinePath: original.path)
        let writer = try PcapWriter(path: copy.path, matching: source)
        while let packet = try source.next() { try writer.write(packet) }
        try writer.close()
        #expect(copy.bytes == original.bytes)
    }

    /// A file cut in the middle of a packet: the packets before it are read, then an error names the packet.
    @Test(arguments: [("inside the data", 30), ("inside the record header", -8)])
    func truncatedFile(_ where: String, _ cut: Int) throws {
        let file = TemporaryFile()
        let packets = (0..<5).map { Build.ethernet(Build.ip(from: Build.client4, to: Build.server4, seq: UInt32($0), flags: .ack, payload: Build.pattern(100))) }
        try Capture.write(packets, linkType: 1, to: file)
        let recordStart = 24 + 4 * (16 + packets[0].count)
        let keep = cut > 0 ? recordStart + 16 + cut : recordStart + 16 + cut
        try file.write(Array(file.bytes.prefix(keep)))
        let source = try PcapSource(offlinePath: file.path)
        let (read, error) = Capture.readAll(source)
        #expect(read.map(\.number) == [1, 2, 3, 4])
        let failure = try #require(error)
        #expect(failure.kind == .read)
        #expect(failure.packetNumber == 5)
        #expect(failure.description.hasPrefix("packet 5: "))
        #expect(failure.message.contains("truncated"))
        #expect(try source.read().isEnd, "no hang, no second error after a read error")
    }

    /// A record header claiming an impossible length: the error names that packet (what the source
    /// reads after it is CaptureResyncTests' subject).
    @Test func corruptRecordHeader() throws {
        let file = TemporaryFile()
        let packets = (0..<4).map { _ in Build.pattern(60) }
        try Capture.write(packets, linkType: 1, to: file)
        var bytes = file.bytes
        let third = 24 + 2 * (16 + 60)
        bytes.replaceSubrange((third + 8)..<(third + 12), with: [0xFF, 0xFF, 0xFF, 0x7F])  // caplen 2^31 - 1
        try file.write(bytes)
        let (read, error) = Capture.readAll(try PcapSource(offlinePath: file.path))
        #expect(read.count == 2)
        #expect(error?.packetNumber == 3)
    }

    @Test(arguments: [
        ("not a capture", Array("this is not a capture file at all, just text\n".utf8)),
        ("empty", []),
        ("short header", [0xD4, 0xC3, 0xB2, 0xA1, 2, 0]),
    ])
    func corruptFileHeader(_ name: String, _ bytes: [UInt8]) throws {
        let file = TemporaryFile()
        try file.write(bytes)
        let thrown = thrownError { try PcapSource(offlinePath: file.path) }
        #expect(thrown is PcapError, "threw \(String(describing: thrown))")
        let error = thrown as? PcapError
        #expect(error?.kind == .openFile)
        #expect(error?.description.contains(file.path) == true)
    }

    @Test func missingFile() {
        let thrown = thrownError { try PcapSource(offlinePath: "/nonexistent/capture.pcap") }
        #expect(thrown is PcapError, "threw \(String(describing: thrown))")
        let error = thrown as? PcapError
        #expect(error?.kind == .openFile)
        #expect(error?.description.contains("No such file") == true)
        // The path once (libpcap's message names it already).
        #expect(error?.description.components(separatedBy: "/nonexistent/capture.pcap").count == 2, "\(error?.description ?? "")")
    }

    /// The filter runs while reading; packet numbers still count every packet in the file.
    @Test func offlineFilterKeepsFilePacketNumbers() throws {
        let file = TemporaryFile()
        let ports: [UInt16] = [80, 81, 80, 81, 82]
        let packets = ports.map { port in
            Build.ethernet(Build.ip(from: Build.client4, to: TCPEndpoint(address: Build.server4.address, port: port), seq: 1, flags: .syn))
        }
        try Capture.write(packets, linkType: 1, to: file)
        let source = try PcapSource(offlinePath: file.path)
        try source.setFilter("tcp port 81")
        #expect(Capture.readAll(source).packets.map(\.number) == [2, 4])
        let other = try PcapSource(offlinePath: file.path)
        try other.setFilter("tcp port 80")
        try other.setFilter("tcp port 82")  // replaces the first
        #expect(Capture.readAll(other).packets.map(\.number) == [5])
        let thrown = thrownError { try other.setFilter("tcp port") }
        #expect(thrown is PcapError, "threw \(String(describing: thrown))")
        let error = thrown as? PcapError
        #expect(error?.kind == .filter)
    }

    /// pcapng files are read too: a section header, an Ethernet interface and two enhanced packet blocks.
    @Test func pcapngFile() throws {
        let frames = Capture.conversation(client: Build.client4, server: Build.server4, request: Self.request, response: Self.response)
            .map { Build.ethernet($0) }
        var file = Pcapng.header
        for (index, frame) in frames.enumerated() {
            file += Pcapng.packet(frame, micros: UInt64(1_700_000_000 + index) * 1_000_000 + 250_000)
        }
        let path = TemporaryFile("capture.pcapng")
        try path.write(file)
        let source = try PcapSource(offlinePath: path.path)
        #expect(source.linkType == 1)
        let first = try #require(try source.next())
        #expect(first.seconds == 1_700_000_000)
        #expect(first.nanoseconds == 250_000_000)
        let (events, _) = try Capture.reassemble(try PcapSource(offlinePath: path.path))
        #expect(Capture.stream(events, .responderToInitiator) == Self.response)
    }

    /// `-` reads standard input.
    @Test func standardInput() throws {
        let file = TemporaryFile()
        try Capture.write([[1, 2, 3], [4, 5]], linkType: 1, to: file)
        let descriptor = open(file.path, O_RDONLY)
        #expect(descriptor >= 0)
        let source = try PipedInput.withStandardInput(descriptor) { try PcapSource(offlinePath: "-") }
        let (packets, error) = Capture.readAll(source)
        #expect(error == nil)
        #expect(packets.map(\.bytes) == [[1, 2, 3], [4, 5]])
    }

    /// breakLoop works on files too: the read returns `.interrupted`, and reading again resumes.
    @Test func breakLoopOnAFile() throws {
        let file = TemporaryFile()
        try Capture.write([[1], [2]], linkType: 1, to: file)
        let source = try PcapSource(offlinePath: file.path)
        source.breakLoop()
        #expect(try source.read().isInterrupted)
        #expect(try source.next()?.bytes == [1])
        let breaker = source.loopBreaker
        breaker.breakLoop()
        #expect(try source.next() == nil)
        #expect(try source.next()?.bytes == [2])
    }
}

extension PcapReadResult {
    var isEnd: Bool { if case .endOfCapture = self { true } else { false } }
    var isInterrupted: Bool { if case .interrupted = self { true } else { false } }
    var isTimeout: Bool { if case .timeout = self { true } else { false } }
}
