import Testing
@testable import WebSocketSniffer

/// `TCPReassembler.process` takes its common case (the next bytes in order of an open direction,
/// or an ACK) on a path of its own. That path must say and do exactly what the general one does:
/// random traffic (handshakes, data in order, reordered, repeated and overlapping, ACKs of bytes
/// not seen yet, FINs, RSTs, bytes cut by the snapshot length, idle spells, ports reused, a table
/// small enough to evict) goes through two reassemblers, one with the path and one without, and
/// after every segment both must have returned the same flow, reported the same events at the
/// same times and kept the same counters.
@Suite("TCP reassembly: the in-order path")
struct ReassemblyFastPathTests {
    /// What one direction of a generated connection has sent so far.
    struct Sender {
        var initial: UInt32
        var sent = 0
        /// Bytes skipped by segments sent ahead of them, still to be sent.
        var holes: [Range<Int>] = []
    }

    struct Connection {
        var client: TCPEndpoint
        var server: TCPEndpoint
        var senders: [Sender]
    }

    static func record(_ event: TCPReassemblyEvent) -> String {
        switch event {
        case .flowOpened(let info): "opened \(info.id) \(info.initiator) \(info.responder) \(info.handshakeSeen) \(info.time) \(info.packetNumber)"
        case .data(let id, let d, let bytes, let offset, let time, let number): "data \(id) \(d) \(Array(bytes)) \(offset) \(time) \(number)"
        case .gap(let id, let d, let missing, let offset, let time, let full): "gap \(id) \(d) \(missing) \(offset) \(time) \(full)"
        case .directionClosed(let id, let d, let time): "fin \(id) \(d) \(time)"
        case .flowClosed(let id, let reason, let time): "closed \(id) \(reason) \(time)"
        }
    }

    /// Runs `packets` segments of random traffic through both reassemblers; returns how many
    /// took the in-order path's conditions (so the test knows it exercised it).
    func compare(seed: UInt64, packets: Int, configuration: TCPReassemblerConfiguration) -> (fast: Int, events: Int) {
        var random = SplitMix(state: seed)
        var fast = TCPReassembler(configuration: configuration)
        var general = TCPReassembler(configuration: configuration)
        general.fastPath = false
        var connections: [Connection] = []
        for i in 0..<4 {
            let v6 = i == 3
            let prefix: UInt64 = 0x2001_0db8 << 32
            let client = TCPEndpoint(address: v6 ? .v6(high: prefix, low: 7) : .v4(0x0A00_0002), port: UInt16(40_000 + i))
            let server = TCPEndpoint(address: v6 ? .v6(high: prefix, low: 1) : .v4(0x0A00_0001), port: 443)
            let first = Sender(initial: UInt32.random(in: 0...UInt32.max, using: &random))
            // Near the wrap of the sequence numbers; for one, its first byte is sequence number 0,
            // which is also where a direction not started yet expects its next byte.
            let second = Sender(initial: i == 2 ? UInt32.max : UInt32.max - UInt32.random(in: 0..<500, using: &random))
            connections.append(Connection(client: client, server: server, senders: [first, second]))
        }
        var time = 1_000.0
        var inOrder = 0
        var eventCount = 0
        for number in 1...packets {
            let c = Int.random(in: 0..<connections.count, using: &random)
            let d = Int.random(in: 0..<10, using: &random) < 6 ? 0 : 1
            let roll = Int.random(in: 0..<100, using: &random)
            var flags: TCPFlags = [.ack]
            var start = connections[c].senders[d].sent
            var length = 0
            var uncaptured = 0
            switch roll {
            case 0..<3:
                // A handshake segment, now and then a new connection on the same ports.
                flags = d == 0 ? [.syn] : [.syn, .ack]
                if Int.random(in: 0..<3, using: &random) == 0 {
                    connections[c].senders[d] = Sender(initial: UInt32.random(in: 0...UInt32.max, using: &random))
                }
                start = -1
            case 3..<5:
                flags.insert(.fin)
                if Int.random(in: 0..<3, using: &random) == 0 {
                    // Ahead of a hole, with nothing held after it.
                    let skip = Int.random(in: 1...20, using: &random)
                    connections[c].senders[d].holes.append(start..<start + skip)
                    start += skip
                }
            case 5..<7:
                flags = Int.random(in: 0..<2, using: &random) == 0 ? [.rst] : [.rst, .ack]
                start += Int.random(in: -2...2, using: &random)
            case 7..<25:
                break  // a pure ACK
            default:
                length = Int.random(in: 1...40, using: &random)
                if Int.random(in: 0..<2, using: &random) == 0 { flags.insert(.psh) }
                switch Int.random(in: 0..<20, using: &random) {
                case 0:
                    // Ahead of a hole.
                    let skip = Int.random(in: 1...60, using: &random)
                    connections[c].senders[d].holes.append(start..<start + skip)
                    start += skip
                case 4..<8 where !connections[c].senders[d].holes.isEmpty:
                    // The start of a hole, exactly: what was held after it may follow in order.
                    let hole = connections[c].senders[d].holes.removeFirst()
                    start = hole.lowerBound
                    length = min(length, hole.count)
                    if length < hole.count { connections[c].senders[d].holes.insert(start + length..<hole.upperBound, at: 0) }
                case 1: start -= min(start, Int.random(in: 1...60, using: &random))  // sent again
                case 2: uncaptured = Int.random(in: 1...10, using: &random)
                case 3: flags.remove(.ack)
                default: break
                }
            }
            if roll >= 3 && Int.random(in: 0..<50, using: &random) == 0 { flags.remove(.ack) }
            let sender = connections[c].senders[d]
            let sequence = sender.initial &+ 1 &+ UInt32(truncatingIfNeeded: start)
            // The peer's bytes, acknowledged as sent, a little short of it, or ahead of what it sent.
            let peer = connections[c].senders[1 - d]
            let ahead = Int.random(in: 0..<8, using: &random) == 0 ? 30 : 0
            let acknowledgedByte = peer.sent + Int.random(in: -20...ahead, using: &random)
            let acknowledged = peer.initial &+ 1 &+ UInt32(truncatingIfNeeded: acknowledgedByte)
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: start + $0 + 31 * d) }
            if flags.contains(.syn) == false, flags.contains(.rst) == false {
                connections[c].senders[d].sent = max(connections[c].senders[d].sent, start + length + uncaptured + (flags.contains(.fin) ? 1 : 0))
            }
            time += Int.random(in: 0..<400, using: &random) == 0 ? configuration.idleTimeout + 1 : Double(Int.random(in: 0...3, using: &random)) / 1_000
            let (from, to) = d == 0 ? (connections[c].client, connections[c].server) : (connections[c].server, connections[c].client)
            let packet = DecodedPacket(
                ipVersion: from.address.version, source: from.address, destination: to.address, sourcePort: from.port,
                destinationPort: to.port, sequenceNumber: sequence, acknowledgmentNumber: acknowledged, flags: flags,
                window: 1_000, payloadRange: 0..<length, uncapturedPayloadLength: uncaptured)
            if flags.isDisjoint(with: [.syn, .fin, .rst]), uncaptured == 0 { inOrder += 1 }
            var saidFast: [String] = []
            var saidGeneral: [String] = []
            let flowFast = fast.process(packet, payload: payload, time: time, packetNumber: number) { saidFast.append(Self.record($0)) }
            let flowGeneral = general.process(packet, payload: payload, time: time, packetNumber: number) { saidGeneral.append(Self.record($0)) }
            #expect(flowFast == flowGeneral, "seed \(seed) packet \(number)")
            #expect(saidFast == saidGeneral, "seed \(seed) packet \(number): \(flags) seq \(sequence)")
            #expect(fast.statistics == general.statistics, "seed \(seed) packet \(number)")
            #expect(fast.trackedFlowCount == general.trackedFlowCount, "seed \(seed) packet \(number)")
            eventCount += saidFast.count
            if saidFast != saidGeneral || fast.statistics != general.statistics { return (inOrder, eventCount) }
        }
        var endFast: [String] = []
        var endGeneral: [String] = []
        fast.finish(time: time) { endFast.append(Self.record($0)) }
        general.finish(time: time) { endGeneral.append(Self.record($0)) }
        #expect(endFast == endGeneral, "seed \(seed) at the end")
        #expect(fast.statistics == general.statistics, "seed \(seed) at the end")
        return (inOrder, eventCount + endFast.count)
    }

    @Test(arguments: 1...12)
    func sameEventsWithAndWithoutTheInOrderPath(seed: Int) {
        let configuration = switch seed % 3 {
        case 0: TCPReassemblerConfiguration()
        case 1: TCPReassemblerConfiguration(maxFlowBuffer: 300, idleTimeout: 2, maxFlows: 2)
        default: TCPReassemblerConfiguration(maxFlowBuffer: 2_000, maxTotalBuffer: 3_000, idleTimeout: 30, maxFlows: 3)
        }
        let (inOrder, events) = compare(seed: UInt64(seed), packets: 4_000, configuration: configuration)
        #expect(inOrder > 2_000)
        #expect(events > 1_000)
    }
}
