import Foundation
import Testing

@Suite("wsctl encode")
struct EncodeCLITests {
    @Test func unmaskedHello() throws {
        // RFC 6455 §5.7: a single-frame unmasked text message.
        let r = try CLI.run(["encode", "--text", "Hello"])
        #expect(r.status == 0)
        #expect(r.stdout == "81 05 48 65 6c 6c 6f\n")
    }

    @Test func maskedHelloWithGivenKey() throws {
        // RFC 6455 §5.7: the same message masked with 37 fa 21 3d.
        let r = try CLI.run(["encode", "--text", "Hello", "--mask-key", "37fa213d", "--format", "hex"])
        #expect(r.stdout == "818537fa213d7f9f4d5158\n")
    }

    @Test func fragmentedHello() throws {
        // RFC 6455 §5.7: "Hel" then "lo".
        let r = try CLI.run(["encode", "--text", "Hello", "--fragment", "3"])
        #expect(r.stdout == "01 03 48 65 6c 80 02 6c 6f\n")
    }

    @Test func closeFrame() throws {
        // 1000 = 0x03e8, then the reason.
        let r = try CLI.run(["encode", "--close", "1000", "--reason", "bye"])
        #expect(r.stdout == "88 05 03 e8 62 79 65\n")
    }

    @Test func pingWithPayload() throws {
        let r = try CLI.run(["encode", "--opcode", "ping", "--text", "Hello"])
        #expect(r.stdout == "89 05 48 65 6c 6c 6f\n")
    }

    @Test func deflatedHello() throws {
        // RFC 7692 §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00, RSV1 set.
        let r = try CLI.run(["encode", "--text", "Hello", "--deflate"])
        #expect(r.stdout == "c1 07 f2 48 cd c9 c9 07 00\n")
    }

    @Test func deflateContextTakeover() throws {
        // RFC 7692 §7.2.3.2: the second "Hello" with context takeover is f2 00 11 00 00.
        let r = try CLI.run(["encode", "--text", "Hello", "--text", "Hello", "--deflate"])
        #expect(r.stdout == "c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00\n")
    }

    @Test func reservedOpcodeAndBitsOnPurpose() throws {
        let r = try CLI.run(["encode", "--opcode", "3", "--rsv2", "--rsv3", "--no-fin", "--text", "x"])
        // FIN clear, RSV2|RSV3 = 0x30, opcode 3.
        #expect(r.stdout == "33 01 78\n")
    }

    @Test func nonMinimalLengths() throws {
        #expect(try CLI.run(["encode", "--hex", "00ff", "--length-encoding", "16"]).stdout == "82 7e 00 02 00 ff\n")
        #expect(try CLI.run(["encode", "--hex", "00ff", "--length-encoding", "64"]).stdout == "82 7f 00 00 00 00 00 00 00 02 00 ff\n")
    }

    @Test func claimedLength() throws {
        #expect(try CLI.run(["encode", "--text", "ab", "--claim-length", "5"]).stdout == "81 05 61 62\n")
    }

    @Test(arguments: [
        ("hex", "810548656c6c6f\n"),
        ("base64", "gQVIZWxsbw==\n"),
        ("js", "Buffer.from([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])\n"),
        ("xxd", "00000000: 8105 4865 6c6c 6f                        ..Hello\n"),
    ])
    func outputFormats(format: String, expected: String) throws {
        let r = try CLI.run(["encode", "--text", "Hello", "--format", format])
        #expect(r.stdout == expected)
    }

    @Test func cArray() throws {
        let r = try CLI.run(["encode", "--text", "Hello", "--format", "c"])
        #expect(r.stdout.contains("unsigned char frame[7]"))
        #expect(r.stdout.contains("0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f"))
    }

    @Test func rawBytes() throws {
        let r = try CLI.run(["encode", "--text", "Hello", "--format", "raw"])
        #expect(r.stdoutBytes == [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test func payloadFromStdinAndFile() throws {
        let r = try CLI.run(["encode", "--file", "-"], stdin: [1, 2, 3])
        #expect(r.stdout == "82 03 01 02 03\n")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-encode-\(getpid()).bin")
        try Data([9, 8]).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        #expect(try CLI.run(["encode", "--file", path.path]).stdout == "82 02 09 08\n")
    }

    @Test func randomMaskIsUsedAndDecodable() throws {
        let r = try CLI.run(["encode", "--text", "Hello", "--mask", "--format", "hex"])
        let hex = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hex.hasPrefix("8185"))
        #expect(hex.count == 22)
        let d = try CLI.run(["decode", "--direction", "client", "--json", hex])
        #expect(d.status == 0)
        let frames = try CLI.jsonLines(d.stdout).filter { $0["kind"] as? String == "frame" }
        #expect(frames.first?["text"] as? String == "Hello")
    }

    @Test(arguments: [
        ["encode", "--text", "a", "--hex", "00"],
        ["encode", "--opcode", "16"],
        ["encode", "--opcode", "nonsense"],
        ["encode", "--mask-key", "123"],
        ["encode", "--mask", "--mask-key", "37fa213d"],
        ["encode", "--fragment", "0", "--text", "a"],
        ["encode", "--close", "70000"],
        ["encode", "--length-encoding", "32", "--text", "a"],
        ["encode", "--json"],
    ])
    func usageErrorsExit2(args: [String]) throws {
        let r = try CLI.run(args)
        #expect(r.status == 2, "\(args): \(r.stderr)")
        #expect(!r.stderr.isEmpty)
    }

    @Test func sevenBitEncodingTooLongIsUsageError() throws {
        let r = try CLI.run(["encode", "--text", String(repeating: "a", count: 200), "--length-encoding", "7"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("7-bit"))
    }

    /// An option that shapes what another builds, given without it, is a usage error rather than
    /// dropped without a word (`--reason` alone built an empty binary frame).
    @Test(arguments: [
        (["--reason", "bye"], "--reason goes with --close"),
        (["--text", "hi", "--window-bits", "9"], "--window-bits goes with --deflate"),
        (["--text", "hi", "--no-context-takeover"], "--no-context-takeover goes with --deflate"),
    ])
    func optionWithoutTheOneItShapes(_ arguments: [String], _ message: String) throws {
        let r = try CLI.run(["encode"] + arguments)
        #expect(r.status == 2 && r.stdout.isEmpty)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.contains("Usage: wsctl encode"))
    }

    /// A negative number given to a numeric option is read as its value and refused by the
    /// option's own check (it was "Missing value for '--count'", as if no value had been given).
    @Test(arguments: [
        (["key", "--count", "-1"], "--count must be between 1 and 1000000"),
        (["encode", "--close", "-1"], "--close takes a code 0-65535"),
        (["encode", "--text", "a", "--fragment", "-2"], "--fragment must be at least 1"),
        (["encode", "--text", "a", "--claim-length", "-1"], "The value '-1' is invalid for '--claim-length"),
        (["decode", "--skip", "-3", "8102"], "--skip must be 0 or more"),
        (["decode", "--max-payload", "-3", "8102"], "--max-payload must be 0 or more"),
        (["decode", "--max-message-size", "-3", "8102"], "--max-message-size must be 0 or more"),
        (["decode", "--max-message-size=-3", "8102"], "--max-message-size must be 0 or more"),
        (["decode", "--window-bits", "-9", "8102"], "--window-bits takes 9-15"),
    ])
    func negativeNumbersAreValues(_ arguments: [String], _ message: String) throws {
        let r = try CLI.run(arguments)
        #expect(r.status == 2 && r.stdout.isEmpty)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    /// A usage error found while the command runs names that command's usage, not the top level's.
    @Test func usageErrorWhileRunningNamesTheCommand() throws {
        let r = try CLI.run(["encode", "--hex", "zz"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--hex: no hex bytes found"))
        #expect(r.stderr.contains("Usage: wsctl encode <options>\n  See 'wsctl encode --help' for more information."), "\(r.stderr)")
        #expect(try CLI.run(["encode", "--close", "1000", "--reason", "bye"]).stdout == "88 05 03 e8 62 79 65\n")
        #expect(try CLI.run(["encode", "--deflate", "--window-bits", "9", "--text", "hi"]).status == 0)
    }

    @Test func describeJSON() throws {
        let r = try CLI.run(["encode", "--text", "Hello", "--mask-key", "37fa213d", "--describe", "--json"])
        let lines = try CLI.jsonLines(r.stdout)
        let frame = try #require(lines.first)
        #expect(frame["masking_key"] as? String == "37fa213d")
        #expect(frame["payload_hex"] as? String == "48656c6c6f")
    }

    @Test func roundTripThroughDecode() throws {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<10 {
            let n = Int.random(in: 0...300, using: &g)
            let text = String((0..<n).map { _ in "aé漢😀 xyz".randomElement(using: &g)! })
            let frag = Int.random(in: 1...50, using: &g)
            let enc = try CLI.run(["encode", "--text", text, "--mask", "--fragment", String(frag), "--format", "hex"])
            #expect(enc.status == 0)
            let dec = try CLI.run(["decode", "--json", "--full", enc.stdout])
            #expect(dec.status == 0, "\(dec.stderr)")
            let messages = try CLI.jsonLines(dec.stdout).filter { $0["kind"] as? String == "message" }
            #expect(messages.count == 1)
            #expect(messages.first?["text"] as? String == text)
        }
    }
}

@Suite("wsctl decode")
struct DecodeCLITests {
    /// Messages each ending with its BFINAL block (zlib's Z_FINISH, as Python's zlib.compress
    /// does), of 300 sizes and kinds (repeated, JSON-like, random bytes), made by Python's zlib:
    /// every one inflates to what was compressed, whatever the output buffer's growth (a review
    /// found 1 in 10 of such sizes reported cut inside a block).
    @Test(.enabled(if: Interop.python != nil, "python3 is not installed (its zlib makes the messages)"))
    func messagesEndingWithTheirFinalBlockInflate() throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("bfinal.bin")
        let script = """
            import random, struct, sys, zlib
            random.seed(7)
            out = bytearray(); sizes = []
            for i in range(300):
                n = random.choice([random.randint(1, 300), random.randint(300, 20000)])
                kind = i % 3
                data = (b'a' * n if kind == 0 else (b'{"type":"tick","price":%d}' % i * (n // 20 + 1))[:n] if kind == 1
                        else bytes(random.getrandbits(8) for _ in range(n)))
                c = zlib.compressobj(random.choice([1, 6, 9]), zlib.DEFLATED, -15)
                p = c.compress(data) + c.flush(zlib.Z_FINISH)
                h = bytes([0xC2]) + (bytes([len(p)]) if len(p) < 126 else bytes([126]) + struct.pack('!H', len(p)))
                out += h + p; sizes.append(n)
            open(sys.argv[1], 'wb').write(out)
            print(' '.join(map(str, sizes)))
            """
        let made = try #require(Interop.probe(Interop.python!, ["-c", script, path]))
        try #require(made.status == 0, "\(made.output)")
        let sizes = made.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        #expect(sizes.count == 300)
        let r = try CLI.run(["decode", "--raw", "--file", path, "--deflate", "on", "--no-context-takeover", "--json"])
        #expect(!r.stdout.contains("invalid-compressed-data"), "\(r.stdout.split(separator: "\n").first { $0.contains("invalid-compressed") } ?? "")")
        let lengths = r.stdout.split(separator: "\n").filter { $0.contains("\"kind\":\"message\"") }.compactMap { line -> Int? in
            guard let range = line.range(of: "\"data_length\":") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(lengths == sizes)
    }

    @Test func rfcExamplesText() throws {
        let r = try CLI.run(["decode", "81 05 48 65 6c 6c 6f"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("text FIN"))
        #expect(r.stdout.contains("\"Hello\""))
    }

    @Test func jsonSchemaKeys() throws {
        let r = try CLI.run(["decode", "--json", "818537fa213d7f9f4d5158"])
        #expect(r.status == 0)
        let lines = try CLI.jsonLines(r.stdout)
        #expect(lines.count == 2)
        let f = lines[0]
        for key in ["kind", "offset", "fin", "rsv1", "rsv2", "rsv3", "opcode", "opcode_name", "masked", "masking_key",
                    "payload_length", "header_length", "text", "payload_hex", "close_code", "close_reason", "errors"] {
            #expect(f.keys.contains(key), "missing \(key)")
        }
        #expect(f["kind"] as? String == "frame")
        #expect(f["offset"] as? Int == 0)
        #expect(f["fin"] as? Bool == true)
        #expect(f["opcode"] as? Int == 1)
        #expect(f["opcode_name"] as? String == "text")
        #expect(f["masked"] as? Bool == true)
        #expect(f["masking_key"] as? String == "37fa213d")
        #expect(f["payload_length"] as? Int == 5)
        #expect(f["header_length"] as? Int == 6)
        #expect(f["text"] as? String == "Hello")
        #expect(f["payload_hex"] as? String == "48656c6c6f")
        let m = lines[1]
        #expect(m["kind"] as? String == "message")
        for key in ["inflated_text", "envelope", "errors", "fragments"] { #expect(m.keys.contains(key), "missing \(key)") }
    }

    @Test func fragmentsAssembleAndControlInterleaves() throws {
        // "Hel", a ping in the middle, then "lo" (RFC 6455 §5.4 allows control frames between fragments).
        let r = try CLI.run(["decode", "--json", "01 03 48 65 6c 89 00 80 02 6c 6f"])
        #expect(r.status == 0)
        let lines = try CLI.jsonLines(r.stdout)
        let kinds = lines.map { $0["kind"] as? String }
        #expect(kinds == ["frame", "frame", "frame", "message"])
        #expect(lines[1]["opcode_name"] as? String == "ping")
        #expect(lines[3]["text"] as? String == "Hello")
        #expect(lines[3]["fragments"] as? Int == 2)
        #expect(lines[3]["offset"] as? Int == 0)
    }

    @Test func closeCodeAndReason() throws {
        let r = try CLI.run(["decode", "--json", "88 05 03 e8 62 79 65"])
        let f = try CLI.jsonLines(r.stdout)[0]
        #expect(f["close_code"] as? Int == 1000)
        #expect(f["close_reason"] as? String == "bye")
        let t = try CLI.run(["decode", "88 05 03 e8 62 79 65"])
        #expect(t.stdout.contains("close 1000 Normal Closure"))
    }

    @Test func violationsReportedWithRuleOffsetAndExit1() throws {
        // frame 1 fine; frame 2 at offset 7 has RSV2 set; frame 3 at offset 9 is a close with code 1005.
        let r = try CLI.run(["decode", "--json", "81 05 48 65 6c 6c 6f a2 00 88 02 03 ed"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("2 protocol violations"))
        let lines = try CLI.jsonLines(r.stdout).filter { $0["kind"] as? String == "frame" }
        let e1 = try #require((lines[1]["errors"] as? [[String: Any]])?.first)
        #expect(e1["rule"] as? String == "reserved-bits")
        #expect(e1["offset"] as? Int == 7)
        #expect(e1["close_code"] as? Int == 1002)
        let e2 = try #require((lines[2]["errors"] as? [[String: Any]])?.first)
        #expect(e2["rule"] as? String == "invalid-close-code")
        #expect(e2["offset"] as? Int == 11)
    }

    @Test func invalidUTF8OffsetAcrossFragments() throws {
        // "κ" = ce ba split across two fragments (valid), then ed a0 (the start of a surrogate):
        // frame 2's payload starts at offset 5 (ba), so a0, the first byte that cannot be UTF-8, is at 7.
        let r = try CLI.run(["decode", "--json", "01 01 ce 80 03 ba ed a0"])
        #expect(r.status == 1)
        let frames = try CLI.jsonLines(r.stdout).filter { $0["kind"] as? String == "frame" }
        let e = try #require((frames[1]["errors"] as? [[String: Any]])?.first)
        #expect(e["rule"] as? String == "invalid-utf8")
        #expect(e["offset"] as? Int == 7)
        #expect(e["close_code"] as? Int == 1007)
    }

    @Test func maskingDirection() throws {
        let client = try CLI.run(["decode", "--direction", "client", "81 05 48 65 6c 6c 6f"])
        #expect(client.status == 1)
        #expect(client.stdout.contains("unmasked-client-frame"))
        let server = try CLI.run(["decode", "--direction", "server", "818537fa213d7f9f4d5158"])
        #expect(server.status == 1)
        #expect(server.stdout.contains("masked-server-frame"))
        #expect(try CLI.run(["decode", "81 05 48 65 6c 6c 6f"]).status == 0)
    }

    @Test func truncatedInputSaysHowManyBytesAreMissing() throws {
        let r = try CLI.run(["decode", "81 05 48 65"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("3 more needed"))
        let j = try CLI.run(["decode", "--json", "81 7e 01"])
        let e = try #require(CLI.jsonLines(j.stdout).last)
        #expect(e["kind"] as? String == "error")
        #expect(e["rule"] as? String == "truncated")
        #expect((e["message"] as? String)?.contains("1 more needed") == true)
    }

    /// A frame the input ends inside is shown as far as it came, marked incomplete, with the rules
    /// its header already broke (sniff reports them for the same bytes), then the truncation.
    @Test(arguments: [
        ("89 7e 00 80 00", "control-frame-too-long", 1, "127 more needed"),  // a ping of 128 bytes
        ("83 05 41", "reserved-opcode", 0, "4 more needed"),
        ("82 7f 00 00 01 00 00 00 00 00 41 42", "frame-too-large", 1, "1099511627774 more needed"),  // 1 TiB
    ])
    func headerRulesOfAFrameCutShort(_ hex: String, _ rule: String, _ offset: Int, _ missing: String) throws {
        let r = try CLI.run(["decode", "--json", hex])
        #expect(r.status == 1)
        let lines = try CLI.jsonLines(r.stdout)
        let frame = try #require(lines.first)
        #expect(frame["kind"] as? String == "frame" && frame["incomplete"] as? Bool == true, "\(r.stdout)")
        let errors = frame["errors"] as? [[String: Any]] ?? []
        #expect(errors.map { $0["rule"] as? String } == [rule])
        #expect(errors.first?["offset"] as? Int == offset)
        let last = try #require(lines.last)
        #expect(last["rule"] as? String == "truncated" && (last["message"] as? String)?.contains(missing) == true)
        #expect(r.stderr.contains("1 protocol violation and truncated input"), "\(r.stderr)")
        let text = try CLI.run(["decode", hex])
        #expect(text.stdout.contains("error: \(rule) at byte \(offset)"), "\(text.stdout)")
    }

    /// The message the cut frame belonged to is shown too, as far as it came.
    @Test func messageOfAFrameCutShort() throws {
        let r = try CLI.run(["decode", "--json", "01 03 48 65 6c 80 05 6c"])
        let messages = try CLI.jsonLines(r.stdout).filter { $0["kind"] as? String == "message" }
        #expect(messages.count == 1)
        #expect(messages.first?["text"] as? String == "Hell" && messages.first?["incomplete"] as? Bool == true)
        #expect(r.status == 1)
    }

    @Test func inflatesCompressedMessages() throws {
        // RFC 7692 §7.2.3.2: two compressed "Hello"s, the second using the first as context.
        let r = try CLI.run(["decode", "--json", "c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00"])
        #expect(r.status == 0, "\(r.stderr)")
        let messages = try CLI.jsonLines(r.stdout).filter { $0["kind"] as? String == "message" }
        #expect(messages.count == 2)
        let allInflatedHello = messages.allSatisfy { $0["inflated_text"] as? String == "Hello" && $0["compressed"] as? Bool == true }
        #expect(allInflatedHello, "\(messages)")
        let off = try CLI.run(["decode", "--deflate", "off", "c1 07 f2 48 cd c9 c9 07 00"])
        #expect(off.status == 1)
        #expect(off.stdout.contains("reserved-bits"))
    }

    @Test func envelopeRecognised() throws {
        let text = #"{"type":"join_room","payload":{"room":"r1"},"metadata":{"correlation_id":"c-42"}}"#
        let enc = try CLI.run(["encode", "--text", text, "--format", "hex"])
        let r = try CLI.run(["decode", "--json", enc.stdout])
        let message = try CLI.jsonLines(r.stdout).first { $0["kind"] as? String == "message" }
        let m = try #require(message, "no message line in: \(r.stdout)")
        let env = try #require(m["envelope"] as? [String: Any])
        #expect(env["type"] as? String == "join_room")
        #expect(env["correlation_id"] as? String == "c-42")
    }

    @Test func longPayloadsAreCutUnlessFull() throws {
        let text = String(repeating: "x", count: 1000)
        let enc = try CLI.run(["encode", "--text", text, "--format", "hex"])
        let cut = try CLI.jsonLines(try CLI.run(["decode", "--json", enc.stdout]).stdout)[0]
        #expect((cut["text"] as? String)?.count == 256)
        #expect(cut["payload_truncated"] as? Bool == true)
        #expect(cut["payload_length"] as? Int == 1000)
        let full = try CLI.jsonLines(try CLI.run(["decode", "--json", "--full", enc.stdout]).stdout)[0]
        #expect((full["text"] as? String)?.count == 1000)
        #expect(full["payload_truncated"] as? Bool == false)
    }

    @Test func readsXxdFromStdinAndRawBytes() throws {
        let xxd = "00000000: 8105 4865 6c6c 6f                        ..Hello\n"
        let r = try CLI.run(["decode", "--json"], stdin: Array(xxd.utf8))
        #expect(try CLI.jsonLines(r.stdout).first?["text"] as? String == "Hello")
        let raw = try CLI.run(["decode", "--raw", "--json"], stdin: [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        #expect(try CLI.jsonLines(raw.stdout).first?["text"] as? String == "Hello")
    }

    @Test func tcpdumpPacketsAreStrippedToTCPPayload() throws {
        // One IPv4/TCP packet (20 + 20 header bytes) carrying 81 05 "Hello", as tcpdump -X prints it.
        let dump = """
            12:00:00.000000 IP 127.0.0.1.8080 > 127.0.0.1.50000: Flags [P.], seq 1:8, ack 1, win 512, length 7
            \t0x0000:  4500 002f 0000 4000 4006 0000 7f00 0001  E../..@.@.......
            \t0x0010:  7f00 0001 1f90 c350 0000 0001 0000 0001  .......P........
            \t0x0020:  5018 0200 0000 0000 8105 4865 6c6c 6f    P.........Hello
            """
        let r = try CLI.run(["decode", "--json"], stdin: Array(dump.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let f = try #require(CLI.jsonLines(r.stdout).first)
        #expect(f["text"] as? String == "Hello")
        #expect(f["block"] as? String == "TCP 127.0.0.1:8080 > 127.0.0.1:50000")
    }

    @Test func unreadableDumpExits1WithPosition() throws {
        let r = try CLI.run(["decode", "81 05 zz"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot read the hex dump"))
    }

    @Test func emptyInputExits1() throws {
        let r = try CLI.run(["decode"], stdin: [])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no hex bytes"))
    }

    @Test func topBitLengthStopsParsing() throws {
        let r = try CLI.run(["decode", "--json", "82 7f 80 00 00 00 00 00 00 01"])
        #expect(r.status == 1)
        let lines = try CLI.jsonLines(r.stdout)
        let hasTopBitError = lines.contains { ($0["errors"] as? [[String: Any]])?.first?["rule"] as? String == "length-top-bit-set" }
        #expect(hasTopBitError, "\(lines)")
    }
}
