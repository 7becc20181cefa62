import Foundation
import Testing

/// tshark as an oracle: on every fixture, `tshark -Y websocket -T fields -e websocket.opcode -e
/// websocket.payload.text …` and `wsctl sniff --frames --json` agree on every frame's opcode and FIN
/// bit, per connection and direction, and on the text of every unfragmented text frame tshark shows.
///
/// tshark is run with `-o tcp.reassemble_out_of_order:TRUE` (reordered.pcap, the overlapping
/// retransmission in duplicated.pcap) and `-d tcp.port==P,websocket` where the truth gives a port for a
/// capture without handshake. tshark's own limits are allowed for: it does not resynchronise after a
/// lost segment (gap.pcap: its frames in that direction must be a prefix of wsctl's), it shows no
/// text for fragmented messages, it does not inflate every permessage-deflate variant (compressed
/// frames are compared where tshark shows a text), and it cuts very long texts (a prefix of wsctl's).
@Suite("Sniff agrees with tshark", .enabled(if: SniffTshark.problem == nil, Comment(rawValue: SniffTshark.problem ?? "")),
       .timeLimit(.minutes(3)))
struct SniffTsharkOracleTests {
    @Test(arguments: SniffFixtures.all)
    func framesAndTextsAgree(_ name: String) throws {
        let truth = try SniffFixtures.truth(name)
        let tshark = try SniffTshark.frames(name, truth)
        let wsctl = try SniffTshark.wsctlFrames(name)
        let gapDirection: String? = {
            guard truth["perturbation"]["kind"].string == "gap",
                  let c = truth["connections"].array.first(where: { $0["id"].int == truth["perturbation"]["connection"].int })
            else { return nil }
            let client = "\(c["client"]["port"].int ?? 0)>\(c["server"]["port"].int ?? 0)"
            let server = "\(c["server"]["port"].int ?? 0)>\(c["client"]["port"].int ?? 0)"
            return truth["perturbation"]["direction"].string == "client" ? client : server
        }()
        #expect(!wsctl.isEmpty || name == "refused", "wsctl printed no frames")
        #expect(Set(tshark.keys) == Set(wsctl.keys), "directions: tshark \(tshark.keys.sorted()), wsctl \(wsctl.keys.sorted())")
        var m = Mismatches()
        var texts = 0
        for key in Set(tshark.keys).union(wsctl.keys).sorted() {
            let t = tshark[key] ?? [], w = wsctl[key] ?? []
            let tHeaders = t.map { "\($0.opcode)/\($0.fin ? 1 : 0)" }, wHeaders = w.map { "\($0.opcode)/\($0.fin ? 1 : 0)" }
            if key == gapDirection {
                if !(tHeaders.count <= wHeaders.count && Array(wHeaders.prefix(tHeaders.count)) == tHeaders) {
                    m.add("\(key): tshark's frames are not a prefix of wsctl's: \(tHeaders) vs \(wHeaders)")
                }
            } else if tHeaders != wHeaders {
                m.add("\(key): opcode/fin per frame differ: tshark \(tHeaders.count) frames \(tHeaders), wsctl \(wHeaders.count) \(wHeaders)")
                continue
            }
            for (i, (tf, wf)) in zip(t, w).enumerated() {
                guard wf.opcode == 1, wf.fin, let wtext = wf.text else { continue }
                guard let ttext = tf.text else {
                    if !wf.compressed && !wtext.isEmpty { m.add("\(key) frame \(i): tshark shows no text, wsctl \(wtext.prefix(60))") }
                    continue
                }
                texts += 1
                let escaped = SniffTshark.escape(wtext)
                if ttext != escaped && !(escaped.utf8.count > 65_535 && escaped.hasPrefix(ttext)) {
                    m.add("\(key) frame \(i): text differs: tshark \(ttext.prefix(80)) (\(ttext.count)), wsctl \(escaped.prefix(80)) (\(escaped.count))")
                }
            }
        }
        #expect(m.count == 0, m.report)
        if ["basic", "deflate", "envelopes", "concurrent"].contains(name) {
            #expect(texts > 5, "only \(texts) texts compared")
        }
    }
}

extension SniffTsharkOracleTests {
    /// Every header field of every frame, and what tshark decodes of control frames: FIN, the three
    /// RSV bits, opcode, MASK, the payload length (from the 7-bit field or its 16- or 64-bit
    /// extension), the masking key, ping and pong payloads, close status code and reason. tshark's
    /// JSON output (`-T json --no-duplicate-keys`) keeps each frame's fields together, even with
    /// several frames in one packet.
    @Test(arguments: SniffFixtures.all)
    func headerFieldsAndControlPayloadsAgree(_ name: String) throws {
        let truth = try SniffFixtures.truth(name)
        let tshark = try SniffTshark.frameFields(name, truth)
        let wsctl = try SniffTshark.wsctlFrameFields(name)
        let gap = truth["perturbation"]["kind"].string == "gap"
        #expect(Set(tshark.keys) == Set(wsctl.keys), "directions: tshark \(tshark.keys.sorted()), wsctl \(wsctl.keys.sorted())")
        var m = Mismatches()
        var compared = 0
        for key in Set(tshark.keys).intersection(wsctl.keys).sorted() {
            let t = tshark[key]!, w = wsctl[key]!
            // A gap: tshark stops at it in that direction (checked in framesAndTextsAgree).
            if t.count != w.count && !(gap && t.count < w.count) {
                m.add("\(key): tshark shows \(t.count) frames, wsctl \(w.count)")
            }
            for (i, (tf, wf)) in zip(t, w).enumerated() where tf != wf {
                m.add("\(key) frame \(i + 1):\n  tshark \(tf)\n  wsctl  \(wf)")
            }
            compared += min(t.count, w.count)
        }
        #expect(m.count == 0, m.report)
        #expect(compared > 0 || name == "refused", "no frames compared")
    }
}

enum SniffTshark {
    static let tshark = Interop.which("tshark")

    static let problem: String? = {
        guard let tshark else { return "tshark is not installed (apt-get install tshark)" }
        guard let r = Interop.probe(tshark, ["-G", "fields"]) else { return "tshark -G fields did not answer" }
        for field in ["websocket.opcode", "websocket.fin", "websocket.payload.text"] where !r.output.contains("\t\(field)\t") {
            return "this tshark has no field \(field)"
        }
        return nil
    }()

    struct Frame {
        var opcode: Int
        var fin: Bool
        var text: String?
        var compressed = false
    }

    /// tshark's frames by direction ("srcport>dstport"). Text is kept only for packets with one
    /// WebSocket frame, where it cannot belong to another frame.
    static func frames(_ name: String, _ truth: JSON) throws -> [String: [Frame]] {
        var arguments = ["-r", SniffFixtures.path(name), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "websocket",
                         "-T", "fields", "-E", "aggregator=\u{1f}", "-E", "occurrence=a",
                         "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "websocket.opcode", "-e", "websocket.fin",
                         "-e", "websocket.payload.text"]
        for port in truth["perturbation"]["sniff_port"].array.compactMap(\.int) {
            arguments += ["-d", "tcp.port==\(port),websocket"]
        }
        var out: [String: [Frame]] = [:]
        for line in try run(name, arguments).split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5 else { throw CLIError("tshark line with \(fields.count) fields: \(line.prefix(200))") }
            let opcodes = fields[2].split(separator: "\u{1f}").compactMap { Int($0) }
            let fins = fields[3].split(separator: "\u{1f}").map { $0 == "1" || $0.lowercased() == "true" }
            let text: String? = opcodes.count == 1 && !fields[4].isEmpty ? fields[4] : nil
            for (op, fin) in zip(opcodes, fins) {
                out["\(fields[0])>\(fields[1])", default: []].append(Frame(opcode: op, fin: fin, text: text))
            }
        }
        return out
    }

    /// wsctl's frames by direction, from `sniff --frames --json --full`; an unfragmented text frame
    /// carries its message's text (inflated if compressed).
    static func wsctlFrames(_ name: String) throws -> [String: [Frame]] {
        let out = try SniffFixtures.sniff(name, ["--frames"])
        let keys = directionKeys(out)
        var messages: [String: JSON] = [:]
        for m in out.kind("message") {
            messages["\(m["connection"].int ?? 0) \(m["direction"].string ?? "") \(m["offset"].int ?? -1)"] = m
        }
        var result: [String: [Frame]] = [:]
        for f in out.kind("frame") {
            guard let id = f["connection"].int, let key = keys(f), let op = f["opcode"].int else { continue }
            let direction = f["direction"].string ?? ""
            var frame = Frame(opcode: op, fin: f["fin"].bool ?? false, text: nil, compressed: f["rsv1"].bool ?? false)
            if op == 1 && frame.fin, let m = messages["\(id) \(direction) \(f["offset"].int ?? -1)"] {
                frame.text = m["text"].string ?? m["inflated_text"].string
            }
            result[key, default: []].append(frame)
        }
        return result
    }

    /// One frame's fields as both sides are compared: `fin rsv opcode mask length [key] [payload]`.
    static func describe(fin: Bool, rsv: Int, opcode: Int, masked: Bool, length: Int, key: String?,
                         control: String?) -> String {
        "fin=\(fin ? 1 : 0) rsv=\(rsv) opcode=\(opcode) mask=\(masked ? 1 : 0) length=\(length)"
            + (key.map { " key=\($0)" } ?? "") + (control.map { " \($0)" } ?? "")
    }

    /// tshark's frames by direction ("srcport>dstport"), each described by `describe`.
    static func frameFields(_ name: String, _ truth: JSON) throws -> [String: [String]] {
        var arguments = ["-r", SniffFixtures.path(name), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "websocket",
                         "-T", "json", "--no-duplicate-keys"]
        for port in truth["perturbation"]["sniff_port"].array.compactMap(\.int) {
            arguments += ["-d", "tcp.port==\(port),websocket"]
        }
        let stdout = try run(name, arguments)
        var out: [String: [String]] = [:]
        for packet in try JSON(parsing: stdout).array {
            let layers = packet["_source"]["layers"]
            let key = "\(layers["tcp"]["tcp.srcport"].string ?? "?")>\(layers["tcp"]["tcp.dstport"].string ?? "?")"
            let ws = layers["websocket"]
            for f in ws.value is [Any] ? ws.array : [ws] {
                func number(_ field: String) throws -> Int {
                    let text = try #require(f[field].string, "\(name): a frame without \(field): \(f)")
                    return try #require(text.hasPrefix("0x") ? Int(text.dropFirst(2), radix: 16) : Int(text), "\(field) \(text)")
                }
                var length = try number("websocket.payload_length")
                if length == 126 { length = try number("websocket.payload_length_ext_16") }
                if length == 127 { length = try number("websocket.payload_length_ext_64") }
                let payload = f["websocket.payload"]
                var control: String? = nil
                if let ping = payload["websocket.payload.ping"].string {
                    control = "ping=" + ping.filter { $0 != ":" }
                } else if let pong = payload["websocket.payload.pong"].string {
                    control = "pong=" + pong.filter { $0 != ":" }
                } else if let code = payload["websocket.payload.close"]["websocket.payload.close.status_code"].string {
                    control = "close=\(code) reason=\(payload["websocket.payload.close"]["websocket.payload.close.reason"].string ?? "")"
                }
                out[key, default: []].append(describe(
                    fin: try number("websocket.fin") == 1, rsv: try number("websocket.rsv"), opcode: try number("websocket.opcode"),
                    masked: try number("websocket.mask") == 1, length: length,
                    key: f["websocket.masking_key"].string.map { $0.filter { $0 != ":" } }, control: control))
            }
        }
        return out
    }

    /// wsctl's frames by direction, from `sniff --frames --json --full`, described as tshark's are.
    static func wsctlFrameFields(_ name: String) throws -> [String: [String]] {
        let out = try SniffFixtures.sniff(name, ["--frames"])
        let keys = directionKeys(out)
        var result: [String: [String]] = [:]
        for f in out.kind("frame") {
            guard let key = keys(f), let opcode = f["opcode"].int else { continue }
            let hex = f["payload_hex"].string ?? ""
            var control: String? = nil
            if opcode == 9 && !hex.isEmpty { control = "ping=" + hex }
            if opcode == 10 && !hex.isEmpty { control = "pong=" + hex }
            if opcode == 8, let code = f["close_code"].int { control = "close=\(code) reason=\(f["close_reason"].string ?? "")" }
            let rsv = (f["rsv1"].bool == true ? 4 : 0) | (f["rsv2"].bool == true ? 2 : 0) | (f["rsv3"].bool == true ? 1 : 0)
            result[key, default: []].append(describe(
                fin: f["fin"].bool ?? false, rsv: rsv, opcode: opcode, masked: f["masked"].bool ?? false,
                length: f["payload_length"].int ?? -1, key: f["masking_key"].string, control: control))
        }
        return result
    }

    /// Runs tshark on a fixture and returns its stdout (it exits 2 on the truncated capture, after
    /// printing what it read).
    static func run(_ name: String, _ arguments: [String]) throws -> String {
        let tshark = try #require(tshark)
        let child = try ChildProcess(executable: tshark, arguments: arguments)
        guard let status = child.waitForExit(timeout: 40) else {
            child.stop(timeout: 2)
            throw CLIError("tshark on \(name) still running after 40 s")
        }
        if status != 0 && name != "truncated" { throw CLIError("tshark exited \(status): \(child.stderr)") }
        return child.stdout
    }

    /// For a frame or message line of `out`: its direction as tshark's port pair ("srcport>dstport"),
    /// from the connection's client and server; nil for a connection without them.
    static func directionKeys(_ out: SniffOutput) -> (JSON) -> String? {
        var ports: [Int: (client: String, server: String)] = [:]
        for e in out.events where e["kind"].string == "handshake" || e["kind"].string == "connection_closed" {
            guard let id = e["connection"].int, let c = e["client"].string, let s = e["server"].string else { continue }
            ports[id] = (String(c.split(separator: ":").last ?? ""), String(s.split(separator: ":").last ?? ""))
        }
        return { f in
            guard let id = f["connection"].int, let p = ports[id] else { return nil }
            return f["direction"].string == "client" ? "\(p.client)>\(p.server)" : "\(p.server)>\(p.client)"
        }
    }

    /// How tshark's field output writes a string: backslash, newline, carriage return and tab escaped.
    static func escape(_ s: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
