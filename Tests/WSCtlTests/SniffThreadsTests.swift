import Foundation
import Testing

/// `sniff -r` reads and reassembles on one thread, dissects on another and prints on a third
/// (ReassemblyReadAhead, SniffPipeline); `--one-thread` does it all in one loop. The two must
/// write the same bytes to stdout and stderr and exit the same way, whatever the capture:
/// every fixture, damaged copies (read errors in the middle of a file), the early ends of
/// --count and --duration, and a generated capture big enough to cross every batch boundary.
/// Serialized: each case runs two `wsctl` processes of three threads, and run all at once they
/// starve the suites that wait for servers on the same two cores. The processes are waited for
/// off Swift Testing's threads (`offThePool`).
@Suite("Sniff on three threads writes what one thread writes", .serialized, .timeLimit(.minutes(3)))
struct SniffThreadsTests {
    /// Every fixture in JSON; the other printers and --full on the fixtures with the most variety.
    static let modes: [[String]] = [["--json", "--stats"]]
    static let moreModes: [[String]] = [["-v", "--stats"], ["--json", "--full"], ["--frames"]]
    static let variedFixtures: Set<String> = ["concurrent", "deflate", "fragmented", "large", "gap"]

    /// Runs `wsctl sniff ARGS` threaded and with --one-thread; records any difference.
    static func expectSame(_ arguments: [String], _ label: String) async throws {
        let (threaded, single) = try await offThePool {
            (try CLI.run(["sniff"] + arguments), try CLI.run(["sniff"] + arguments + ["--one-thread"]))
        }
        #expect(threaded.status == single.status, "\(label): exit status \(threaded.status) threaded, \(single.status) on one thread")
        #expect(threaded.stderr == single.stderr, "\(label): stderr differs:\n\(threaded.stderr)\n---\n\(single.stderr)")
        if threaded.stdoutBytes != single.stdoutBytes {
            let a = threaded.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let b = single.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let first = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            Issue.record("""
                \(label): stdout differs at line \(first + 1) (\(a.count) lines threaded, \(b.count) on one thread)
                threaded:   \(first < a.count ? String(a[first].prefix(300)) : "<end>")
                one thread: \(first < b.count ? String(b[first].prefix(300)) : "<end>")
                """)
        }
    }

    @Test(arguments: SniffFixtures.all)
    func everyFixtureInEveryMode(_ name: String) async throws {
        let ports = SniffFixtures.portArguments(try SniffFixtures.truth(name))
        for mode in Self.modes + (Self.variedFixtures.contains(name) ? Self.moreModes : []) {
            try await Self.expectSame(["-r", SniffFixtures.path(name)] + ports + mode, "\(name) \(mode.joined(separator: " "))")
        }
    }

    /// Damaged records end the read with a warning in the middle of the output: it must come
    /// after the same events, and the end-of-capture events after it.
    @Test(arguments: ["deflate", "concurrent", "large"])
    func damagedCopies(_ name: String) async throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path(name))))
        let dir = try SniffTempDirectory()
        for i in 0..<4 {
            let seed = UInt64(i) &* 104_729 &+ UInt64(name.utf8.count)
            let path = dir.path("\(name)-\(seed).pcap")
            let damaged = SniffRobustnessTests.damaged(original, seed: seed)
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            try await Self.expectSame(["-r", path, "--json", "--stats"], "\(name) damaged (seed \(seed))")
            // Through a pipe, standard input is searched after damage as the file is.
            let (piped, file) = try await offThePool {
                (try CLI.run(["sniff", "-r", "-", "--json", "--stats"], stdin: damaged),
                 try CLI.run(["sniff", "-r", path, "--json", "--stats", "--one-thread"]))
            }
            #expect(piped.status == file.status && piped.stderr == file.stderr,
                    "\(name) damaged (seed \(seed)) on stdin: \(piped.status) \(piped.stderr)\nfrom the file: \(file.status) \(file.stderr)")
            #expect(piped.stdoutBytes == file.stdoutBytes, "\(name) damaged (seed \(seed)): stdout on stdin differs from the file's")
            // A pipe named as a file (/dev/stdin, a FIFO, <(zcat …)) is read the same way.
            if i == 0 {
                let named = try await offThePool { try CLI.run(["sniff", "-r", "/dev/stdin", "--json", "--stats"], stdin: damaged) }
                #expect(named.status == file.status && named.stderr == file.stderr && named.stdoutBytes == file.stdoutBytes,
                        "\(name) damaged (seed \(seed)) as /dev/stdin: \(named.status) \(named.stderr)")
            }
        }
        // A file cut in the middle of a record: the warning is certain.
        let cut = dir.path("\(name)-cut.pcap")
        try Data(original[0..<(original.count * 2 / 3)]).write(to: URL(fileURLWithPath: cut))
        try await Self.expectSame(["-r", cut, "--json", "--stats"], "\(name) cut at two thirds")
        try await Self.expectSame(["-r", cut, "-v"], "\(name) cut at two thirds, -v")
        let cutRun = try await offThePool { try CLI.run(["sniff", "-r", cut, "--json"]) }
        #expect(cutRun.status == 1 && cutRun.stderr.contains("warning"), "\(name) cut: \(cutRun.status) \(cutRun.stderr)")
    }

    @Test func countAndDurationEndTheSameWay() async throws {
        let path = SniffFixtures.path("concurrent")
        for extra in [["--count", "1"], ["--count", "7"], ["--count", "40"], ["--duration", "0.05"], ["--duration", "0.000001"]] {
            try await Self.expectSame(["-r", path, "--json", "--stats"] + extra, "concurrent \(extra.joined(separator: " "))")
        }
        let counted = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats", "--count", "7"])
        #expect(counted.kind("stats").first?["packets"].int == 7)
    }

    /// Standard input goes through the same threads.
    @Test func standardInput() async throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("fragmented"))))
        let (threaded, single) = try await offThePool {
            (try CLI.run(["sniff", "-r", "-", "--json", "--stats"], stdin: bytes),
             try CLI.run(["sniff", "-r", SniffFixtures.path("fragmented"), "--json", "--stats", "--one-thread"]))
        }
        #expect(threaded.status == 0)
        let same = threaded.stdoutBytes == single.stdoutBytes
        #expect(same, "-r -: stdout differs from the file read on one thread (\(threaded.stdoutBytes.count) and \(single.stdoutBytes.count) bytes)")
    }

    /// Frames over 64 KiB shown far past 64 KiB (`--max-payload` above it, `--full`), where the
    /// dissector lets a grown buffer go between showing a frame and its message: a fragmented
    /// message whose last frame the connection's end cuts off, and a compressed one whose frame
    /// holds other bytes than its message. Each line must show its own bytes, on one thread or three.
    @Test func largeFramesShownWhole() async throws {
        let dir = try SniffTempDirectory()
        let first = Array("0123456789".utf8)
        let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        var cut = SyntheticConnection()
        cut.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 2, fin: false, length: first.count, first)
                    + SyntheticConnection.serverFrame(opcode: 0, length: body.count, Array(body[0..<70_000])))
        cut.close()
        var deflated = SyntheticConnection(deflate: true)
        let compressed = SyntheticConnection.storedDeflate(body)
        deflated.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 2, rsv1: true, length: compressed.count, compressed))
        deflated.close()
        let cases: [(name: String, capture: PcapFile, frame: [UInt8], message: [UInt8])] = [
            ("cut", cut.capture, Array(body[0..<70_000]), first + body[0..<70_000]),
            ("deflated", deflated.capture, compressed, body),
        ]
        for c in cases {
            let path = dir.path("\(c.name).pcap")
            try c.capture.write(to: path)
            for (mode, limit) in [(["--max-payload", "66000"], 66_000), (["--max-payload", "100000"], 100_000), (["--full"], Int.max)] {
                let label = "\(c.name) \(mode.joined(separator: " "))"
                try await Self.expectSame(["-r", path, "--json"] + mode, label)
                let out = try SniffOutput(result: try await offThePool { try CLI.run(["sniff", "-r", path, "--json"] + mode) })
                let frame = out.kind("frame").last?["payload_hex"].string
                let message = out.kind("message").last?["payload_hex"].string
                #expect(frame.map(hexBytes) == Array(c.frame.prefix(limit)), "\(label): the last frame's bytes")
                #expect(message.map(hexBytes) == Array(c.message.prefix(limit)), "\(label): the message's bytes")
            }
        }
    }

    /// A capture still being written to standard input (`tcpdump -w - | wsctl sniff -r -`): what
    /// came is shown before the writer sends more, on three threads and on one, not when the
    /// output buffer fills or the input ends.
    @Test(arguments: [false, true])
    func captureStillBeingWrittenIsShownAsItComes(oneThread: Bool) async throws {
        var c = SyntheticConnection()
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("first".utf8)))
        let firstRecords = c.capture.records.count
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 6, Array("second".utf8)))
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try c.capture.write(to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let split = 24 + c.capture.records.prefix(firstRecords).reduce(0) { $0 + 16 + $1.data.count }
        let child = try ChildProcess(executable: CLI.binary, arguments: ["sniff", "-r", "-", "--json"] + (oneThread ? ["--one-thread"] : []))
        defer { child.stop(timeout: 2) }
        child.writeStdin(bytes: Array(bytes[..<split]))
        let shown = try await offThePool { child.waitForStdout(containing: "\"first\"", timeout: 20) }
        #expect(shown, "the first message was not shown while the writer waited: \(child.stdout)")
        #expect(!child.stdout.contains("\"second\""))
        child.writeStdin(bytes: Array(bytes[split...]))
        child.closeStdin()
        let status = try await offThePool { child.waitForExit(timeout: 20) }
        #expect(status == 0)
        #expect(child.stdout.contains("\"second\""))
    }

    /// Large fragmented compressed messages with lost segments under small --max-message-memory
    /// limits: what is held whole was decided by buffer capacities, which the allocator rounds up
    /// as its state allows, so one thread and three could differ (the release build gave, on seed
    /// 1 with 10 KiB and --full, one frame cut on one thread only; the debug build these tests
    /// run did not diverge on it, so this guards the property rather than replaying that case).
    /// Now decided by the room charged, modelled on how an Array grows.
    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (it generates the capture)"))
    func smallMemoryLimitsDecideTheSameOnEveryThread() async throws {
        let dir = try SniffTempDirectory()
        for seed in [1, 2] {
            let path = dir.path("deflate-gaps-\(seed).pcap")
            _ = try await SniffFixtures.generate("make-deflate-gap-capture.py", [path, "--seed", "\(seed)"])
            for limit in ["0", "1KiB", "10KiB", "64KiB"] {
                for extra in [["--full"], ["--full", "--max-payload", "70000"], []] {
                    try await Self.expectSame(["-r", path, "--json", "--stats", "--max-message-memory", limit] + extra,
                                              "seed \(seed), \(limit) \(extra.joined(separator: " "))")
                }
            }
        }
    }

    /// 12,000 messages (about 27,000 events and 5 MB of stream): several batches of 4,096 events and
    /// of 1 MiB in both stages, so every hand-over between the threads is exercised.
    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (it generates the capture)"))
    func generatedCaptureAcrossBatches() async throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("generated.pcap")
        let summary = try await SniffFixtures.generate("make-bench-capture.py", [path, "--messages", "12000"])
        for mode in [["--json", "--stats"], ["--json", "--full"]] {
            try await Self.expectSame(["-r", path] + mode, "generated \(mode.joined(separator: " "))")
        }
        let out = try SniffOutput(result: try await offThePool { try CLI.run(["sniff", "-r", path, "--json", "--stats"]) })
        let stats = try #require(out.kind("stats").first)
        #expect(stats["messages"].int == summary["messages"].int)
        #expect(stats["packets"].int == summary["packets"].int)
    }

    /// The printer prints frames from the reading thread's batches, which the pipeline holds until
    /// then. A 6 MiB frame in 1,448-byte segments fills a dozen of those batches (512 KiB each)
    /// without an event to print: were they held in the pipeline's batch being filled until it had
    /// events enough, the reading thread would run out of batches and the dissecting thread wait
    /// for it forever. Run under `timeout`, which kills sniff if it hangs.
    @Test func aFrameAcrossManyReadingBatchesDoesNotStall() async throws {
        let dir = try SniffTempDirectory()
        let big = (0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ ($0 >> 16)) }
        var c = SyntheticConnection()
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("before".utf8)))
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 2, length: big.count, big))
        for i in 0..<3 { c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 5, Array("after\(i)".utf8.prefix(5)))) }
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 6, Array("after!".utf8)))
        c.close()
        let path = dir.path("big.pcap")
        try c.capture.write(to: path)
        let timeout = URL(fileURLWithPath: "/usr/bin/timeout")
        for mode in [["--json"], ["--json", "--full"]] {
            let label = "6 MiB frame \(mode.joined(separator: " "))"
            let (threaded, single) = try await offThePool {
                (try CLI.run(["-s", "KILL", "60", CLI.binary.path, "sniff", "-r", path] + mode, executable: timeout),
                 try CLI.run(["-s", "KILL", "60", CLI.binary.path, "sniff", "-r", path, "--one-thread"] + mode, executable: timeout))
            }
            // (Killed: sniff ends cleanly on SIGTERM, which a thread waiting forever never sees.)
            try #require(threaded.status == 0, "\(label): exit status \(threaded.status) on three threads (killed by timeout: it hung)")
            try #require(single.status == 0, "\(label): exit status \(single.status) on one thread")
            let same = threaded.stdoutBytes == single.stdoutBytes
            #expect(same, "\(label): stdout differs between three threads and one")
            let out = try SniffOutput(result: threaded)
            let frames = out.kind("frame")
            #expect(frames.compactMap { $0["text"].string } == ["before", "after", "after", "after", "after!"], "\(label)")
            let shown = frames.first { $0["payload_length"].int == big.count }?["payload_hex"].string.map(hexBytes)
            let limit = mode.contains("--full") ? big.count : 256
            let right = shown == Array(big.prefix(limit))
            #expect(right, "\(label): the big frame's bytes (\(shown?.count ?? -1) shown)")
        }
    }
}
