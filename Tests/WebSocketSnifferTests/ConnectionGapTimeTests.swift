import Testing
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

/// Frames that a connection's dissector holds after a gap (while it looks for where frames start
/// again) carry the time of the delivery that completed them, as they would without the gap.
@Suite struct ConnectionGapTimeTests {
    static let client = Build.client4
    static let server = Build.server4
    static let key = WebSocketMaskingKey(9, 8, 7, 6)

    /// (text or opcode name, time) of every frame of the client's direction.
    static func frameTimes(_ deliveries: [(bytes: [UInt8]?, gap: Int, time: Double)]) -> [String] {
        let c = WebSocketConnectionDissector(id: 1, first: client, second: server, clientIsFirst: nil, time: 0,
                                             configuration: .init(maxPayloadShown: nil), webSocketPorts: [Int(Build.server4.port)])
        var out: [String] = []
        let collect: (SniffEvent) -> Void = { event in
            if case .frame(_, .clientToServer, let time, let f, _) = event {
                out.append("\(f.text.map { String(decoding: $0, as: UTF8.self) } ?? f.header.opcode.name)@\(time)")
            }
        }
        for d in deliveries {
            if let bytes = d.bytes {
                bytes.withUnsafeBytes { c.data(from: client, $0, time: d.time, emit: collect) }
            } else {
                c.gap(from: client, missing: d.gap, time: d.time, emit: collect)
            }
        }
        c.close(reason: "fin", time: 99, emit: collect)
        return out
    }

    func text(_ s: String) -> [UInt8] { WebSocketFrameEncoder.encode(.text(s, maskingKey: Self.key)) }

    /// A gap ends inside a 300-byte frame; the six messages after it come one delivery each, a
    /// second apart. Five chained headers are needed before any is let out (at second 7, when the
    /// fifth arrives), but each keeps its own delivery's time (without the mapping, four of them
    /// would say 7).
    @Test func framesLetOutAfterAGapKeepTheirDeliveryTime() {
        let interrupted = text(String(repeating: "payload of the frame the gap ends in. ", count: 8))
        let cut = interrupted.count - 200
        var deliveries: [(bytes: [UInt8]?, gap: Int, time: Double)] = [(text("one"), 0, 1), (nil, cut, 2),
                                                                         (Array(interrupted[cut...]), 0, 2)]
        for (i, word) in ["three", "four", "five", "six", "seven", "eight"].enumerated() {
            deliveries.append((text(word), 0, Double(3 + i)))
        }
        #expect(Self.frameTimes(deliveries) == ["one@1.0", "three@3.0", "four@4.0", "five@5.0", "six@6.0", "seven@7.0", "eight@8.0"])
    }

    /// Without a gap, times are as delivered (the mapping is not in the way).
    @Test func framesWithoutAGapKeepTheirDeliveryTime() {
        let deliveries: [(bytes: [UInt8]?, gap: Int, time: Double)] = [(text("a"), 0, 1), (text("b") + text("c"), 0, 2)]
        #expect(Self.frameTimes(deliveries) == ["a@1.0", "b@2.0", "c@2.0"])
    }
}
