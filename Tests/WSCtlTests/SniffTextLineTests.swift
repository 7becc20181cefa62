import Foundation
import Testing

/// The default one-line-per-message output shows a text message's first 80 characters (grapheme
/// clusters, as Swift counts them) in JSON quotes, with "…" when there were more. Most lines are
/// written by a byte-level fast path and the rest as Strings: every line of a generated capture
/// (ASCII and mixed-script text, short and long, whole and cut at --max-payload) must show the
/// preview the rule gives for the text that `--json` reports for the same message. With `--frames`,
/// the same holds for each text frame's line.
@Suite("Sniff text lines", .timeLimit(.minutes(2)))
struct SniffTextLineTests {
    /// The first 80 characters, and "…" when there were more or the text was cut at --max-payload.
    static func expectedPreview(_ text: String, cut: Bool) -> String {
        text.count > 80 ? String(text.prefix(80)) + "…" : cut ? text + "…" : text
    }

    /// The quoted string that ends a message line, unquoted.
    static func trailingQuoted(_ line: Substring) -> String? {
        guard line.hasSuffix("\""), let open = line.dropLast().lastIndex(of: " ") else { return nil }
        // The preview may itself contain spaces: try each space from the right until the rest parses.
        var candidate = open
        while true {
            let quoted = line[line.index(after: candidate)...]
            if quoted.hasPrefix("\""), let s = try? JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed) as? String {
                return s
            }
            guard let earlier = line[..<candidate].lastIndex(of: " ") else { return nil }
            candidate = earlier
        }
    }

    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (it generates the capture)"),
          arguments: [["--max-payload", "90"], ["--full"], ["--frames", "--max-payload", "90"], ["--frames", "--full"]])
    func previewsFollowTheRule(_ extra: [String]) async throws {
        // With --frames, each text frame's line against the frame's text.
        let kind = extra.contains("--frames") ? "frame" : "message"
        let jsonExtra = extra.filter { $0 != "--frames" }
        let dir = try SniffTempDirectory()
        let path = dir.path("text.pcap")
        let script = SniffFixtures.directory.appendingPathComponent("make-bench-capture.py").path
        // Processes are waited for off Swift Testing's threads (see offThePool).
        let (status, stderr, jsonRun, textRun) = try await offThePool {
            let child = try ChildProcess(executable: Interop.python!, arguments: [script, path, "--messages", "3000"])
            let status = child.waitForExit(timeout: 60)
            guard status == 0 else { return (status, child.stderr, CLIResult?.none, CLIResult?.none) }
            return (status, child.stderr, try CLI.run(["sniff", "-r", path, "--json"] + jsonExtra), try CLI.run(["sniff", "-r", path] + extra))
        }
        try #require(status == 0, "make-bench-capture.py: \(stderr)")
        let json = try SniffOutput(result: try #require(jsonRun))
        let texts = json.kind(kind).filter { $0["opcode"].int == 1 }.map { $0["text"].string }
        let cut = json.kind(kind).filter { $0["opcode"].int == 1 }.map { $0["payload_truncated"].bool == true }
        let lines = try #require(textRun).stdout.split(separator: "\n")
            .filter { $0.contains("→C text ") || $0.contains("→S text ") }
        try #require(texts.count == lines.count, "\(texts.count) text messages in --json, \(lines.count) text lines")
        var checked = 0, long = 0
        var shortCut = 0
        for ((text, line), wasCut) in zip(zip(texts, lines), cut) {
            guard let text else { continue }  // not shown as text (not valid UTF-8 as cut)
            let shown = Self.trailingQuoted(line)
            #expect(shown == Self.expectedPreview(text, cut: wasCut), "line: \(line)")
            if wasCut && text.count <= 80 { shortCut += 1 }
            checked += 1
            if text.count > 80 { long += 1 }
        }
        // The capture has both kinds, so both paths were taken.
        #expect(checked > 2000 && long > 400, "\(checked) previews checked, \(long) cut")
        if extra.contains("--max-payload") { #expect(shortCut > 100, "\(shortCut) texts cut at --max-payload within 80 characters") }
    }
}
