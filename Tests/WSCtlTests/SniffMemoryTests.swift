import Foundation
import Testing

/// `sniff --max-message-memory`: the messages all connections are collecting share one limit, so a
/// capture of many connections in the middle of large messages cannot make sniff hold them all.
@Suite("Sniff holds messages within one memory limit", .serialized, .timeLimit(.minutes(3)))
struct SniffMemoryTests {
    /// Peak resident memory of `wsctl sniff ARGS` in KiB (Python reads the child's rusage), its
    /// stdout and its stderr.
    static func peak(_ arguments: [String]) throws -> (kib: Int, stdout: String, stderr: String, status: Int32) {
        let probe = """
            import resource, subprocess, sys
            r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            sys.stdout.buffer.write(r.stdout)
            sys.stderr.buffer.write(r.stderr)
            sys.stderr.write("\\npeak-kib %d status %d\\n" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode))
            """
        let child = try ChildProcess(executable: Interop.python!, arguments: ["-c", probe, CLI.binary.path, "sniff"] + arguments)
        guard child.waitForExit(timeout: 120) != nil else { throw CLIError("sniff \(arguments) did not end in 120 s") }
        let stderr = child.stderr
        guard let line = stderr.split(separator: "\n").last(where: { $0.hasPrefix("peak-kib ") }) else {
            throw CLIError("no peak reported: \(stderr)")
        }
        let fields = line.split(separator: " ")
        let body = stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("peak-kib ") }.joined(separator: "\n")
        return (Int(fields[1])!, child.stdout, body, Int32(fields[3])!)
    }

    /// 32 connections, each in the middle of a 4 MiB fragmented binary message at the same time
    /// (every other one compressed), twice: 128 MiB to hold at once per round for a dissector
    /// that held every message whole. With an 8 MiB limit sniff stays near what it takes with
    /// none; with a limit above the capture's needs it grows by more than 96 MiB (which shows
    /// that the file asks for them). Every message is reported with the same lengths and the
    /// same shown bytes either way.
    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (it generates the capture and measures memory)"))
    func manyLargeMessagesAtOnceStayWithinTheLimit() async throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("memory.pcap")
        let summary = try await SniffFixtures.generate("make-memory-capture.py", [path, "--binary", "--megabytes", "4"])
        let runs = try await offThePool {
            try ["0", "8MiB", "1GiB"].map { limit in
                try Self.peak(["-r", path, "--json", "--stats", "--max-message-memory", limit])
            }
        }
        let (none, small, ample) = (runs[0], runs[1], runs[2])
        for r in runs { #expect(r.status == 0, "\(r.stderr)") }
        let mib = 1024
        #expect(small.kib < none.kib + 48 * mib, "8 MiB limit: peak \(small.kib / mib) MiB, with no room at all \(none.kib / mib) MiB")
        #expect(ample.kib > none.kib + 96 * mib, "ample limit: peak \(ample.kib / mib) MiB, with no room at all \(none.kib / mib) MiB")

        func messages(_ out: String) throws -> [JSON] {
            try SniffOutput(result: CLIResult(stdout: out, stderr: "", status: 0, stdoutBytes: Array(out.utf8))).kind("message")
        }
        let whole = try messages(ample.stdout)
        #expect(whole.count == summary["messages"].int)
        #expect(whole.filter { $0["payload_length"].int ?? 0 > 1 << 20 }.count == 64)
        for (noRoom, r) in [(true, none), (false, small)] {
            let got = try messages(r.stdout)
            try #require(got.count == whole.count)
            for (g, w) in zip(got, whole) {
                // With no room at all there is none for an inflater either: compressed messages
                // are shown compressed and incomplete.
                if noRoom && w["compressed"].bool == true {
                    #expect(g["incomplete"].bool == true && g["payload_length"].int == w["payload_length"].int)
                    continue
                }
                for key in ["connection", "index", "offset", "end_offset", "fragments", "compressed", "payload_length", "data_length",
                            "payload_hex", "payload_truncated", "incomplete"] {
                    #expect(g[key].description == w[key].description, "message \(w["connection"]) #\(w["index"]): \(key) \(g[key]) vs \(w[key])")
                }
                #expect(g["errors"].array.isEmpty)
            }
        }
        // What was not held whole is said, on stderr and in the stats.
        let notHeld = try SniffOutput(result: CLIResult(stdout: small.stdout, stderr: "", status: 0, stdoutBytes: Array(small.stdout.utf8)))
            .kind("stats").first?["messages_not_held_whole"].int ?? 0
        #expect(notHeld > 32, "an 8 MiB limit holds a few of the 64 large messages whole, not \(64 - notHeld)")
        #expect(small.stderr.contains("\(notHeld) messages did not fit in --max-message-memory 8MiB"), "\(small.stderr)")
        let noneStats = try SniffOutput(result: CLIResult(stdout: none.stdout, stderr: "", status: 0, stdoutBytes: Array(none.stdout.utf8)))
        #expect(noneStats.kind("stats").first?["messages_not_inflated"].int == whole.filter { $0["compressed"].bool == true }.count)
        #expect(none.stderr.contains("compressed messages were left uninflated"), "\(none.stderr)")
        let ampleStats = try SniffOutput(result: CLIResult(stdout: ample.stdout, stderr: "", status: 0, stdoutBytes: Array(ample.stdout.utf8)))
        #expect(ampleStats.kind("stats").first?["messages_not_held_whole"].int == 0)
        #expect(ampleStats.kind("stats").first?["messages_not_inflated"].int == 0)
        #expect(!ample.stderr.contains("did not fit"))
    }

    /// -w keeps the capture's order, so it holds every packet after an undecided connection's
    /// first one, up to 64 MiB; what counts toward that is what each held packet costs, not its
    /// bytes alone. 1.2 million tiny packets after a connection that stays silent (66 bytes each,
    /// 79 MiB of packets, which held cost three times that): -w stays within 96 MiB of what sniff
    /// takes without it, and the file holds every packet of the WebSocket connection.
    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (it generates the capture and measures memory)"))
    func savingHoldsTinyPacketsWithinTheLimit() async throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("hold.pcap")
        let saved = dir.path("saved.pcap")
        let summary = try await SniffFixtures.generate("make-hold-capture.py", [path])
        let runs = try await offThePool {
            try [["-r", path, "--stats"], ["-r", path, "--stats", "-w", saved]].map { try Self.peak($0) }
        }
        let (plain, saving) = (runs[0], runs[1])
        for r in runs { #expect(r.status == 0, "\(r.stderr)") }
        let mib = 1024
        #expect(saving.kib < plain.kib + 96 * mib, "-w: peak \(saving.kib / mib) MiB, without it \(plain.kib / mib) MiB")
        // The silent connection's 3 packets are let go (undecided when the limit was reached);
        // nothing of the WebSocket connection is lost.
        #expect(!saving.stderr.contains("lost"), "\(saving.stderr)")
        #expect(try PcapFile(path: saved).records.count == (summary["packets"].int ?? 0) - 3)
        let messages = saving.stdout.split(separator: "\n").last { $0.hasPrefix("total: ") }
        #expect(messages?.contains("\(summary["messages"].int ?? -1) messages") == true, "\(messages ?? "")")
    }

    /// A small compressed message that inflates to 8 MiB (a decompression bomb in miniature): what
    /// it inflates to counts toward --max-message-memory too. Under 1 MiB it is not held whole
    /// (inflated piece by piece, its first bytes kept, the rest counted and checked); with room it
    /// is. Either way it is shown with its whole length and no error.
    @Test func whatAMessageInflatesToIsHeldWithinTheLimit() throws {
        let text = String(repeating: "a", count: 8 << 20)
        let frame = try CLI.run(["encode", "--opcode", "text", "--deflate", "--file", "-", "--format", "raw"], stdin: Array(text.utf8))
        try #require(frame.status == 0, "\(frame.stderr)")
        var c = SyntheticConnection(deflate: true)
        c.send(fromClient: false, frame.stdoutBytes)
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("bomb.pcap")
        try c.capture.write(to: path)
        for (limit, heldWhole) in [("1MiB", false), ("64MiB", true)] {
            let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats", "--max-message-memory", limit])
            let m = try #require(out.kind("message").first)
            #expect(m["data_length"].int == 8 << 20 && m["errors"].array.isEmpty && m["compressed"].bool == true, "\(limit): \(m)")
            #expect(m["inflated_text"].string?.hasPrefix("aaaa") == true, "\(limit): \(m)")
            #expect(out.kind("stats").first?["messages_not_held_whole"].int == (heldWhole ? 0 : 1), "\(limit)")
            #expect(out.result.stderr.contains("1 messages did not fit") == !heldWhole, "\(limit): \(out.result.stderr)")
        }
    }

    /// `--full` under the limit: 2 connections, each sending two 1.2 MiB messages in single 1.2 MiB
    /// frames (which dissectors take in pieces, so each frame's shown payload is a buffer of its
    /// own besides the message). With room for everything, every payload is shown whole. With
    /// 2 MiB, the uncompressed messages still fit but their frames do not, and the compressed ones
    /// do not fit together with what they inflate to; with 1 MiB none do. Every
    /// frame and message line is then either the one shown with room, or the one shown without
    /// --full (cut at --max-payload); the cut ones are counted in the stats and said on stderr.
    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (it generates the capture)"))
    func fullShowsWholePayloadsAsFarAsTheLimitHolds() async throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("memory-full.pcap")
        let summary = try await SniffFixtures.generate("make-memory-capture.py",
                                                       [path, "--binary", "--megabytes", "1.2", "--connections", "2", "--frame-kib", "2048"])
        let runs = try await offThePool {
            try [["--full", "--max-message-memory", "1GiB"], [], ["--full", "--max-message-memory", "2MiB"], ["--full", "--max-message-memory", "1MiB"]].map {
                try CLI.run(["sniff", "-r", path, "--json", "--stats"] + $0)
            }
        }
        for r in runs { #expect(r.status == 0, "\(r.stderr)") }
        let outputs = try runs.map { try SniffOutput(result: $0) }
        func lines(_ o: SniffOutput) -> [JSON] { o.kind("frame") + o.kind("message") }
        let (whole, cut) = (lines(outputs[0]), lines(outputs[1]))
        try #require(whole.count == cut.count && whole.count > summary["messages"].int ?? 0)
        #expect(outputs[0].kind("message").filter { $0["data_length"].int ?? 0 > 1_200_000 }.count == 4)
        for w in whole {
            let length = w["kind"].string == "frame" ? w["payload_length"].int : w["data_length"].int
            #expect(w["payload_hex"].string?.utf8.count == 2 * (length ?? -1) && w["payload_truncated"].bool == false, "\(w)")
        }
        #expect(outputs[0].kind("stats").first?["frames_not_held_whole"].int == 0)
        #expect(outputs[0].kind("stats").first?["messages_not_held_whole"].int == 0)
        #expect(!runs[0].stderr.contains("did not fit"))
        let keys = ["kind", "connection", "index", "offset", "payload_length", "data_length", "payload_hex", "payload_truncated", "incomplete", "errors"]
        // 2 MiB holds each compressed message (1.2 MiB of random bytes, barely compressed) but not
        // also what it inflates to: the compressed connection's two messages are cut there.
        for (run, limit, messagesCut) in [(2, "2MiB", 2), (3, "1MiB", 4)] {
            let got = lines(outputs[run])
            try #require(got.count == whole.count)
            var shownCut = (messages: 0, frames: 0)
            for (i, g) in got.enumerated() {
                if keys.allSatisfy({ g[$0].description == whole[i][$0].description }) { continue }
                if keys.allSatisfy({ g[$0].description == cut[i][$0].description }) {
                    #expect(g["payload_truncated"].bool == true && g["payload_hex"].string?.utf8.count == 512)
                    if g["kind"].string == "frame" { shownCut.frames += 1 } else { shownCut.messages += 1 }
                    continue
                }
                Issue.record("\(limit): line \(i) is neither whole nor cut as without --full: \(g)")
            }
            let stats = outputs[run].kind("stats").first
            #expect(shownCut.frames == 4 && shownCut.frames == stats?["frames_not_held_whole"].int, "\(limit): \(shownCut), \(String(describing: stats))")
            #expect(shownCut.messages == messagesCut && shownCut.messages == stats?["messages_not_held_whole"].int,
                    "\(limit): \(shownCut), \(String(describing: stats))")
            let stderr = runs[run].stderr
            #expect(stderr.contains("4 frames arriving in pieces did not fit in --max-message-memory \(limit) with --full: they are shown cut at --max-payload 256 bytes"), "\(stderr)")
            #expect(stderr.contains("\(messagesCut) messages did not fit in --max-message-memory \(limit)"), "\(stderr)")
            do { #expect(stderr.contains("shown cut at --max-payload 256 bytes (payload_truncated) and without envelopes"), "\(stderr)") }
        }
    }

    @Test func aBadLimitIsRefused() throws {
        let r = try CLI.run(["sniff", "-r", SniffFixtures.path("basic"), "--max-message-memory", "lots"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("invalid value \"lots\""), "\(r.stderr)")
    }
}
