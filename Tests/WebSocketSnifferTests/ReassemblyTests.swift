import Testing
@testable import WebSocketSniffer

/// An event with its bytes copied, so tests can keep and compare it.
enum Recorded: Equatable, CustomStringConvertible {
    case opened(TCPFlowInfo)
    case data(UInt64, TCPDirection, [UInt8], offset: UInt64, packet: Int)
    case gap(UInt64, TCPDirection, missing: Int, offset: UInt64)
    case directionClosed(UInt64, TCPDirection)
    case closed(UInt64, TCPFlowCloseReason)

    var description: String {
        switch self {
        case .opened(let info): "opened \(info.id) \(info.initiator)->\(info.responder) handshake=\(info.handshakeSeen)"
        case .data(let id, let d, let bytes, let offset, let packet): "data \(id) \(d) \(bytes.count)@\(offset) #\(packet)"
        case .gap(let id, let d, let missing, let offset): "gap \(id) \(d) \(missing)@\(offset)"
        case .directionClosed(let id, let d): "fin \(id) \(d)"
        case .closed(let id, let reason): "closed \(id) \(reason)"
        }
    }
}

/// Drives a `TCPReassembler` with segments described directly (no packet bytes) and records what it says.
struct Harness {
    var reassembler: TCPReassembler
    var events: [Recorded] = []
    var packetNumber = 0

    init(_ configuration: TCPReassemblerConfiguration = .init()) {
        reassembler = TCPReassembler(configuration: configuration)
    }

    @discardableResult
    mutating func send(
        _ from: TCPEndpoint, _ to: TCPEndpoint, seq: UInt32, ack: UInt32? = nil, flags: TCPFlags = [], _ payload: [UInt8] = [],
        uncaptured: Int = 0, time: Double = 0
    ) -> TCPFlowID? {
        packetNumber += 1
        let packet = DecodedPacket(
            ipVersion: from.address.version, source: from.address, destination: to.address, sourcePort: from.port,
            destinationPort: to.port, sequenceNumber: seq, acknowledgmentNumber: ack ?? 0,
            flags: ack == nil ? flags : flags.union(.ack), window: 65_535, payloadRange: 0..<payload.count,
            uncapturedPayloadLength: uncaptured)
        var recorded: [Recorded] = []
        let id = reassembler.process(packet, payload: payload, time: time, packetNumber: packetNumber) { recorded.append(Self.record($0)) }
        events += recorded
        return id
    }

    mutating func finish(time: Double = 0) {
        var recorded: [Recorded] = []
        reassembler.finish(time: time) { recorded.append(Self.record($0)) }
        events += recorded
    }

    mutating func expire(now: Double) {
        var recorded: [Recorded] = []
        reassembler.expireIdleFlows(now: now) { recorded.append(Self.record($0)) }
        events += recorded
    }

    static func record(_ event: TCPReassemblyEvent) -> Recorded {
        switch event {
        case .flowOpened(let info): .opened(info)
        case .data(let id, let d, let bytes, let offset, _, let packet): .data(id.rawValue, d, Array(bytes), offset: offset, packet: packet)
        case .gap(let id, let d, let missing, let offset, _, _): .gap(id.rawValue, d, missing: missing, offset: offset)
        case .directionClosed(let id, let d, _): .directionClosed(id.rawValue, d)
        case .flowClosed(let id, let reason, _): .closed(id.rawValue, reason)
        }
    }

    /// The bytes of one direction, with `fill` standing in for each missing byte.
    func stream(_ flow: UInt64 = 1, _ direction: TCPDirection = .initiatorToResponder, fill: UInt8? = nil) -> [UInt8] {
        var out: [UInt8] = []
        for event in events {
            switch event {
            case .data(flow, direction, let bytes, _, _): out += bytes
            case .gap(flow, direction, let missing, _): if let fill { out += [UInt8](repeating: fill, count: missing) }
            default: break
            }
        }
        return out
    }

    var gaps: [Recorded] {
        events.filter { if case .gap = $0 { true } else { false } }
    }

    var closes: [Recorded] {
        events.filter { if case .closed = $0 { true } else { false } }
    }

    /// The event stream's promises: each flow opens first and closes last, once; each direction's data and
    /// gaps tile its stream from offset 0 without overlap; nothing follows a direction's FIN.
    func checkInvariants(sourceLocation: SourceLocation = #_sourceLocation) {
        var open: Set<UInt64> = []
        var closed: Set<UInt64> = []
        var next: [String: UInt64] = [:]
        var finished: Set<String> = []
        for event in events {
            switch event {
            case .opened(let info):
                #expect(!open.contains(info.id.rawValue) && !closed.contains(info.id.rawValue), "reopened \(info.id)", sourceLocation: sourceLocation)
                open.insert(info.id.rawValue)
            case .data(let id, let d, let bytes, let offset, _):
                let key = "\(id)\(d)"
                #expect(open.contains(id) && !finished.contains(key), "\(event) outside its flow", sourceLocation: sourceLocation)
                #expect(next[key, default: 0] == offset, "\(event) expected offset \(next[key, default: 0])", sourceLocation: sourceLocation)
                #expect(!bytes.isEmpty, sourceLocation: sourceLocation)
                next[key] = offset + UInt64(bytes.count)
            case .gap(let id, let d, let missing, let offset):
                let key = "\(id)\(d)"
                #expect(open.contains(id) && !finished.contains(key), "\(event) outside its flow", sourceLocation: sourceLocation)
                #expect(next[key, default: 0] == offset, "\(event) expected offset \(next[key, default: 0])", sourceLocation: sourceLocation)
                #expect(missing > 0, sourceLocation: sourceLocation)
                next[key] = offset + UInt64(missing)
            case .directionClosed(let id, let d):
                #expect(open.contains(id), sourceLocation: sourceLocation)
                finished.insert("\(id)\(d)")
            case .closed(let id, _):
                #expect(open.contains(id), "closed \(id) twice or before opening", sourceLocation: sourceLocation)
                open.remove(id)
                closed.insert(id)
            }
        }
    }
}

/// A deterministic generator, so a failing seed can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("TCP reassembly")
struct ReassemblyTests {
    let c = Build.client4
    let s = Build.server4
    let i2r = TCPDirection.initiatorToResponder
    let r2i = TCPDirection.responderToInitiator

    func handshake(_ h: inout Harness, client: UInt32 = 100, server: UInt32 = 900, time: Double = 0) {
        h.send(c, s, seq: client, flags: .syn, time: time)
        h.send(s, c, seq: server, ack: client &+ 1, flags: .syn, time: time)
        h.send(c, s, seq: client &+ 1, ack: server &+ 1, time: time)
    }

    @Test func inOrderConnectionWithHandshakeAndFINs() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, flags: .psh, Array("hello".utf8))
        h.send(s, c, seq: 901, ack: 106, flags: .psh, Array("world!".utf8))
        h.send(c, s, seq: 106, ack: 907, flags: .fin)
        h.send(s, c, seq: 907, ack: 107, flags: .fin)
        let last = h.send(c, s, seq: 107, ack: 908)
        let info = TCPFlowInfo(id: TCPFlowID(rawValue: 1), initiator: c, responder: s, handshakeSeen: true, time: 0, packetNumber: 1)
        #expect(h.events == [
            .opened(info),
            .data(1, i2r, Array("hello".utf8), offset: 0, packet: 4),
            .data(1, r2i, Array("world!".utf8), offset: 0, packet: 5),
            .directionClosed(1, i2r),
            .directionClosed(1, r2i),
            .closed(1, .fin),
        ])
        #expect(last == nil, "the last ACK of a closed flow opens nothing")
        #expect(info.client == c && info.server == s && info.ipVersion == .v4)
        #expect(h.reassembler.statistics.ignoredSegments == 1)
        #expect(h.reassembler.statistics.flowsClosed == [.fin: 1])
        h.checkInvariants()
    }

    @Test func outOfOrderSegmentsAreDeliveredInOrder() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(c, s, seq: 121, Array(data[20..<30]))
        h.send(c, s, seq: 111, Array(data[10..<20]))
        #expect(h.stream().isEmpty, "nothing before the first segment arrives")
        h.send(c, s, seq: 101, Array(data[0..<10]))
        #expect(h.stream() == data)
        #expect(Array(h.events.dropFirst()) == [
            .data(1, i2r, Array(data[0..<10]), offset: 0, packet: 6),
            .data(1, i2r, Array(data[10..<20]), offset: 10, packet: 5),
            .data(1, i2r, Array(data[20..<30]), offset: 20, packet: 4),
        ])
        #expect(h.reassembler.statistics.outOfOrderSegments == 2)
        #expect(h.reassembler.statistics.bufferedBytes == 0)
        h.checkInvariants()
    }

    @Test func exactRetransmissionsAreDroppedInOrderAndBuffered() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(c, s, seq: 101, Array(data[0..<10]))
        h.send(c, s, seq: 101, Array(data[0..<10]))
        h.send(c, s, seq: 121, Array(data[20..<30]))
        h.send(c, s, seq: 121, Array(data[20..<30]))  // again while still buffered
        h.send(c, s, seq: 111, Array(data[10..<20]))
        h.send(c, s, seq: 111, Array(data[10..<20]))
        #expect(h.stream() == data)
        #expect(h.reassembler.statistics.retransmittedBytes == 30)
        h.checkInvariants()
    }

    @Test func overlappingRetransmissionsAreTrimmed() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(40)
        func send(_ range: Range<Int>) { h.send(c, s, seq: 101 + UInt32(range.lowerBound), Array(data[range])) }
        send(0..<10)
        send(5..<15)  // 5 old, 5 new
        send(0..<20)  // 15 old, 5 new
        send(18..<30)  // 2 old
        send(25..<40)  // 5 old
        #expect(h.stream() == data)
        #expect(h.reassembler.statistics.retransmittedBytes == 27)
        h.checkInvariants()
    }

    @Test func overlappingOutOfOrderSegments() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(40)
        func send(_ range: Range<Int>) { h.send(c, s, seq: 101 + UInt32(range.lowerBound), Array(data[range])) }
        send(20..<30)
        send(25..<35)
        send(10..<22)
        send(30..<40)
        send(0..<12)
        #expect(h.stream() == data)
        h.checkInvariants()
    }

    @Test func sequenceNumbersWrapAround() {
        var h = Harness()
        handshake(&h, client: 0xFFFF_FFF0, server: 0xFFFF_FFFF)
        let data = Build.pattern(40)
        func send(_ range: Range<Int>) { h.send(c, s, seq: 0xFFFF_FFF1 &+ UInt32(range.lowerBound), Array(data[range])) }
        send(0..<10)  // 0xFFFFFFF1
        send(20..<30)  // 0x00000005, after the wrap, out of order
        send(10..<20)  // 0xFFFFFFFB, crosses 2^32
        send(10..<20)
        send(30..<40)
        #expect(h.stream() == data)
        // The server's ISN is 2^32 - 1: its first byte is sequence number 0.
        h.send(s, c, seq: 0, Array("pong".utf8))
        #expect(h.stream(1, r2i) == Array("pong".utf8))
        #expect(h.reassembler.statistics.retransmittedBytes == 10)
        #expect(h.gaps.isEmpty)
        h.checkInvariants()
    }

    @Test func streamsLongerThan4GiBKeepCounting() {
        var h = Harness()
        handshake(&h, client: 0)
        let chunk = [UInt8](repeating: 1, count: 1)
        // Jump ahead by acknowledgments: 5 × 2^30 bytes the capture did not hold, reported as gaps.
        var seq: UInt32 = 1
        for _ in 0..<5 {
            seq &+= 1 << 30
            h.send(s, c, seq: 901, ack: seq)
            // The acknowledged bytes are given up after three more packets of the flow without them.
            for _ in 0..<3 { h.send(s, c, seq: 901, ack: seq) }
        }
        h.send(c, s, seq: seq, chunk)
        guard case .data(_, _, _, let offset, _) = h.events.last else {
            Issue.record("no data event")
            return
        }
        #expect(offset == 5 << 30)
        #expect(h.reassembler.statistics.gapBytes == 5 << 30)
        h.checkInvariants()
    }

    @Test func gapReportedWhenTheReceiverAcknowledgesBytesNeverSeen() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(c, s, seq: 101, ack: 901, Array(data[0..<10]))
        h.send(c, s, seq: 121, ack: 901, Array(data[20..<30]))  // 111..<121 lost by the capture
        #expect(h.gaps.isEmpty, "a hole alone is not yet a loss")
        h.send(s, c, seq: 901, ack: 131)
        // The capture may still show the bytes just after their ACK: three more packets of the flow
        // without them, and they are given up.
        h.send(c, s, seq: 131, ack: 901, Array(data[0..<0]))
        h.send(s, c, seq: 901, ack: 131)
        #expect(h.gaps.isEmpty, "two packets after the ACK, the bytes may still come")
        h.send(s, c, seq: 901, ack: 131)
        #expect(Array(h.events.suffix(2)) == [
            .gap(1, i2r, missing: 10, offset: 10),
            .data(1, i2r, Array(data[20..<30]), offset: 20, packet: 5),
        ])
        // Acknowledged beyond everything seen: the gap is reported once the wait ends, and data resumes
        // after it.
        h.send(s, c, seq: 901, ack: 171)
        for _ in 0..<3 { h.send(s, c, seq: 901, ack: 171) }
        #expect(h.events.last == .gap(1, i2r, missing: 40, offset: 30))
        h.send(c, s, seq: 171, ack: 901, [1, 2, 3])
        #expect(h.events.last == .data(1, i2r, [1, 2, 3], offset: 70, packet: 14))
        #expect(h.reassembler.statistics.gaps == 2)
        #expect(h.reassembler.statistics.gapBytes == 50)
        h.checkInvariants()
    }

    /// A capture merged from two vantage points, or taken on a mirror port, can show an ACK before
    /// the data it acknowledges: the data is still taken when it comes.
    @Test func dataCapturedAfterItsAcknowledgment() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(40)
        h.send(c, s, seq: 101, ack: 901, Array(data[0..<10]))
        h.send(s, c, seq: 901, ack: 131)  // acknowledges 111..<131, not yet seen
        h.send(c, s, seq: 111, ack: 901, Array(data[10..<20]))
        h.send(c, s, seq: 121, ack: 901, Array(data[20..<30]))
        h.send(s, c, seq: 901, ack: 141)  // and again, before 131..<141
        h.send(s, c, seq: 901, ack: 141)
        h.send(c, s, seq: 131, ack: 901, Array(data[30..<40]))
        #expect(h.gaps.isEmpty)
        #expect(h.stream() == data)
        #expect(h.reassembler.statistics.gapBytes == 0)
        #expect(h.reassembler.statistics.retransmittedBytes == 0)
        h.checkInvariants()
    }

    /// Out of order among themselves too: a segment after the hole does not end the wait, as long as
    /// the hole shrinks within three packets.
    @Test func acknowledgedDataArrivingOutOfOrder() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(s, c, seq: 901, ack: 131)
        h.send(c, s, seq: 121, ack: 901, Array(data[20..<30]))
        h.send(c, s, seq: 111, ack: 901, Array(data[10..<20]))
        h.send(c, s, seq: 101, ack: 901, Array(data[0..<10]))
        #expect(h.gaps.isEmpty)
        #expect(h.stream() == data)
        h.checkInvariants()
    }

    /// A flow gone quiet after acknowledging unseen bytes does not hold what follows them: they are
    /// given up a second of capture time later, when any packet of the capture comes.
    @Test func acknowledgedBytesAreGivenUpAfterASecond() {
        var h = Harness()
        handshake(&h)
        let other = TCPEndpoint(address: c.address, port: 50_001)
        let data = Build.pattern(20)
        h.send(c, s, seq: 101, ack: 901, Array(data[0..<10]), time: 1)
        h.send(c, s, seq: 121, ack: 901, Array(data[10..<20]), time: 1)  // 111..<121 lost
        h.send(s, c, seq: 901, ack: 131, time: 1)
        h.send(other, s, seq: 5000, Array(data[0..<1]), time: 1.5)
        #expect(h.gaps.isEmpty)
        h.send(other, s, seq: 5001, Array(data[1..<2]), time: 2.25)
        #expect(h.gaps == [.gap(1, i2r, missing: 10, offset: 10)])
        #expect(h.stream(fill: 0) == Array(data[0..<10]) + [UInt8](repeating: 0, count: 10) + Array(data[10..<20]))
        h.checkInvariants()
    }

    /// Live, a quiet connection is settled by the read timeout's call, with the wall clock.
    @Test func acknowledgedBytesAreGivenUpOnAQuietLiveCapture() {
        var h = Harness()
        handshake(&h, time: 10)
        h.send(c, s, seq: 101, ack: 901, [1, 2, 3], time: 10)
        h.send(c, s, seq: 111, ack: 901, [4, 5], time: 10)  // 104..<111 lost
        h.send(s, c, seq: 901, ack: 113, time: 10)
        var recorded: [Recorded] = []
        h.reassembler.settleWaitingAcknowledgments(now: 10.5) { recorded.append(Harness.record($0)) }
        #expect(recorded.isEmpty)
        h.reassembler.settleWaitingAcknowledgments(now: 11.5) { recorded.append(Harness.record($0)) }
        #expect(recorded == [.gap(1, i2r, missing: 7, offset: 3), .data(1, i2r, [4, 5], offset: 10, packet: 5)])
    }

    /// A capture whose clock stands still (every packet at one time): the queue of waits does not
    /// grow with every ACK captured before its data while another connection waits at its front.
    @Test func queueOfWaitsStaysBoundedWhenTheClockStandsStill() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, [1])
        h.send(s, c, seq: 901, ack: 202)  // flow 1 waits for 100 unseen bytes, forever
        let c2 = TCPEndpoint(address: c.address, port: 50_002)
        var seq: UInt32 = 5_000
        h.send(c2, s, seq: seq, Array(repeating: 1, count: 10))
        seq += 10
        var longest = 0
        for _ in 0..<20_000 {
            h.send(s, c2, seq: 7_000, ack: seq + 20)
            h.send(c2, s, seq: seq, Array(repeating: 2, count: 20))
            seq += 20
            longest = max(longest, h.reassembler.waitingQueueLength)
        }
        #expect(longest < 10_000, "\(longest) entries")
        #expect(h.gaps.isEmpty)
    }

    /// A RST sent after bytes the receiver acknowledged but the capture has not shown yet belongs
    /// to the connection.
    @Test func resetAfterAcknowledgedUnseenBytes() {
        var h = Harness()
        handshake(&h)
        h.send(s, c, seq: 901, ack: 131)  // acknowledges 101..<131, none seen
        h.send(c, s, seq: 131, flags: .rst)
        #expect(h.closes == [.closed(1, .rst)])
        h.checkInvariants()
    }

    /// Acknowledged bytes the capture never showed are a gap when the flow ends, even past
    /// everything buffered.
    @Test func acknowledgedBytesNeverSeenAtTheEnd() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, [1, 2, 3])
        h.send(s, c, seq: 901, ack: 114)
        h.finish()
        #expect(h.gaps == [.gap(1, i2r, missing: 10, offset: 3)])
        h.checkInvariants()
    }

    @Test func gapsReportedAtEndOfCapture() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(c, s, seq: 101, Array(data[0..<10]))
        h.send(c, s, seq: 121, Array(data[20..<30]))
        h.finish(time: 9)
        #expect(Array(h.events.suffix(3)) == [
            .gap(1, i2r, missing: 10, offset: 10),
            .data(1, i2r, Array(data[20..<30]), offset: 20, packet: 5),
            .closed(1, .endOfCapture),
        ])
        #expect(h.reassembler.trackedFlowCount == 0)
        #expect(h.reassembler.statistics.bufferedBytes == 0)
        h.checkInvariants()
    }

    @Test func bufferBoundSkipsAheadWithAGap() {
        let cost = 100 + 64
        var h = Harness(TCPReassemblerConfiguration(maxFlowBuffer: 3 * cost))
        handshake(&h)
        let data = Build.pattern(600)
        // The first 100 bytes are lost; five segments pile up behind the hole.
        for k in 1...5 {
            h.send(c, s, seq: 101 + UInt32(k * 100), Array(data[(k * 100)..<((k + 1) * 100)]))
            #expect(h.reassembler.statistics.bufferedBytes <= 3 * cost)
        }
        #expect(h.gaps == [.gap(1, i2r, missing: 100, offset: 0)])
        #expect(h.stream() == Array(data[100...]))
        #expect(h.reassembler.statistics.peakBufferedBytes == 3 * cost)
        #expect(h.reassembler.statistics.bufferedBytes == 0)
        h.checkInvariants()
    }

    /// When the buffer is full, a segment that fills part of the first hole is kept, not skipped over.
    @Test func bufferBoundKeepsAnEarlierSegment() {
        let cost = 100 + 64
        var h = Harness(TCPReassemblerConfiguration(maxFlowBuffer: 2 * cost))
        handshake(&h)
        let data = Build.pattern(500)
        h.send(c, s, seq: 101 + 300, Array(data[300..<400]))
        h.send(c, s, seq: 101 + 400, Array(data[400..<500]))
        h.send(c, s, seq: 101 + 100, Array(data[100..<200]))  // full: skip to it, keeping it
        #expect(h.gaps == [.gap(1, i2r, missing: 100, offset: 0)])
        #expect(h.stream(fill: 0) == [UInt8](repeating: 0, count: 100) + Array(data[100..<200]))
        h.finish()
        #expect(h.stream(fill: 0) == [UInt8](repeating: 0, count: 100) + Array(data[100..<200]) + [UInt8](repeating: 0, count: 100) + Array(data[300...]))
        h.checkInvariants()
    }

    @Test func totalBufferBoundAcrossFlows() {
        let cost = 100 + 64
        var h = Harness(TCPReassemblerConfiguration(maxFlowBuffer: 10 * cost, maxTotalBuffer: 3 * cost))
        let other = TCPEndpoint(address: c.address, port: 50_002)
        h.send(c, s, seq: 1, [0])
        h.send(other, s, seq: 1, [0])
        let data = Build.pattern(400)
        h.send(c, s, seq: 102, Array(data[0..<100]))
        h.send(c, s, seq: 202, Array(data[100..<200]))
        h.send(other, s, seq: 102, Array(data[0..<100]))
        h.send(other, s, seq: 202, Array(data[100..<200]))  // over the total: this flow skips its hole
        #expect(h.gaps == [.gap(2, i2r, missing: 100, offset: 1)])
        #expect(h.reassembler.statistics.peakBufferedBytes <= 3 * cost)
        h.checkInvariants()
    }

    @Test func finArrivingBeforeTheLastDataClosesAfterIt() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(c, s, seq: 101, Array(data[0..<10]))
        h.send(c, s, seq: 121, flags: .fin, Array(data[20..<30]))
        #expect(!h.events.contains(.directionClosed(1, i2r)))
        h.send(c, s, seq: 111, Array(data[10..<20]))
        #expect(h.events.last == .directionClosed(1, i2r))
        #expect(h.stream() == data)
        h.send(c, s, seq: 132, Array("after FIN".utf8))
        #expect(h.stream() == data, "nothing is delivered after a FIN")
        h.checkInvariants()
    }

    @Test func halfCloseKeepsTheOtherDirectionOpen() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, flags: .fin)
        h.send(s, c, seq: 901, ack: 102, Array("still talking".utf8))
        h.send(s, c, seq: 914, ack: 102, Array(" more".utf8))
        #expect(h.closes.isEmpty)
        h.send(s, c, seq: 919, ack: 102, flags: .fin)
        #expect(h.stream(1, r2i) == Array("still talking more".utf8))
        #expect(h.closes == [.closed(1, .fin)])
        h.checkInvariants()
    }

    /// The receiver acknowledged the FIN, so the hole before it was lost by the capture.
    @Test func acknowledgedFINBehindAHole() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, [1, 2, 3])
        h.send(c, s, seq: 107, flags: .fin, [7, 8])  // 104..<107 lost
        h.send(s, c, seq: 901, ack: 110, flags: .fin)
        #expect(h.events.suffix(5) == [
            .directionClosed(1, r2i),
            .gap(1, i2r, missing: 3, offset: 3),
            .data(1, i2r, [7, 8], offset: 6, packet: 5),
            .directionClosed(1, i2r),
            .closed(1, .fin),
        ])
        h.checkInvariants()
    }

    @Test func resetClosesTheFlowAndFlushes() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, [1, 2])
        h.send(c, s, seq: 105, [5, 6])
        h.send(s, c, seq: 901, flags: .rst)
        #expect(h.events.suffix(3) == [
            .gap(1, i2r, missing: 2, offset: 2),
            .data(1, i2r, [5, 6], offset: 4, packet: 5),
            .closed(1, .rst),
        ])
        #expect(h.send(c, s, seq: 107, [7]) == nil, "segments after a RST belong to no flow")
        #expect(h.reassembler.statistics.flowsClosed == [.rst: 1])
        h.checkInvariants()
    }

    /// A RST whose sequence number is far from the sender's next byte (forged, or from another
    /// connection) closes nothing: the data after it is still the connection's.
    @Test func resetOutOfWindowIsIgnored() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, [1, 2])
        h.send(s, c, seq: 901 &+ 0x4000_0000, flags: .rst)
        h.send(c, s, seq: 101 &- 0x0200_0000, flags: .rst)
        h.send(s, c, seq: 901, ack: 103, [9, 9])
        h.send(c, s, seq: 103, ack: 903, [3])
        #expect(h.closes.isEmpty, "\(h.closes)")
        #expect(h.stream(1, i2r) == [1, 2, 3])
        #expect(h.stream(1, r2i) == [9, 9])
        #expect(h.reassembler.statistics.ignoredSegments == 2)
        // One within the window closes it.
        h.send(s, c, seq: 903, flags: .rst)
        #expect(h.closes == [.closed(1, .rst)])
        h.checkInvariants()
    }

    /// A RST behind what its sender already sent cannot be the sender's (its next sequence number
    /// is past it): it closes nothing, at any distance. (Within 16 MiB it closed the connection,
    /// and everything after it was lost without a word.) So for one inside a hole, behind bytes
    /// the sender sent after the hole.
    @Test(arguments: [1, 1000, 1 << 20])
    func resetBehindWhatWasSentIsIgnored(_ behind: Int) {
        var h = Harness()
        handshake(&h)
        h.send(s, c, seq: 901, ack: 101, Array("before".utf8))
        h.send(s, c, seq: 907 &- UInt32(behind), flags: .rst)
        h.send(c, s, seq: 101, ack: 907)  // the challenge ACK
        h.send(s, c, seq: 907, ack: 101, Array("after".utf8))
        h.send(c, s, seq: 101, ack: 912, Array("reply".utf8))
        #expect(h.closes.isEmpty, "\(h.closes)")
        #expect(h.stream(1, r2i) == Array("beforeafter".utf8))
        #expect(h.stream(1, i2r) == Array("reply".utf8))
        #expect(h.reassembler.statistics.ignoredSegments == 1)
        // Inside a hole, behind a segment buffered past it.
        var g = Harness()
        handshake(&g)
        g.send(s, c, seq: 901, ack: 101, Array("one".utf8))
        g.send(s, c, seq: 910, ack: 101, Array("three".utf8))  // 904..<910 still to come
        g.send(s, c, seq: 906, flags: .rst)
        g.send(s, c, seq: 904, ack: 101, Array("two!!!".utf8))
        #expect(g.closes.isEmpty, "\(g.closes)")
        #expect(g.stream(1, r2i) == Array("onetwo!!!three".utf8))
        #expect(g.gaps.isEmpty, "\(g.gaps)")
        h.checkInvariants()
        g.checkInvariants()
    }

    /// The client sends its SYN again with a new initial sequence number; the server's late answer
    /// to the first one is refused with a RST carrying the first attempt's numbers, then the
    /// server answers the new SYN (RFC 9293 §3.10.7.3): the connection is the second attempt's.
    @Test func lateResetOfAnEarlierAttemptClosesNothing() {
        var h = Harness()
        h.send(c, s, seq: 1000, flags: .syn)
        h.send(c, s, seq: 900_000, flags: .syn)  // a new attempt: a new flow
        h.send(s, c, seq: 5000, ack: 1001, flags: .syn)  // late, for the first SYN
        h.send(c, s, seq: 1001, flags: .rst)
        h.send(s, c, seq: 777_000, ack: 900_001, flags: .syn)  // for the new SYN: a new ISN
        h.send(c, s, seq: 900_001, ack: 777_001, Array("hello".utf8))
        h.send(s, c, seq: 777_001, ack: 900_006, Array("world".utf8))
        #expect(h.closes == [.closed(1, .reused)])
        #expect(h.stream(2, i2r) == Array("hello".utf8))
        #expect(h.stream(2, r2i) == Array("world".utf8))
        #expect(h.gaps.isEmpty, "\(h.gaps)")
        h.checkInvariants()
    }

    /// A SYN-ACK sent again with another initial sequence number before any data (higher or lower
    /// than the first): the direction starts from the new one, with no gap and nothing lost.
    @Test(arguments: [UInt32(7_000_000), UInt32(100)])
    func synAckWithANewInitialSequenceNumber(_ second: UInt32) {
        var h = Harness()
        h.send(c, s, seq: 100, flags: .syn)
        h.send(s, c, seq: 5000, ack: 101, flags: .syn)
        h.send(s, c, seq: second, ack: 101, flags: .syn)
        h.send(c, s, seq: 101, ack: second &+ 1)
        h.send(s, c, seq: second &+ 1, ack: 101, Array("world".utf8))
        #expect(h.stream(1, r2i) == Array("world".utf8))
        #expect(h.gaps.isEmpty, "\(h.gaps)")
        // Once data has come, a SYN-ACK with another number changes nothing.
        h.send(s, c, seq: 42, ack: 101, flags: .syn)
        h.send(s, c, seq: second &+ 6, ack: 101, Array("!".utf8))
        #expect(h.stream(1, r2i) == Array("world!".utf8))
        h.checkInvariants()
    }

    /// Bytes beyond the FIN (held out of order, or arriving after it) are not part of the stream,
    /// and the hole before them is no gap.
    @Test func nothingBeyondTheFIN() {
        var h = Harness()
        handshake(&h)
        h.send(s, c, seq: 901, ack: 101, [1, 2, 3])
        h.send(s, c, seq: 954, ack: 101, Array("junk".utf8))  // far beyond the FIN to come
        h.send(s, c, seq: 904, ack: 101, flags: .fin)
        h.send(s, c, seq: 905, ack: 101, Array("late".utf8))
        h.send(c, s, seq: 101, ack: 905, flags: .fin)
        #expect(h.stream(1, r2i) == [1, 2, 3])
        #expect(h.gaps.isEmpty, "\(h.gaps)")
        #expect(h.closes == [.closed(1, .fin)])
        #expect(h.reassembler.statistics.bufferedBytes == 0)
        h.checkInvariants()
    }

    /// Out-of-order copies of the same bytes that differ: the first copy seen is kept, whether the
    /// later one starts at the same place and is longer, or starts earlier and covers it.
    @Test func firstBufferedCopyWins() {
        var h = Harness()
        handshake(&h)
        let first = Array("ABCDEFGH".utf8), later = Array("abcdefghIJ".utf8)
        h.send(c, s, seq: 111, first)  // 10 bytes from 101 still to come
        h.send(c, s, seq: 111, later)
        h.send(c, s, seq: 131, Array("MN".utf8))
        h.send(c, s, seq: 127, Array("wxyzmnop".utf8))  // covers 131..<133 and goes past it
        h.send(c, s, seq: 101, Array("0123456789".utf8))
        h.finish()  // 121..<127 never came: a gap
        let stream = h.stream(1, i2r, fill: UInt8(ascii: "."))
        #expect(stream == Array("0123456789ABCDEFGHIJ......wxyzMNop".utf8), "\(String(decoding: stream, as: UTF8.self))")
        h.checkInvariants()
    }

    /// One-byte segments in falling order behind a hole: at most `maxPendingSegments` are held
    /// (each new one is kept in order by moving the rest), then the hole is declared a gap and
    /// the stream goes on; every byte that came is delivered once, in order.
    @Test func floodOfTinySegmentsIsBoundedInCount() {
        var h = Harness()
        handshake(&h)
        let limit = TCPStreamState.maxPendingSegments(TCPReassemblerConfiguration().maxFlowBuffer)
        #expect(limit == 4_096)
        let count = limit + 1_000
        for i in stride(from: count, through: 1, by: -1) {
            h.send(c, s, seq: 101 + UInt32(i), [UInt8(truncatingIfNeeded: i)])
            #expect(h.reassembler.statistics.bufferedBytes <= limit * (1 + TCPStreamState.segmentOverhead))
        }
        h.send(c, s, seq: 101, [0])
        h.finish()
        let stream = h.stream(1, i2r, fill: 0xEE)
        #expect(stream.count == count + 1)
        #expect(h.gaps.count >= 1)
        #expect(h.reassembler.statistics.bufferFullGaps == h.reassembler.statistics.gaps, "the gaps were the buffer's")
        #expect(h.reassembler.statistics.peakBufferedBytes <= limit * (1 + TCPStreamState.segmentOverhead))
        h.checkInvariants()
    }

    /// Small segments behind one lost segment that comes again late (one retransmission on a busy
    /// connection): the default buffer holds 4,096 of them, then the hole is skipped, and the gap
    /// says the buffer was full (it said the bytes were not captured). A larger `--max-flow-buffer`
    /// holds more (the count limit ignored it): then the late copy fills the hole.
    @Test(arguments: [(4 << 20, true), (64 << 20, false)])
    func segmentsBehindAHoleAreHeldAsTheBufferAllows(_ buffer: Int, _ skipped: Bool) {
        var configuration = TCPReassemblerConfiguration()
        configuration.maxFlowBuffer = buffer
        var h = Harness(configuration)
        handshake(&h)
        let segment = [UInt8](repeating: 0x62, count: 100)
        let count = 4_097
        for i in 0..<count { h.send(c, s, seq: 108 + UInt32(i * 100), segment) }  // bytes 101..<108 still to come
        h.send(c, s, seq: 101, Array("FIRST!!".utf8))
        h.finish()
        let statistics = h.reassembler.statistics
        if skipped {
            #expect(h.gaps.count == 1 && statistics.bufferFullGaps == 1 && statistics.bufferFullGapBytes == 7, "\(h.gaps)")
            #expect(h.stream(1, i2r).count == count * 100)
        } else {
            #expect(h.gaps.isEmpty, "\(h.gaps)")
            let whole = h.stream(1, i2r) == Array("FIRST!!".utf8) + Array([[UInt8]](repeating: segment, count: count).joined())
            #expect(whole)
        }
        h.checkInvariants()
    }

    @Test func midStreamPickup() {
        var h = Harness()
        #expect(h.send(c, s, seq: 7000, ack: 5000) == nil, "a pure ACK of an unknown connection opens nothing")
        #expect(h.send(c, s, seq: 7000, flags: .rst) == nil)
        let id = h.send(s, c, seq: 5000, ack: 7000, Array("HTTP/1.1 101".utf8))
        #expect(id == TCPFlowID(rawValue: 1))
        guard case .opened(let info) = h.events.first else {
            Issue.record("no flow opened")
            return
        }
        #expect(info.initiator == s, "the first sender seen is the initiator")
        #expect(!info.handshakeSeen)
        #expect(info.client == nil)
        h.send(c, s, seq: 7000, ack: 5012, Array("\u{81}\u{0}".utf8))
        #expect(h.stream(1, i2r) == Array("HTTP/1.1 101".utf8))
        #expect(h.stream(1, r2i) == Array("\u{81}\u{0}".utf8))
        #expect(info.direction(from: c) == r2i)
        h.checkInvariants()
    }

    @Test func synAckAloneIdentifiesTheClient() {
        var h = Harness()
        h.send(s, c, seq: 900, ack: 101, flags: .syn)
        h.send(c, s, seq: 101, ack: 901, Array("GET".utf8))
        h.send(s, c, seq: 901, ack: 104, Array("200".utf8))
        guard case .opened(let info) = h.events.first else {
            Issue.record("no flow opened")
            return
        }
        #expect(info.client == c)
        #expect(info.server == s)
        #expect(h.stream(1, i2r) == Array("GET".utf8))
        #expect(h.stream(1, r2i) == Array("200".utf8))
        h.checkInvariants()
    }

    @Test func idleFlowsAreClosedByCaptureTime() {
        var h = Harness()
        let other = TCPEndpoint(address: c.address, port: 50_002)
        h.send(c, s, seq: 1, [1], time: 0)
        h.send(c, s, seq: 3, [3], time: 10)  // buffered behind a hole
        h.send(other, s, seq: 1, [1], time: 200)
        h.send(other, s, seq: 2, [2], time: 311)
        #expect(h.events.suffix(4) == [
            .gap(1, i2r, missing: 1, offset: 1),
            .data(1, i2r, [3], offset: 2, packet: 2),
            .closed(1, .idle),
            .data(2, i2r, [2], offset: 1, packet: 4),
        ])
        h.send(other, s, seq: 3, [3], time: 600)
        #expect(h.closes.count == 1)
        h.expire(now: 901)
        #expect(h.closes == [.closed(1, .idle), .closed(2, .idle)])
        #expect(h.reassembler.trackedFlowCount == 0)
        h.checkInvariants()
    }

    @Test func leastRecentlyActiveFlowIsEvicted() {
        var h = Harness(TCPReassemblerConfiguration(maxFlows: 2))
        let a = TCPEndpoint(address: c.address, port: 1)
        let b = TCPEndpoint(address: c.address, port: 2)
        let d = TCPEndpoint(address: c.address, port: 3)
        h.send(a, s, seq: 1, [1], time: 1)
        h.send(b, s, seq: 1, [1], time: 2)
        h.send(a, s, seq: 2, [2], time: 3)
        h.send(d, s, seq: 1, [1], time: 4)
        #expect(h.closes == [.closed(2, .evicted)])
        #expect(h.reassembler.trackedFlowCount == 2)
        #expect(h.reassembler.openFlows.map(\.initiator) == [a, d])
        h.checkInvariants()
    }

    @Test func newConnectionOnTheSameFourTuple() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 100, flags: .syn)  // retransmitted SYN: same connection
        #expect(h.reassembler.statistics.flowsOpened == 1)
        h.send(c, s, seq: 5000, flags: .syn)  // a new ISN: the port was reused
        #expect(h.closes == [.closed(1, .reused)])
        h.send(c, s, seq: 5001, flags: [.fin])
        h.send(s, c, seq: 1, ack: 5002, flags: [.fin])
        #expect(h.closes == [.closed(1, .reused), .closed(2, .fin)])
        handshake(&h, client: 9000)  // after a FIN close
        #expect(h.reassembler.statistics.flowsOpened == 3)
        h.checkInvariants()
    }

    /// The same ports used again after a connection ended, with the new connection's SYN not in
    /// the capture: its data, outside what the ended connection sent, opens a flow picked up
    /// mid-stream. Copies of the ended connection's data and its last ACKs open nothing, nor does
    /// data it had in flight when a RST ended it; after the flow timeout, the ended flow is gone.
    /// (Before, the ended flow swallowed every later packet on those ports, however late.)
    /// A connection whose client sends "hello" and both sides then close with FIN, at `time`.
    func helloThenFINs(_ h: inout Harness, time: Double = 0) {
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, flags: .psh, Array("hello".utf8))
        h.send(c, s, seq: 106, ack: 901, flags: .fin, time: time)
        h.send(s, c, seq: 901, ack: 107, flags: .fin, time: time)
        h.send(c, s, seq: 107, ack: 902, time: time)
    }

    @Test func anotherConnectionWithoutItsSYNAfterOneEnded() {
        var h = Harness()
        helloThenFINs(&h)
        #expect(h.closes == [.closed(1, .fin)])
        h.send(c, s, seq: 101, ack: 901, flags: .psh, Array("hello".utf8), time: 0.5)  // a late copy
        h.send(s, c, seq: 901, ack: 107, flags: .fin, time: 0.5)
        #expect(h.reassembler.statistics.flowsOpened == 1)
        // 30 s later, within the flow timeout: another connection, its handshake not captured.
        h.send(c, s, seq: 77_000_001, ack: 55_000_001, flags: .psh, Array("GET".utf8), time: 30)
        h.send(s, c, seq: 55_000_001, ack: 77_000_004, flags: .psh, Array("HTTP".utf8), time: 30)
        #expect(h.reassembler.statistics.flowsOpened == 2)
        let opened = h.events.compactMap { if case .opened(let info) = $0 { info } else { nil } }
        #expect(opened.last?.handshakeSeen == false && opened.last?.initiator == c)
        #expect(h.stream(2, .initiatorToResponder) == Array("GET".utf8))
        #expect(h.stream(2, .responderToInitiator) == Array("HTTP".utf8))
        h.checkInvariants()
    }

    @Test func dataInFlightWhenAResetEndedTheConnectionOpensNothing() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, ack: 901, flags: .psh, Array("hello".utf8))
        h.send(s, c, seq: 901, flags: .rst, time: 0.1)
        #expect(h.closes == [.closed(1, .rst)])
        h.send(c, s, seq: 106, ack: 901, flags: .psh, Array("more".utf8), time: 0.2)  // sent before the RST arrived
        #expect(h.reassembler.statistics.flowsOpened == 1)
        // Seconds later still: a stack that checks resets exactly (RFC 5961) goes on after one a
        // little off. Its data is the ended connection's (saved with it by -w), not another one.
        h.send(c, s, seq: 110, ack: 901, flags: .psh, Array("on".utf8), time: 5)
        #expect(h.reassembler.statistics.flowsOpened == 1)
        // Far from what it sent: another connection.
        h.send(c, s, seq: 90_000_000, ack: 901, flags: .psh, Array("GET".utf8), time: 6)
        #expect(h.reassembler.statistics.flowsOpened == 2)
        h.checkInvariants()
    }

    /// A connection reusing the ports at once after a FIN close: Linux starts it just past the
    /// old one (its next sequence number + 65,537), which the rule for data in flight after a RST
    /// took for the old connection's: the new one was hidden.
    @Test func portsReusedAtOnceAfterAFINClose() {
        var h = Harness()
        helloThenFINs(&h, time: 0.1)
        h.send(c, s, seq: 107 &+ 65_537, ack: 902 &+ 65_537, flags: .psh, Array("GET".utf8), time: 0.5)
        #expect(h.reassembler.statistics.flowsOpened == 2)
        #expect(h.stream(2, .initiatorToResponder) == Array("GET".utf8))
        h.checkInvariants()
    }

    /// `covers` for a direction that sent more than 2 GiB: a signed distance from its first byte
    /// wrapped negative, so a copy of its own last bytes (a FIN sent again from LAST_ACK) opened
    /// a connection of its own.
    @Test(arguments: [UInt64(1) << 30, 3 << 30])
    func aLateCopyAfterGigabytesIsTheConnectionsOwn(_ sent: UInt64) {
        var state = TCPStreamState()
        state.startWithSYN(1_000)
        state.offset = sent
        state.nextSequence = 1_001 &+ UInt32(truncatingIfNeeded: sent)
        #expect(state.covers(state.nextSequence &- 1))
        #expect(state.covers(1_001))
        #expect(state.covers(1_000), "the SYN")
        #expect(!state.covers(state.nextSequence), "what comes next is new")
        #expect(!state.covers(999))
    }

    @Test func anEndedFlowIsGoneAfterTheFlowTimeout() {
        var configuration = TCPReassemblerConfiguration()
        configuration.idleTimeout = 60
        var h = Harness(configuration)
        helloThenFINs(&h)
        // Much later, bytes at the very same sequence numbers: nothing says they are a copy.
        h.send(c, s, seq: 101, ack: 902, flags: .psh, Array("hello".utf8), time: 500)
        #expect(h.reassembler.statistics.flowsOpened == 2)
        #expect(h.stream(2, .initiatorToResponder) == Array("hello".utf8))
        h.checkInvariants()
    }

    @Test func bytesCutBySnapshotLengthAreAGap() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(300)
        h.send(c, s, seq: 101, Array(data[0..<100]), uncaptured: 50)
        h.send(c, s, seq: 251, Array(data[150..<300]))
        #expect(Array(h.events.suffix(3)) == [
            .data(1, i2r, Array(data[0..<100]), offset: 0, packet: 4),
            .gap(1, i2r, missing: 50, offset: 100),
            .data(1, i2r, Array(data[150..<300]), offset: 150, packet: 5),
        ])
        h.checkInvariants()
    }

    /// A buffered copy the snapshot length cut short gives way to a later copy of the same segment
    /// that brings its bytes (tshark reassembles from the retransmission too).
    @Test func snapshotCutCopyGivesWayToAWholeOne() {
        var h = Harness()
        handshake(&h)
        let data = Build.pattern(30)
        h.send(c, s, seq: 101, Array(data[0..<10]))
        h.send(c, s, seq: 121, Array(data[20..<25]), uncaptured: 5)  // ahead of a hole, cut short
        h.send(c, s, seq: 121, Array(data[20..<30]))  // retransmitted whole
        h.send(c, s, seq: 121, Array(data[20..<23]), uncaptured: 7)  // and again cut: the whole one stays
        h.send(c, s, seq: 111, Array(data[10..<20]))
        #expect(h.gaps.isEmpty)
        #expect(h.stream() == data)
        h.checkInvariants()
    }

    /// Data on a RST is a diagnostic for the peer (RFC 9293 §3.10.7.4), not stream data: neither an
    /// accepted RST's nor a forged one's is delivered or buffered.
    @Test func dataOnAResetIsNotStreamData() {
        var h = Harness()
        handshake(&h)
        h.send(c, s, seq: 101, [1, 2, 3])
        h.send(s, c, seq: 901 &+ (1 << 25), flags: .rst, [9, 9, 9])  // far off: forged, closes nothing
        h.send(s, c, seq: 901, [4, 5])
        h.send(s, c, seq: 903, flags: .rst, [8, 8, 8, 8])
        #expect(h.stream(1, r2i) == [4, 5])
        #expect(h.gaps.isEmpty)
        #expect(h.closes == [.closed(1, .rst)])
        h.checkInvariants()
    }

    @Test func ipv6Flow() {
        var h = Harness()
        h.send(Build.client6, Build.server6, seq: 1, flags: .syn)
        h.send(Build.client6, Build.server6, seq: 2, [42])
        guard case .opened(let info) = h.events.first else {
            Issue.record("no flow opened")
            return
        }
        #expect(info.ipVersion == .v6)
        #expect(info.client?.description == "[2001:db8::10]:50001")
        #expect(h.stream() == [42])
    }

    /// Random segmentation, duplicates, overlapping retransmissions and reordering, in both directions and
    /// across the 2^32 wrap: every byte comes out once, in order; with drops, every byte reported is the
    /// right byte at the right offset.
    @Test(arguments: 1...24)
    func randomizedStreams(seed: Int) {
        var random = SplitMix(state: UInt64(seed))
        let drops = seed % 3 == 0
        var h = Harness(TCPReassemblerConfiguration(maxFlowBuffer: seed % 2 == 0 ? 4 << 20 : 2000))
        let isn: [UInt32] = [UInt32.max - UInt32.random(in: 0..<3000, using: &random), UInt32.random(in: 0...UInt32.max, using: &random)]
        let data = [Build.pattern(Int.random(in: 2000..<8000, using: &random), 5), Build.pattern(Int.random(in: 2000..<8000, using: &random), 7)]
        handshake(&h, client: isn[0], server: isn[1])
        var segments: [(dir: Int, range: Range<Int>)] = []
        for dir in 0..<2 {
            var at = 0
            while at < data[dir].count {
                let end = min(data[dir].count, at + Int.random(in: 1...600, using: &random))
                segments.append((dir, at..<end))
                if Int.random(in: 0..<5, using: &random) == 0 { segments.append((dir, at..<end)) }
                if Int.random(in: 0..<6, using: &random) == 0 {
                    let start = max(0, at - Int.random(in: 0...300, using: &random))
                    segments.append((dir, start..<min(data[dir].count, end + Int.random(in: 0...300, using: &random))))
                }
                at = end
            }
        }
        if drops { segments.removeAll { _ in Int.random(in: 0..<10, using: &random) == 0 } }
        for i in segments.indices {
            let j = min(segments.count - 1, i + Int.random(in: 0...4, using: &random))
            segments.swapAt(i, j)
        }
        for segment in segments {
            let (from, to) = segment.dir == 0 ? (c, s) : (s, c)
            h.send(from, to, seq: isn[segment.dir] &+ 1 &+ UInt32(segment.range.lowerBound), Array(data[segment.dir][segment.range]))
        }
        h.finish()
        h.checkInvariants()
        for (dir, direction) in [(0, i2r), (1, r2i)] {
            for event in h.events {
                if case .data(_, direction, let bytes, let offset, _) = event {
                    #expect(Array(data[dir][Int(offset)..<Int(offset) + bytes.count]) == bytes)
                }
            }
            if !drops, seed % 2 == 0 {
                #expect(h.stream(1, direction) == data[dir])
            }
        }
        if !drops, seed % 2 == 0 { #expect(h.gaps.isEmpty) }
        // The bound is per direction; two directions buffer.
        #expect(h.reassembler.statistics.peakBufferedBytes <= 2 * (seed % 2 == 0 ? 4 << 20 : 2000))
    }

    /// Many flows, reordered and lossy, through a small table: memory stays bounded by the limits.
    @Test func manyFlowsStayWithinLimits() {
        var random = SplitMix(state: 99)
        let configuration = TCPReassemblerConfiguration(maxFlowBuffer: 4096, maxTotalBuffer: 64 << 10, idleTimeout: 5, maxFlows: 500)
        var reassembler = TCPReassembler(configuration: configuration)
        var events = 0
        var peakFlows = 0
        let payload = [UInt8](repeating: 0x61, count: 100)
        for n in 0..<60_000 {
            let port = UInt16.random(in: 1...2000, using: &random)
            let client = TCPEndpoint(address: c.address, port: port)
            let seq = UInt32(port) << 20 &+ UInt32.random(in: 0..<200, using: &random) * 100
            let packet = DecodedPacket(
                ipVersion: .v4, source: client.address, destination: s.address, sourcePort: port, destinationPort: s.port,
                sequenceNumber: seq, acknowledgmentNumber: 0, flags: .psh, window: 1, payloadRange: 0..<100)
            reassembler.process(packet, payload: payload, time: Double(n) / 1000, packetNumber: n + 1) { _ in events += 1 }
            peakFlows = max(peakFlows, reassembler.trackedFlowCount)
            #expect(reassembler.statistics.bufferedBytes <= configuration.maxTotalBuffer)
        }
        #expect(peakFlows == 500)
        #expect(reassembler.statistics.flowsClosed[.evicted, default: 0] > 0)
        #expect(reassembler.statistics.peakBufferedBytes <= configuration.maxTotalBuffer)
        reassembler.finish(time: 100) { _ in events += 1 }
        #expect(reassembler.statistics.bufferedBytes == 0)
        #expect(events > 60_000)
    }
}

/// Connections that ended and whose flows were let go (a flow timeout shorter than TIME_WAIT) are
/// remembered, so that their late copies open nothing: at most `maxEnded` of them, each for
/// `endedMemory` seconds of capture time.
@Suite("TCP reassembly: ended connections")
struct ReassemblyEndedTests {
    let s = Build.server4

    func packet(_ client: TCPEndpoint, toServer: Bool, seq: UInt32, flags: TCPFlags, length: Int = 0) -> DecodedPacket {
        DecodedPacket(ipVersion: .v4, source: toServer ? client.address : s.address, destination: toServer ? s.address : client.address,
                      sourcePort: toServer ? client.port : s.port, destinationPort: toServer ? s.port : client.port,
                      sequenceNumber: seq, acknowledgmentNumber: 0, flags: flags, window: 1, payloadRange: 0..<length)
    }

    @Test func endedConnectionsAreRememberedWithinBounds() {
        var reassembler = TCPReassembler(configuration: TCPReassemblerConfiguration(idleTimeout: 1))
        var opened = 0
        let count = TCPReassembler.maxEnded + 1_000
        let payload = [UInt8](repeating: 0x62, count: 10)
        func client(_ i: Int) -> TCPEndpoint { TCPEndpoint(address: .v4(0x0A01_0000 + UInt32(i >> 14)), port: UInt16(1024 + i & 0x3FFF)) }
        func send(_ p: DecodedPacket, _ bytes: [UInt8] = [], at time: Double) {
            bytes.withUnsafeBytes { raw in
                _ = reassembler.process(p, payload: raw, time: time, packetNumber: 1) { if case .flowOpened = $0 { opened += 1 } }
            }
        }
        for i in 0..<count {
            let c = client(i), t = Double(i) / 1_000
            send(packet(c, toServer: true, seq: 100, flags: .syn), at: t)
            send(packet(c, toServer: false, seq: 500, flags: [.syn, .ack]), at: t)
            send(packet(c, toServer: true, seq: 101, flags: [.psh, .ack], length: 10), payload, at: t)
            send(packet(c, toServer: true, seq: 111, flags: [.fin, .ack]), at: t)
            send(packet(c, toServer: false, seq: 501, flags: [.fin, .ack]), at: t)
        }
        #expect(opened == count)
        #expect(reassembler.endedConnectionCount <= TCPReassembler.maxEnded)
        // A late copy of the last connection's data, and its FIN sent again: nothing opened.
        let last = client(count - 1), t = Double(count) / 1_000 + 30
        send(packet(last, toServer: true, seq: 101, flags: [.psh, .ack], length: 10), payload, at: t)
        send(packet(last, toServer: true, seq: 111, flags: [.fin, .ack]), at: t)
        #expect(opened == count)
        // Data past what it sent: another connection on those ports, its SYN not captured.
        send(packet(last, toServer: true, seq: 200_000, flags: [.psh, .ack], length: 10), payload, at: t)
        #expect(opened == count + 1)
        // TIME_WAIT later, the others are forgotten.
        send(packet(client(count - 2), toServer: true, seq: 111, flags: [.fin, .ack]), at: t + TCPReassembler.endedMemory + 1)
        #expect(reassembler.endedConnectionCount == 0)
        #expect(opened == count + 2)
    }
}

/// The flow table remembers the slots of recent keys (a hint checked against the key). Many more
/// flows than it has room for, interleaved, with four-tuples reused after a close and slots reused
/// after eviction: every segment must still reach its own flow.
@Suite("TCP reassembly: flow lookup")
struct ReassemblyLookupTests {
    let server4 = TCPEndpoint(address: .v4(0x0A00_0001), port: 80)
    let server6 = TCPEndpoint(address: .v6(high: 0x2001_0db8_0000_0000, low: 1), port: 443)

    func client(_ i: Int) -> TCPEndpoint {
        i % 3 == 0 ? TCPEndpoint(address: .v6(high: 0x2001_0db8_0000_0000, low: UInt64(1000 + i)), port: UInt16(20_000 + i))
            : TCPEndpoint(address: .v4(0x0A00_0100 + UInt32(i % 7)), port: UInt16(30_000 + i))
    }

    func server(_ i: Int) -> TCPEndpoint { i % 3 == 0 ? server6 : server4 }

    /// `rounds` segments from each of `count` clients, round robin; the bytes say who sent them.
    func run(count: Int, rounds: Int, maxFlows: Int, reopenEvery: Int) -> Harness {
        var h = Harness(TCPReassemblerConfiguration(maxFlows: maxFlows))
        var next = [UInt32](repeating: 0, count: count)
        var generation = [Int](repeating: 0, count: count)
        for i in 0..<count {
            h.send(client(i), server(i), seq: 1000, flags: .syn)
            next[i] = 1001
        }
        for round in 0..<rounds {
            for i in 0..<count {
                let tag = UInt8(truncatingIfNeeded: i)
                let payload = [tag, UInt8(truncatingIfNeeded: generation[i]), UInt8(truncatingIfNeeded: round)]
                h.send(client(i), server(i), seq: next[i], ack: 5000, flags: .psh, payload)
                next[i] &+= 3
                if reopenEvery > 0, (i + round) % reopenEvery == 0 {
                    // Close with RST, then open the same four-tuple again: a new flow.
                    h.send(client(i), server(i), seq: next[i], flags: .rst)
                    generation[i] += 1
                    h.send(client(i), server(i), seq: 7000, flags: .syn)
                    next[i] = 7001
                }
            }
        }
        h.finish()
        return h
    }

    /// Every flow's data comes from one client and one of its connections, in order.
    func checkStreams(_ h: Harness) {
        var owner: [UInt64: TCPEndpoint] = [:]
        for case .opened(let info) in h.events { owner[info.id.rawValue] = info.initiator }
        var seen: [UInt64: (tag: UInt8, generation: UInt8, round: UInt8)] = [:]
        for case .data(let id, _, let bytes, _, _) in h.events {
            #expect(bytes.count % 3 == 0)
            for k in stride(from: 0, to: bytes.count, by: 3) {
                let (tag, generation, round) = (bytes[k], bytes[k + 1], bytes[k + 2])
                if let first = seen[id] {
                    #expect(first.tag == tag && first.generation == generation, "flow \(id) mixes connections")
                    #expect(round > first.round || round == first.round, "flow \(id) out of order")
                }
                seen[id] = (tag, generation, round)
                // The client's index is in its port; the bytes must carry the same index.
                if let o = owner[id] {
                    let index = Int(o.port) - (o.port >= 30_000 ? 30_000 : 20_000)
                    #expect(UInt8(truncatingIfNeeded: index) == tag, "flow \(id) of \(o) carries client \(tag)'s bytes")
                }
            }
        }
        #expect(!seen.isEmpty)
        h.checkInvariants()
    }

    @Test func manyInterleavedFlowsReachTheirOwnFlow() {
        let h = run(count: 300, rounds: 6, maxFlows: 100_000, reopenEvery: 0)
        checkStreams(h)
        let opened = h.events.filter { if case .opened = $0 { true } else { false } }
        #expect(opened.count == 300)
        for i in [0, 1, 150, 299] {
            let tag = UInt8(truncatingIfNeeded: i)
            let id = h.events.compactMap { e -> UInt64? in
                if case .opened(let info) = e, info.initiator == client(i) { return info.id.rawValue }
                return nil
            }.first!
            let sent: [UInt8] = (0..<6).flatMap { [tag, 0, UInt8($0)] }
            #expect(h.stream(id) == sent, "flow \(i)")
        }
    }

    @Test func reusedFourTuplesAndEvictedSlotsStayApart() {
        checkStreams(run(count: 200, rounds: 8, maxFlows: 100_000, reopenEvery: 5))
        // Fewer slots than flows: the least recent are evicted and their slots reused.
        let evicting = run(count: 200, rounds: 8, maxFlows: 40, reopenEvery: 7)
        checkStreams(evicting)
        #expect((evicting.reassembler.statistics.flowsClosed[.evicted] ?? 0) > 100)
    }
}
