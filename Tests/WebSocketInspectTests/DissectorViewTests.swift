import Testing
import WebSocketCodec
import WebSocketCompression
@testable import WebSocketInspect

/// The borrowed records (`FrameRecordView`, `MessageRecordView`) that `sniff` renders without
/// copying: the same content as the owned records, with text exactly as the String-based
/// dissector showed it (`String(validating:)` for frames, `String(decoding:)` of the cut data
/// for messages).
@Suite("Stream dissector views")
struct DissectorViewTests {
    /// Every view, turned into owned records inside the callback, as the owned `feed` does.
    static func records(_ bytes: [UInt8], config: WebSocketDissectorConfiguration, direction: WebSocketDirection? = nil,
                        cuts: [Int] = [], inPlace: Bool = false) -> (frames: [FrameRecord], messages: [MessageRecord], json: [String]) {
        var d = WebSocketStreamDissector(configuration: config, direction: direction)
        var frames: [FrameRecord] = []
        var messages: [MessageRecord] = []
        var json: [String] = []
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            var chunk = Array(bytes[start..<end])
            chunk.withUnsafeMutableBytes { raw in
                let emit = { (event: DissectionEventView) in
                    var out = OutputBuffer()
                    switch event {
                    case .frame(let lent):
                        let f = lent.pointee
                        frames.append(FrameRecord(f))
                        DissectionRenderer.writeJSON(f, to: &out)
                        // The owned record renders the same line as the view it came from.
                        #expect(out.makeLine() == DissectionRenderer.json(FrameRecord(f)))
                    case .message(let lent):
                        let m = lent.pointee
                        messages.append(MessageRecord(m))
                        DissectionRenderer.writeJSON(m, to: &out)
                        #expect(out.makeLine() == DissectionRenderer.json(MessageRecord(m)))
                    case .resync(let r):
                        Issue.record("resync without a gap: \(r)")
                    }
                    json.append(out.makeLine())
                }
                if inPlace { d.feedViews(inPlace: raw, emit) } else { d.feedViews(UnsafeRawBufferPointer(raw), emit) }
            }
            start = end
        }
        return (frames, messages, json)
    }

    /// The rules the String-based dissector applied, checked on every record.
    static func checkTextRules(_ r: (frames: [FrameRecord], messages: [MessageRecord], json: [String])) {
        for f in r.frames where f.header.opcode == .text && !f.header.rsv1 {
            #expect(f.text == String(validating: f.payload, as: UTF8.self), "frame \(f.index)")
        }
        for f in r.frames where f.text != nil {
            #expect(f.text == String(validating: f.payload, as: UTF8.self))
        }
        for m in r.messages where m.text != nil {
            #expect(m.text == String(decoding: m.data, as: UTF8.self), "message \(m.index)")
        }
    }

    @Test func textCutInsideACharacterShowsAsTheOldDecodingDid() {
        let samples = ["ééééééé", "🙂🙂🙂", "a日本語b", "x🙂é日", "plain ascii text"]
        for sample in samples {
            let bytes = WebSocketFrameEncoder.encode(.text(sample, maskingKey: WebSocketMaskingKey(9, 8, 7, 6)))
                + WebSocketFrameEncoder.fragment(opcode: .text, payload: Array(sample.utf8), fragmentSize: 2)
                    .flatMap { WebSocketFrameEncoder.encode($0) }
            for limit in 0...(sample.utf8.count + 1) {
                let r = Self.records(bytes, config: .init(maxPayloadShown: limit))
                #expect(r.messages.count == 2)
                for m in r.messages {
                    let shown = Array(sample.utf8.prefix(limit))
                    #expect(m.data == shown)
                    #expect(m.dataTruncated == (limit < sample.utf8.count))
                    #expect(m.text == String(decoding: shown, as: UTF8.self), "\(sample) cut at \(limit)")
                }
                Self.checkTextRules(r)
            }
        }
    }

    @Test func viewsAgreeWithTheRulesUnderEveryLimitAndChunking() {
        let bytes = DissectorTests.stream()
        var g = Seeded(state: 77)
        for limit in [nil, 0, 1, 2, 3, 5, 16, 64, 256] as [Int?] {
            let whole = Self.records(bytes, config: .init(maxPayloadShown: limit), direction: .clientToServer)
            Self.checkTextRules(whole)
            #expect(whole.messages.count == 7)
            var cuts: [Int] = []
            var at = 0
            while at < bytes.count {
                at += Int.random(in: 1...300, using: &g)
                if at < bytes.count { cuts.append(at) }
            }
            let pieces = Self.records(bytes, config: .init(maxPayloadShown: limit), direction: .clientToServer, cuts: cuts)
            #expect(pieces.json == whole.json)
        }
    }

    /// Parsing in place (sniff's reading thread hands over its own copy) gives the records that
    /// parsing a copy gives, whatever the chunking, and leaves the input unmasked.
    @Test func inPlaceParsingGivesTheSameRecords() {
        let bytes = DissectorTests.stream()
        var g = Seeded(state: 91)
        for limit in [nil, 0, 3, 64] as [Int?] {
            for round in 0..<4 {
                var cuts: [Int] = []
                var at = 0
                while round > 0 && at < bytes.count {
                    at += Int.random(in: 1...(round * 100), using: &g)
                    if at < bytes.count { cuts.append(at) }
                }
                let config = WebSocketDissectorConfiguration(maxPayloadShown: limit)
                let copied = Self.records(bytes, config: config, direction: .clientToServer, cuts: cuts)
                let inPlace = Self.records(bytes, config: config, direction: .clientToServer, cuts: cuts, inPlace: true)
                #expect(inPlace.json == copied.json, "limit \(String(describing: limit)), round \(round)")
                #expect(inPlace.messages.count == 7)
            }
        }
        // The masked payload is unmasked where it lies.
        var frame: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        var d = WebSocketStreamDissector(configuration: .init(), direction: .clientToServer)
        var texts: [String] = []
        frame.withUnsafeMutableBytes { raw in
            d.feedViews(inPlace: raw, { event in
                if case .frame(let f) = event { texts.append(f.pointee.textString ?? "") }
            })
        }
        #expect(texts == ["Hello"])
        #expect(Array(frame[6...]) == Array("Hello".utf8))
    }

    /// A copy of a dissector taken in the middle of a frame carries on by itself: its parser and
    /// assembler are its own (copied when it is next fed), not the original's.
    @Test func aCopyTakenMidFrameIsIndependent() {
        let bytes = DissectorTests.stream()
        func feed(_ d: inout WebSocketStreamDissector, _ part: ArraySlice<UInt8>) -> [String] {
            var lines: [String] = []
            Array(part).withUnsafeBytes { raw in
                d.feedViews(raw, { event in
                    var out = OutputBuffer()
                    switch event {
                    case .frame(let lent):
                        let f = lent.pointee
                        DissectionRenderer.writeJSON(f, to: &out)
                    case .message(let lent):
                        let m = lent.pointee
                        DissectionRenderer.writeJSON(m, to: &out)
                    case .resync(let r): Issue.record("resync without a gap: \(r)")
                    }
                    lines.append(out.makeLine())
                })
            }
            return lines
        }
        for cut in stride(from: 1, to: bytes.count, by: max(1, bytes.count / 23)) {
            var original = WebSocketStreamDissector(configuration: .init(), direction: .clientToServer)
            let before = feed(&original, bytes[..<cut])
            var copy = original
            let rest = feed(&original, bytes[cut...])
            // The copy, fed the same rest after the original went on, gives the same records.
            let restOfCopy = feed(&copy, bytes[cut...])
            #expect(restOfCopy == rest, "cut at \(cut)")
            var whole = WebSocketStreamDissector(configuration: .init(), direction: .clientToServer)
            #expect(before + rest == feed(&whole, bytes[...]), "cut at \(cut)")
        }
    }

    @Test func mutatedStreamsFollowTheTextRules() {
        var g = Seeded(state: 4242)
        let valid = DissectorTests.stream()
        for round in 0..<200 {
            var bytes = Array(valid.prefix(Int.random(in: 0...valid.count, using: &g)))
            for _ in 0..<Int.random(in: 1...10, using: &g) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
            }
            let config = WebSocketDissectorConfiguration(maxPayloadShown: [3, 7, 40, nil][round % 4], maxInflatedSize: 1 << 20)
            Self.checkTextRules(Self.records(bytes, config: config))
        }
    }

    @Test func wholeFramesAreShownWithoutCopying() {
        // The view of an unfragmented frame points into the bytes being parsed, and its message
        // view at the same bytes: nothing is copied for the common case.
        var d = WebSocketStreamDissector(configuration: .init(maxPayloadShown: nil))
        var addresses: [UnsafeRawPointer?] = []
        WebSocketFrameEncoder.encode(.text("hello there")).withUnsafeBytes { raw in
            d.feedViews(raw, { event in
                switch event {
                case .frame(let lent):
                    let f = lent.pointee
                    addresses.append(f.payload.baseAddress)
                case .message(let lent):
                    let m = lent.pointee
                    addresses.append(m.data.baseAddress)
                case .resync(let r): Issue.record("resync without a gap: \(r)")
                }
            })
        }
        #expect(addresses.count == 2)
        #expect(addresses[0] != nil && addresses[0] == addresses[1])
    }

    /// The frame and message lines write their keys up to the text as runs of pieces into room
    /// reserved once per run (`OutputBuffer.put`, which checks the room in debug builds, as the
    /// tests are built). Each line here, as it is and with every number at its longest, is written into buffers of every starting capacity up to
    /// past its length, so that the buffer's end falls at every place in the line: a run that
    /// outgrew the room reserved for it stops the tests there. Lines: the longest flag run (all
    /// false), a continuation and a reserved opcode, masked, fragmented, with violations; each
    /// with the keys `sniff` writes before them, and with none.
    @Test func linesFitTheRoomReservedForTheirRuns() {
        let key = WebSocketMaskingKey(1, 2, 3, 4)
        var bytes: [UInt8] = []
        bytes += WebSocketFrameEncoder.encode(WebSocketFrame(fin: false, opcode: .text, maskingKey: key, payload: Array("héllo \"there\"".utf8)))
        bytes += WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: .continuation, maskingKey: key, payload: Array(" again".utf8)))
        bytes += WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: .binary, maskingKey: key, payload: Array(repeating: 0xAB, count: 300)))
        bytes += WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: .ping, maskingKey: key, payload: [1, 2]))
        bytes += WebSocketFrameEncoder.encode(WebSocketFrame(fin: false, rsv1: true, rsv2: true, rsv3: true, opcode: WebSocketOpcode(rawValue: 0xB)!, payload: [9]))
        bytes += WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: WebSocketOpcode(rawValue: 0x3)!, maskingKey: key, payload: [7, 7]))
        let r = Self.records(bytes, config: .init(), direction: .clientToServer)
        #expect(r.frames.count == 6 && r.messages.count >= 2)
        let extras: [(inout OutputBuffer) -> Void] = [
            { _ in },
            { w in
                w.jsonInt("connection", Int.max)
                w.jsonKey("direction")
                w.jsonLiteral("\"client\"")
                w.jsonSeconds("time", 1_790_000_000.000_287)
            },
        ]
        // Each line as it is, and with every number at its longest (a sign and 19 digits, or 20).
        func longest(_ f: FrameRecordView) -> FrameRecordView {
            var f = f
            f.index = Int.min
            f.offset = Int.min
            f.header.payloadLength = UInt64.max
            f.header.headerLength = Int.min
            return f
        }
        func longest(_ m: MessageRecordView) -> MessageRecordView {
            var m = m
            m.index = Int.min
            m.offset = Int.min
            m.endOffset = Int.min
            m.fragmentCount = Int.min
            m.length = Int.min
            m.dataLength = Int.min
            return m
        }
        var checked = 0
        /// One line, written by `write` as it is and lengthened, into buffers of every capacity;
        /// `marker` is a key whose number shows whether it was lengthened.
        func check(_ marker: String, _ write: (inout OutputBuffer, _ lengthen: Bool) -> Void) {
            for lengthen in [false, true] {
                var reference = OutputBuffer(capacity: 4096)
                write(&reference, lengthen)
                let whole = reference.makeString()
                #expect(whole.contains(lengthen ? "\"\(marker)\":\(Int.min)," : "\"\(marker)\":"))
                for capacity in 1...(whole.utf8.count + 8) {
                    var out = OutputBuffer(capacity: capacity)
                    write(&out, lengthen)
                    #expect(out.makeString() == whole)
                    checked += 1
                }
            }
        }
        for extra in extras {
            for f in r.frames {
                check("offset") { out, lengthen in
                    f.withView { DissectionRenderer.writeJSON(lengthen ? longest($0) : $0, to: &out, extra: extra) }
                }
            }
            for m in r.messages {
                check("data_length") { out, lengthen in
                    m.withView { DissectionRenderer.writeJSON(lengthen ? longest($0) : $0, to: &out, extra: extra) }
                }
            }
        }
        #expect(checked > 10_000)
    }
}
