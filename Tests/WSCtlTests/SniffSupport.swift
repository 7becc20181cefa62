import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The capture fixtures in Fixtures/captures (each `X.pcap` with its `X.truth.json`) and helpers to
/// run `wsctl sniff` on them and compare its JSON Lines with the ground truth.
enum SniffFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/captures")

    /// Every fixture that has both a capture and a truth file, by name (`basic`, `gap`, …).
    static let all: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".truth.json") }
            .map { String($0.dropLast(".truth.json".count)) }
            .filter { files.contains("\($0).pcap") }
            .sorted()
    }()

    /// Fixtures whose truth lists every message of every connection as it is on the wire (the gap
    /// fixture lists a message that cannot be complete, so it has its own test).
    static var complete: [String] { all.filter { $0 != "gap" } }

    static func path(_ name: String) -> String { directory.appendingPathComponent("\(name).pcap").path }

    /// Runs one of the capture generators in this directory (python3) and returns the JSON line it
    /// prints about what it wrote.
    static func generate(_ script: String, _ arguments: [String]) async throws -> JSON {
        let path = directory.appendingPathComponent(script).path
        let (status, stdout, stderr) = try await offThePool {
            let child = try ChildProcess(executable: Interop.python!, arguments: [path] + arguments)
            let status = child.waitForExit(timeout: 60)
            return (status, child.stdout, child.stderr)
        }
        try #require(status == 0, "\(script): \(stderr)")
        return JSON(try JSONSerialization.jsonObject(with: Data(stdout.utf8)))
    }

    static func truth(_ name: String) throws -> JSON {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name).truth.json"))
        return JSON(try JSONSerialization.jsonObject(with: data))
    }

    /// `--port P` for captures whose truth says which port speaks WebSocket without a handshake.
    static func portArguments(_ truth: JSON) -> [String] {
        truth["perturbation"]["sniff_port"].array.compactMap(\.int).flatMap { ["--port", String($0)] }
    }

    /// Where each record of a little-endian microsecond pcap file starts, and its time.
    static func pcapRecords(_ bytes: [UInt8]) -> [(start: Int, time: Double)] {
        func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
        var records: [(start: Int, time: Double)] = []
        var at = 24
        while at + 16 <= bytes.count {
            records.append((at, Double(u32(at)) + Double(u32(at + 4)) / 1e6))
            at += 16 + u32(at + 8)
        }
        return records
    }

    /// `wsctl sniff -r FIXTURE --json --full [--port P] EXTRA…`.
    static func sniff(_ name: String, _ extra: [String] = []) throws -> SniffOutput {
        let truth = try truth(name)
        return try SniffOutput.run(["sniff", "-r", path(name), "--json", "--full"] + portArguments(truth) + extra)
    }
}

/// The JSON Lines of one `wsctl sniff --json` run, with accessors by connection and direction.
struct SniffOutput {
    let result: CLIResult
    let events: [JSON]

    static func run(_ arguments: [String], stdin: [UInt8]? = nil) throws -> SniffOutput {
        let result = try CLI.run(arguments, stdin: stdin)
        return try SniffOutput(result: result)
    }

    init(result: CLIResult) throws {
        self.result = result
        events = try CLI.jsonLines(result.stdout).map { JSON($0) }
    }

    func kind(_ k: String) -> [JSON] { events.filter { $0["kind"].string == k } }

    /// The connection numbers sniff reported (from handshake and connection-closed events), in order.
    var connectionIDs: [Int] {
        var seen: [Int] = []
        for e in events where ["handshake", "connection_closed"].contains(e["kind"].string ?? "") {
            if let id = e["connection"].int, !seen.contains(id) { seen.append(id) }
        }
        return seen
    }

    /// The connection whose client endpoint is `client` (such as `127.0.0.1:37862` or `[::1]:40846`).
    func connection(client: String) -> Int? {
        events.first {
            ["handshake", "connection_closed"].contains($0["kind"].string ?? "") && $0["client"].string == client
        }?["connection"].int
    }

    func events(_ kind: String, connection: Int, direction: String? = nil) -> [JSON] {
        events.filter {
            $0["kind"].string == kind && $0["connection"].int == connection
                && (direction == nil || $0["direction"].string == direction)
        }
    }

    func handshake(connection: Int) -> JSON? { events("handshake", connection: connection).first }
    func closed(connection: Int) -> JSON? { events("connection_closed", connection: connection).first }

    /// The data messages of one connection and direction as comparable records.
    func messageRecords(connection: Int, direction: String) -> [String] {
        events("message", connection: connection, direction: direction).map { m in
            "\(m["opcode_name"].string ?? "?") \(m["data_length"].int ?? -1) B fragments=\(m["fragments"].int ?? -1) "
                + "compressed=\(m["compressed"].bool ?? false) sha256=\(SHA256Digest.hex(hexBytes(m["payload_hex"].string ?? "")))"
        }
    }

    /// Control frames (ping, pong, close) of one connection in output order.
    func controlRecords(connection: Int) -> [String] {
        events("frame", connection: connection).filter { [8, 9, 10].contains($0["opcode"].int ?? 0) }.map { f in
            "\(f["direction"].string ?? "?") \(f["opcode_name"].string ?? "?") \(f["payload_hex"].string ?? "")"
        }
    }
}

/// Collected mismatches, reported together so that one run shows every difference.
struct Mismatches {
    private(set) var items: [String] = []
    mutating func add(_ s: String) { items.append(s) }
    mutating func check<T: Equatable>(_ what: @autoclosure () -> String, _ actual: T, _ expected: T) {
        if actual != expected { items.append("\(what()): got \(actual), expected \(expected)") }
    }
    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var report: Comment {
        let shown = items.prefix(40).joined(separator: "\n")
        return Comment(rawValue: items.count > 40 ? shown + "\n… and \(items.count - 40) more" : shown)
    }
}

/// Compares sniff's output with a truth file's connections.
enum TruthComparison {
    static let opcodeNumbers = ["continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10]

    /// Every difference between `out` and `truth` (connections, handshakes, messages, control frames,
    /// closes, violations). `only` limits the check to some truth connection ids; `skipDirections`
    /// leaves out the messages and violations of a direction (the one with a gap in gap.pcap).
    static func mismatches(_ out: SniffOutput, _ truth: JSON, only: Set<Int>? = nil,
                           skipDirections: Set<String> = []) -> Mismatches {
        var m = Mismatches()
        let connections = truth["connections"].array
        if only == nil {
            m.check("number of connections", out.connectionIDs.count, connections.count)
        }
        for c in connections {
            guard let tid = c["id"].int, only?.contains(tid) ?? true else { continue }
            let clientText = c["client"]["text"].string ?? "?"
            guard let id = out.connection(client: clientText) else {
                m.add("connection \(tid) (client \(clientText)): not reported")
                continue
            }
            let label = "connection \(tid) (#\(id), \(clientText))"
            if let closed = out.closed(connection: id) {
                m.check("\(label) server", closed["server"].string, c["server"]["text"].string)
                if (c["tcp_end"].string ?? "").contains("RST") {
                    m.check("\(label) end reason", closed["reason"].string, "rst")
                }
            } else {
                m.add("\(label): no connection_closed event")
            }
            compareHandshake(&m, label, out.handshake(connection: id), c["handshake"])
            for direction in ["client", "server"] where !skipDirections.contains(direction) {
                compareMessages(&m, "\(label) \(direction)", out.events("message", connection: id, direction: direction),
                                c["messages"].array.filter { $0["direction"].string == direction })
            }
            compareControl(&m, label, out, id, c["control"].array)
            compareClose(&m, label, out, id, c["close"])
            for e in out.events.filter({ $0["connection"].int == id && !$0["errors"].array.isEmpty
                && !skipDirections.contains($0["direction"].string ?? "") }) {
                m.add("\(label): unexpected violation on \(e["kind"].string ?? "?") \(e["index"].int ?? -1) \(e["direction"].string ?? ""): \(e["errors"])")
            }
        }
        return m
    }

    static func compareHandshake(_ m: inout Mismatches, _ label: String, _ h: JSON?, _ t: JSON) {
        guard !t.isNull else {
            if h != nil { m.add("\(label): handshake reported where the capture has none") }
            return
        }
        guard let h else {
            m.add("\(label): no handshake event")
            return
        }
        let request = (h["request"].string ?? "").split(separator: " ").map(String.init)
        m.check("\(label) request path", request.count == 3 ? request[1] : "?", t["path"].string ?? "")
        m.check("\(label) host", h["host"].string, t["host"].string)
        m.check("\(label) origin", h["origin"].string, t["origin"].string)
        m.check("\(label) key", h["key"].string, t["key"].string)
        m.check("\(label) offered subprotocols", h["offered_subprotocols"].strings, t["offered_subprotocols"].strings)
        m.check("\(label) offered extensions", h["offered_extensions"].strings.joined(separator: ", "),
                t["offered_extensions"].string ?? "")
        m.check("\(label) status", h["status"].int, t["status"].int)
        m.check("\(label) accept matches", h["accept_matches"].bool, t["accept_valid"].bool)
        m.check("\(label) subprotocol", h["subprotocol"].string, t["subprotocol"].string)
        m.check("\(label) extensions", h["extensions"].string, t["extensions"].string)
        m.check("\(label) upgraded", h["upgraded"].bool, t["status"].int == 101 && t["accept_valid"].bool == true)
    }

    static func compareMessages(_ m: inout Mismatches, _ label: String, _ got: [JSON], _ expected: [JSON]) {
        m.check("\(label) message count", got.count, expected.count)
        for (g, t) in zip(got, expected) {
            let l = "\(label) message \(t["index"].int ?? -1)"
            m.check("\(l) opcode", g["opcode"].int, opcodeNumbers[t["opcode"].string ?? ""])
            m.check("\(l) length", g["data_length"].int, t["length"].int)
            m.check("\(l) payload truncated", g["payload_truncated"].bool, false)
            let data = hexBytes(g["payload_hex"].string ?? "")
            m.check("\(l) payload bytes", data.count, t["length"].int ?? -1)
            m.check("\(l) sha256", SHA256Digest.hex(data), t["sha256"].string ?? "")
            if let text = t["text"].string {
                m.check("\(l) text", g["text"].string ?? g["inflated_text"].string, text)
            }
            m.check("\(l) fragments", g["fragments"].int, t["fragments"].int ?? 1)
            m.check("\(l) compressed", g["compressed"].bool, t["compressed"].bool ?? false)
            if !t["envelope"].isNull {
                m.check("\(l) envelope type", g["envelope"]["type"].string, t["envelope"]["type"].string)
                m.check("\(l) envelope correlation_id", g["envelope"]["correlation_id"].string,
                        t["envelope"]["correlation_id"].string)
            }
        }
    }

    /// Pings and pongs in wire order: direction, opcode, payload, how many data messages came before
    /// (both directions), and a round-trip time on answering pongs.
    static func compareControl(_ m: inout Mismatches, _ label: String, _ out: SniffOutput, _ id: Int, _ expected: [JSON]) {
        var seenMessages = 0
        var got: [(frame: JSON, after: Int)] = []
        for e in out.events where e["connection"].int == id {
            if e["kind"].string == "message" { seenMessages += 1 }
            if e["kind"].string == "frame", let op = e["opcode"].int, op == 9 || op == 10 { got.append((e, seenMessages)) }
        }
        m.check("\(label) control frame count", got.count, expected.count)
        var lastPingRTT: [String: Double] = [:]  // sender direction → the sender's own measurement
        for (i, (g, t)) in zip(got, expected).enumerated() {
            let l = "\(label) control \(i)"
            let record = "\(g.frame["direction"].string ?? "?") \(g.frame["opcode_name"].string ?? "?") \(g.frame["payload_hex"].string ?? "")"
            m.check(l, record, "\(t["direction"].string ?? "") \(t["opcode"].string ?? "") \(t["payload_hex"].string ?? "")")
            m.check("\(l) data messages before it", g.after, t["after_messages"].int ?? -1)
            if t["opcode"].string == "ping", let rtt = t["rtt_ms_seen_by_sender"].double {
                lastPingRTT[t["direction"].string ?? ""] = rtt
            }
            guard t["opcode"].string == "pong" else { continue }
            let rtt = g.frame["ping_rtt"].double
            if t["automatic"].bool == true {
                if let rtt {
                    let peer = t["direction"].string == "client" ? "server" : "client"
                    if rtt <= 0 { m.add("\(l): ping_rtt \(rtt) is not positive") }
                    if let sender = lastPingRTT[peer], rtt * 1000 > sender + 1 {
                        m.add("\(l): ping_rtt \(rtt * 1000) ms exceeds the \(sender) ms the pinging peer measured")
                    }
                } else {
                    m.add("\(l): answering pong without ping_rtt")
                }
            } else if rtt != nil {
                m.add("\(l): unsolicited pong given a ping_rtt \(rtt!)")
            }
        }
    }

    static func compareClose(_ m: inout Mismatches, _ label: String, _ out: SniffOutput, _ id: Int, _ expected: JSON) {
        for direction in ["client", "server"] {
            let closes = out.events("frame", connection: id, direction: direction).filter { $0["opcode"].int == 8 }
            let t = expected[direction]
            if t.isNull {
                m.check("\(label) \(direction) close frames", closes.count, 0)
            } else {
                m.check("\(label) \(direction) close frames", closes.count, 1)
                if let c = closes.first {
                    m.check("\(label) \(direction) close code", c["close_code"].int, t["code"].int)
                    m.check("\(label) \(direction) close reason", c["close_reason"].string, t["reason"].string)
                }
            }
        }
    }
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(hex.utf8.count / 2)
    var high: UInt8? = nil
    for c in hex.utf8 {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
        default: continue
        }
        if let h = high {
            out.append(h << 4 | v)
            high = nil
        } else {
            high = v
        }
    }
    return out
}

/// FIPS 180-4 SHA-256, for comparing payloads with the truth files' digests.
enum SHA256Digest {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var data = message
        let bitLength = UInt64(message.count) * 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for i in (0..<8).reversed() { data.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
        var w = [UInt32](repeating: 0, count: 64)
        data.withUnsafeBufferPointer { bytes in
            k.withUnsafeBufferPointer { k in
                w.withUnsafeMutableBufferPointer { w in
                    var block = 0
                    while block < bytes.count {
                        for t in 0..<16 {
                            let b = block + t * 4
                            w[t] = UInt32(bytes[b]) << 24 | UInt32(bytes[b + 1]) << 16 | UInt32(bytes[b + 2]) << 8 | UInt32(bytes[b + 3])
                        }
                        for t in 16..<64 {
                            let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                            let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                        }
                        var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
                        for t in 0..<64 {
                            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                            let ch = (e & f) ^ (~e & g)
                            let t1 = hh &+ s1 &+ ch &+ k[t] &+ w[t]
                            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                            let maj = (a & b) ^ (a & c) ^ (b & c)
                            let t2 = s0 &+ maj
                            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
                        }
                        h[0] = h[0] &+ a; h[1] = h[1] &+ b; h[2] = h[2] &+ c; h[3] = h[3] &+ d
                        h[4] = h[4] &+ e; h[5] = h[5] &+ f; h[6] = h[6] &+ g; h[7] = h[7] &+ hh
                        block += 64
                    }
                }
            }
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
}

/// Classic little-endian pcap files (microsecond or nanosecond), record by record: enough to merge
/// captures and count packets.
struct PcapFile {
    struct Record {
        var seconds: UInt32
        /// Microseconds or nanoseconds, as the file's header says.
        var fraction: UInt32
        var wireLength: UInt32
        var data: [UInt8]
    }

    var header: [UInt8]
    var records: [Record]
    /// Bytes after the last complete record (a cut-off file).
    var trailing = 0

    var isNanosecond: Bool { header.starts(with: [0x4d, 0x3c, 0xb2, 0xa1]) }
    /// A record's time in the file's units (microseconds or nanoseconds since the epoch).
    func time(_ r: Record) -> UInt64 { UInt64(r.seconds) * (isNanosecond ? 1_000_000_000 : 1_000_000) + UInt64(r.fraction) }
    func record(_ r: Record, at time: UInt64) -> Record {
        let unit: UInt64 = isNanosecond ? 1_000_000_000 : 1_000_000
        var r = r
        r.seconds = UInt32(time / unit)
        r.fraction = UInt32(time % unit)
        return r
    }

    init(header: [UInt8], records: [Record]) {
        self.header = header
        self.records = records
    }

    init(path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard bytes.count >= 24, bytes.starts(with: [0xd4, 0xc3, 0xb2, 0xa1]) || bytes.starts(with: [0x4d, 0x3c, 0xb2, 0xa1]) else {
            throw CLIError("\(path): not a little-endian classic pcap file (starts \(bytes.prefix(4).map { String($0, radix: 16) }))")
        }
        header = Array(bytes[0..<24])
        records = []
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        var offset = 24
        while offset + 16 <= bytes.count {
            let caplen = Int(u32(offset + 8))
            guard offset + 16 + caplen <= bytes.count else { break }
            records.append(Record(seconds: u32(offset), fraction: u32(offset + 4), wireLength: u32(offset + 12),
                                  data: Array(bytes[(offset + 16)..<(offset + 16 + caplen)])))
            offset += 16 + caplen
        }
        trailing = bytes.count - offset
    }

    func write(to path: String) throws {
        var out = header
        func put(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (UInt32(i) * 8))) } }
        for r in records {
            put(r.seconds)
            put(r.fraction)
            put(UInt32(r.data.count))
            put(r.wireLength)
            out += r.data
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    /// The TCP ports of an Ethernet/IPv4 record, or nil.
    static func tcpPorts(_ r: Record) -> (source: Int, destination: Int)? {
        let d = r.data
        guard d.count >= 14 + 20, d[12] == 0x08, d[13] == 0x00, d[14] >> 4 == 4, d[23] == 6 else { return nil }
        let ihl = Int(d[14] & 0x0f) * 4
        let t = 14 + ihl
        guard d.count >= t + 4 else { return nil }
        return (Int(d[t]) << 8 | Int(d[t + 1]), Int(d[t + 2]) << 8 | Int(d[t + 3]))
    }
}

/// A temporary directory removed at the end of a test.
final class SniffTempDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-sniff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A capture of one made-up WebSocket connection on 127.0.0.1 (Ethernet, IPv4, classic pcap in
/// microseconds): the TCP handshake, the RFC 6455 §1.3 example upgrade (optionally offering and
/// accepting permessage-deflate), then whatever bytes each side is given, in segments of at most
/// 1,448 bytes, and FIN both ways at `close()`. For cases no real peer can be made to send.
struct SyntheticConnection {
    private(set) var capture = PcapFile(header: [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, 4, 0, 1, 0, 0, 0], records: [])
    private var clientSeq: UInt32 = 1_000
    private var serverSeq: UInt32 = 900_000
    private var time: UInt64 = 1_790_000_000_000_000
    let clientPort: Int, serverPort = 8080

    init(deflate: Bool = false) {
        let offer = deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : ""
        self.init(request: Self.request(offer), response: Self.response(offer))
    }

    /// The TCP handshake, then `request` from the client and `response` from the server, as given.
    init(request: String, response: String, clientPort: Int = 40_000) {
        self.clientPort = clientPort
        packet(fromClient: true, flags: 0x02)
        clientSeq &+= 1
        packet(fromClient: false, flags: 0x12)
        serverSeq &+= 1
        packet(fromClient: true, flags: 0x10)
        if !request.isEmpty { send(fromClient: true, Array(request.utf8)) }
        if !response.isEmpty { send(fromClient: false, Array(response.utf8)) }
    }

    /// The upgrade request of RFC 6455 §1.3 with `extra` header lines (each ending in CRLF).
    static func request(_ extra: String = "", version: Bool = true) -> String {
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + (version ? "Sec-WebSocket-Version: 13\r\n" : "") + extra + "\r\n"
    }

    /// Its 101 response with `extra` header lines.
    static func response(_ extra: String = "") -> String {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" + extra + "\r\n"
    }

    /// A frame as the client sends it (masked with 1 2 3 4).
    static func clientFrame(opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let key: [UInt8] = [1, 2, 3, 4]
        var frame = serverFrame(opcode: opcode, length: payload.count, payload.enumerated().map { $1 ^ key[$0 % 4] })
        frame[1] |= 0x80
        frame.insert(contentsOf: key, at: frame.count - payload.count)
        return frame
    }

    /// `bytes` on the stream from one side, cut into segments.
    mutating func send(fromClient: Bool, _ bytes: [UInt8]) {
        var at = 0
        while at < bytes.count {
            let end = min(at + 1448, bytes.count)
            packet(fromClient: fromClient, flags: 0x18, Array(bytes[at..<end]))
            if fromClient { clientSeq &+= UInt32(end - at) } else { serverSeq &+= UInt32(end - at) }
            at = end
        }
    }

    /// Nothing on the connection for `seconds` (of capture time).
    mutating func pause(seconds: Double) { time += UInt64(seconds * 1_000_000) }

    /// FIN from the server, then from the client.
    mutating func close() {
        packet(fromClient: false, flags: 0x11)
        serverSeq &+= 1
        packet(fromClient: true, flags: 0x11)
        clientSeq &+= 1
    }

    private mutating func packet(fromClient: Bool, flags: UInt8, _ payload: [UInt8] = []) {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let (sport, dport) = fromClient ? (clientPort, serverPort) : (serverPort, clientPort)
        let (seq, ack) = fromClient ? (clientSeq, serverSeq) : (serverSeq, clientSeq)
        let tcp = be16(sport) + be16(dport) + be32(seq) + be32(flags == 0x02 ? 0 : ack) + [0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        var ip: [UInt8] = [0x45, 0] + be16(20 + tcp.count + payload.count) + [0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        ip[10] = UInt8(~sum >> 8 & 0xFF)
        ip[11] = UInt8(~sum & 0xFF)
        let frame = [UInt8](repeating: 0, count: 12) + [0x08, 0x00] + ip + tcp + payload
        time += 10
        capture.records.append(.init(seconds: UInt32(time / 1_000_000), fraction: UInt32(time % 1_000_000),
                                     wireLength: UInt32(frame.count), data: frame))
    }

    /// A frame's bytes as the server sends them (unmasked), with the length in the shortest form.
    static func serverFrame(opcode: UInt8, fin: Bool = true, rsv1: Bool = false, length: Int, _ payload: [UInt8]) -> [UInt8] {
        var header: [UInt8] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode]
        if length < 126 {
            header.append(UInt8(length))
        } else if length < 65_536 {
            header += [126, UInt8(length >> 8), UInt8(length & 0xFF)]
        } else {
            header.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { header.append(UInt8(truncatingIfNeeded: length >> shift)) }
        }
        return header + payload
    }

    /// `data` as permessage-deflate sends it without compressing: stored DEFLATE blocks (RFC 1951
    /// §3.2.4) and the empty one a sync flush adds, less its last four bytes (RFC 7692 §7.2.1).
    static func storedDeflate(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var at = 0
        repeat {
            let n = min(65_535, data.count - at)
            out += [0, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8 & 0xFF)] + data[at..<(at + n)]
            at += n
        } while at < data.count
        return out + [0]
    }
}

/// A pcapng file written block by block, in either byte order, for tests that build one by hand.
struct PcapngBuilder {
    let bigEndian: Bool
    private(set) var bytes: [UInt8] = []

    init(bigEndian: Bool = false) { self.bigEndian = bigEndian }

    mutating func append(_ raw: [UInt8]) { bytes += raw }
    mutating func u16(_ v: UInt16) { bytes += bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (bigEndian ? UInt32(24 - 8 * i) : UInt32(8 * i)))) } }

    /// A block of `type` whose body `body` writes: padded to 4 bytes, its length at both ends.
    mutating func block(_ type: UInt32, _ body: (inout PcapngBuilder) -> Void) {
        let start = bytes.count
        u32(type)
        u32(0)
        body(&self)
        while bytes.count % 4 != 0 { bytes.append(0) }
        let length = UInt32(bytes.count - start + 4)
        u32(length)
        for i in 0..<4 {
            bytes[start + 4 + i] = UInt8(truncatingIfNeeded: length >> (bigEndian ? UInt32(24 - 8 * i) : UInt32(8 * i)))
        }
    }

    /// A Section Header Block of unknown length.
    mutating func section() { block(0x0A0D_0D0A) { $0.u32(0x1A2B_3C4D); $0.u16(1); $0.u16(0); $0.u32(0xFFFF_FFFF); $0.u32(0xFFFF_FFFF) } }

    /// An Interface Description Block; with `microsecondOption`, an explicit if_tsresol of 6 (the
    /// default it states anyway, as dumpcap writes it).
    mutating func interface(linkType: UInt16, snaplen: UInt32 = 262_144, microsecondOption: Bool = false) {
        block(1) { b in
            b.u16(linkType); b.u16(0); b.u32(snaplen)
            if microsecondOption { b.u16(9); b.u16(1); b.bytes += [6, 0, 0, 0]; b.u16(0); b.u16(0) }
        }
    }

    /// An Enhanced Packet Block on `interface` at `time` (in the interface's units) holding `record`.
    mutating func packet(interface: UInt32, time: UInt64, _ record: PcapFile.Record) {
        block(6) { b in
            b.u32(interface); b.u32(UInt32(time >> 32)); b.u32(UInt32(time & 0xFFFF_FFFF))
            b.u32(UInt32(record.data.count)); b.u32(record.wireLength)
            b.bytes += record.data
        }
    }
}
