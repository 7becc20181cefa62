import Foundation
import Testing

/// How envelopes read in sniff's text output: `-v` shows every field the JSON has, and the default
/// one-line form keeps a long type or correlation id from making a line of any length.
@Suite("Sniff's envelope text", .timeLimit(.minutes(2)))
struct SniffEnvelopeTextTests {
    /// `-v` showed type and correlation_id only; message_id and client_id were in the JSON alone.
    @Test func verboseShowsEveryEnvelopeField() throws {
        let r = try CLI.run(["sniff", "-r", SniffFixtures.path("envelopes"), "-v"])
        #expect(r.stdout.contains("envelope type=ping correlation_id=c-1 message_id=m-c-1 client_id=fixture-client"), "\(r.stdout.prefix(1_500))")
        // The same with a character to escape (the general renderer, not the fast one).
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        let text = #"{"type":"t\u001b","metadata":{"correlation_id":"q","message_id":"m\u0007","client_id":"me"},"payload":{}}"#
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array(text.utf8)))
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("escaped.pcap")
        try c.capture.write(to: path)
        let v = try CLI.run(["sniff", "-r", path, "-v"])
        #expect(v.stdout.contains(#"envelope type=t\u001b correlation_id=q message_id=m\u0007 client_id=me"#), "\(v.stdout)")
    }

    /// A 40,000-character type gave a 40,000-character line even with --max-payload 16.
    @Test func longTypesAndIdsAreCutInTheOneLineForm() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        let type = String(repeating: "t", count: 40_000), id = String(repeating: "q", count: 500)
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array(#"{"type":"\#(type)","metadata":{"correlation_id":"\#(id)"},"payload":{}}"#.utf8)))
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("long.pcap")
        try c.capture.write(to: path)
        let r = try CLI.run(["sniff", "-r", path, "--max-payload", "16"])
        let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("[ttt") })
        #expect(line.contains("[" + String(repeating: "t", count: 63) + "…]"), "\(line.prefix(300))")
        #expect(line.contains(" cid=" + String(repeating: "q", count: 63) + "… "), "\(line.prefix(300))")
        #expect(line.count < 400, "\(line.count) characters")
    }
}
