import Foundation
import Testing

/// A lost segment sent again late, behind thousands of small ones: what sniff says when its
/// out-of-order buffer fills before the hole does, and that `--max-flow-buffer` lets it hold more.
@Suite("Sniff's out-of-order buffer", .timeLimit(.minutes(2)))
struct SniffReorderBufferTests {
    /// 4,097 small server messages, the first ("FIRST") captured last.
    static func capture() throws -> (path: String, dir: SniffTempDirectory) {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        let before = c.capture.records.count
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 5, Array("FIRST".utf8)))
        for i in 0..<4_097 {
            c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 2, length: 98, [UInt8](repeating: UInt8(i & 0xFF), count: 98)))
        }
        var file = c.capture
        let late = file.records.remove(at: before)
        file.records.append(late)
        let dir = try SniffTempDirectory()
        let path = dir.path("late.pcap")
        try file.write(to: path)
        return (path, dir)
    }

    @Test func aFullBufferIsNamedAndALargerOneHoldsTheSegments() throws {
        let (path, dir) = try Self.capture()
        _ = dir
        let full = try SniffOutput.run(["sniff", "-r", path, "--json"])
        let gaps = full.kind("gap")
        #expect(gaps.count == 1 && gaps.first?["missing_bytes"].int == 7 && gaps.first?["buffer_full"].bool == true, "\(gaps)")
        #expect(!full.kind("message").contains { $0["text"].string == "FIRST" })
        #expect(full.result.stderr.contains("wsctl sniff: 7 bytes not captured (7 of them given up when the out-of-order buffer filled before they came: --max-flow-buffer) (1 gap in 1 connection)"),
                "\(full.result.stderr)")
        let text = try CLI.run(["sniff", "-r", path])
        #expect(text.stdout.contains("gap: 7 bytes given up, not captured before the out-of-order buffer filled (--max-flow-buffer); resynchronising"),
                "\(text.stdout.prefix(2_000))")
        let larger = try SniffOutput.run(["sniff", "-r", path, "--json", "--max-flow-buffer", "64MiB"])
        #expect(larger.kind("gap").isEmpty)
        #expect(larger.kind("message").count == 4_098)
        #expect(larger.kind("message").first?["text"].string == "FIRST")
    }
}
