import Foundation
import Testing
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

/// Frame headers that announce lengths near 2^63 and 2^64 (which no stream can hold, and which
/// added to a stream offset overflow an Int): the frame is shown as far as it arrived, with the
/// time of the packet that brought it, and nothing traps. Found by fuzzing damaged captures.
@Suite struct HostileLengthTests {
    /// A server-to-client binary frame header with a 64-bit length field of `length`.
    static func header(length: UInt64) -> [UInt8] {
        [0x82, 0x7F] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) }
    }

    @Test(arguments: [UInt64(Int.max), UInt64(Int.max) - 9, UInt64(Int.max) - 100, 1 << 63, UInt64.max])
    func aLengthThatOverflowsAnOffsetIsShownAsFarAsItCame(length: UInt64) {
        let session = SniffSession(configuration: SniffConfiguration(webSocketPorts: [Int(Build.server4.port)]))
        var frames: [(time: Double, record: FrameRecord)] = []
        var messages: [MessageRecord] = []
        let collect: (SniffEvent) -> Void = { event in
            if case .frame(_, _, let t, let f, _) = event { frames.append((t, FrameRecord(f))) }
            if case .message(_, _, _, let m, _) = event { messages.append(MessageRecord(m)) }
        }
        // A small frame first, so that the hostile one starts at a stream offset above 0.
        let first = WebSocketFrameEncoder.encode(.binary([1, 2, 3]))
        let stream = first + Self.header(length: length) + [UInt8](repeating: 0x42, count: 40)
        let segments = [Array(stream[..<20]), Array(stream[20...])]
        // The TCP handshake first, so the stream's first byte is known to start a frame (a
        // connection picked up in its middle is searched for frame starts instead, and a hostile
        // header is no start).
        let handshake = [
            Build.ipv4(from: Build.client4.address, to: Build.server4.address,
                       payload: Build.tcp(from: Build.client4, to: Build.server4, seq: 100, flags: [.syn])),
            Build.ipv4(from: Build.server4.address, to: Build.client4.address,
                       payload: Build.tcp(from: Build.server4, to: Build.client4, seq: 4_999, ack: 101, flags: [.syn, .ack])),
        ]
        for packet in handshake {
            _ = packet.withUnsafeBytes { raw in
                session.process(PcapPacket(number: 0, seconds: 1_999, nanoseconds: 0, wireLength: raw.count, data: raw), linkType: PcapLinkType.raw, emit: collect)
            }
        }
        var seq: UInt32 = 5_000
        for (n, payload) in segments.enumerated() {
            let packet = Build.ipv4(from: Build.server4.address, to: Build.client4.address,
                                    payload: Build.tcp(from: Build.server4, to: Build.client4, seq: seq, flags: [.psh, .ack], payload: payload))
            seq &+= UInt32(payload.count)
            packet.withUnsafeBytes { raw in
                let p = PcapPacket(number: n + 1, seconds: 2_000 + Int64(n), nanoseconds: 0, wireLength: raw.count, data: raw)
                session.process(p, linkType: PcapLinkType.raw, emit: collect)
            }
        }
        session.finish(emit: collect)
        #expect(frames.count == 2, "\(frames.map(\.record))")
        guard frames.count == 2 else { return }
        #expect(frames[0].record.payload == [1, 2, 3] && frames[0].time == 2_000)
        let hostile = frames[1].record
        #expect(hostile.header.payloadLength == length)
        #expect(hostile.offset == first.count)
        #expect(hostile.payload.allSatisfy { $0 == 0x42 })
        if length >> 63 == 0 {
            // Over the frame size limit, but followed to the end of the stream: all 40 bytes, at
            // the time of the last packet.
            #expect(hostile.incomplete && hostile.payload.count == 40 && hostile.violations.map(\.rule) == [.frameTooLarge])
            #expect(frames[1].time == 2_001)
            // Its message too, as far as it came.
            #expect(messages.count == 2 && messages.last?.incomplete == true && messages.last?.data.count == 40)
        } else {
            // The top bit set is a violation that ends the parse: shown at once, without payload.
            #expect(hostile.violations.map(\.rule) == [.lengthTopBitSet] && hostile.payload.isEmpty)
            #expect(frames[1].time == 2_000)
            // It starts no message: the stream's end finds none unfinished to show (an empty
            // "incomplete" message was shown, and counted, for the payload that never came).
            #expect(messages.count == 1 && messages.first?.data == [1, 2, 3], "\(messages)")
            #expect(session.summaries.first?.messages.values.reduce(0, +) == 1)
        }
    }
}
