import ArgumentParser
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

extension WSCtlCommand {
    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decode",
            abstract: "Decode WebSocket frames from a hex dump (or raw bytes) and check every protocol rule.",
            discussion: """
                Reads hex the way people paste it: plain or spaced hex, 0x lists, C/JS arrays, \\x-escaped \
                strings, xxd, hexdump -C, od, tcpdump -X/-xx and Wireshark/tshark hex dumps (the ASCII \
                column is never read as hex). Input comes from the arguments, --file, or stdin.

                Every frame is shown with its header fields, the unmasked payload, close code and reason; \
                fragments are assembled into messages, permessage-deflate payloads are inflated and JSON \
                envelopes are recognised. Each violation is reported with its rule, byte offset and the \
                close code a peer would send. A frame the input ends inside is shown as far as it came, \
                marked incomplete, with the rules its header broke, and the error says how many bytes \
                are missing; so is a fragmented message whose last frame never comes. Exit status: 0 \
                clean, 1 a rule was broken, the input was truncated or could not be read, 2 usage error.

                tcpdump and tshark dumps hold whole packets (Ethernet, Linux cooked v1 and v2, raw IP; \
                IPv4 and IPv6): when every packet is a TCP segment, each direction of each TCP \
                connection is reassembled as sniff does it, by sequence number (retransmitted and \
                reordered segments are put right), and decoded as its own stream, labelled like \
                "TCP 127.0.0.1:37862 > 127.0.0.1:28081" (--packets off reads the bytes as they are). \
                Bytes the dump does not hold (packets not captured or not pasted) are a gap: a line \
                says where and how many, frames are looked for again after it (a resync line says \
                where they start), and the messages it touched are incomplete. A gap is no protocol \
                violation and not truncated input: the exit status is what it would be otherwise, \
                and stderr counts the missing bytes. The HTTP exchange a stream begins with (the \
                upgrade, and any requests and responses before it) is passed over and shown, and \
                frames are read from after the request or the 101 response; after a refusal nothing \
                is read as frames. When a gap cuts the HTTP exchange, frames are looked for after \
                the gap, with offsets counted from the stream's start.

                Examples:
                  wsctl decode 81 05 48 65 6c 6c 6f
                  wsctl decode 818537fa213d7f9f4d5158 --direction client
                  xxd capture.bin | wsctl decode
                  wsctl decode --file dump.txt --json
                  wsctl decode --raw --file frames.bin --full
                """
        )

        @Argument(help: ArgumentHelp("The dump, as one or more arguments (joined with spaces). Omit to read --file or stdin.", valueName: "DUMP"))
        var dump: [String] = []

        @Option(name: .shortAndLong, help: ArgumentHelp("Read the dump from a file (- for stdin).", valueName: "PATH"))
        var file: String?

        @Flag(name: .long, help: "The input is raw bytes, not a hex dump.")
        var raw = false

        @Option(name: .long, help: ArgumentHelp("Who sent the bytes: client (frames must be masked) or server (must not be). Default: masking is not checked.", valueName: "SIDE"))
        var direction: WebSocketDirection?

        @Flag(name: .long, help: "JSON Lines: one object per frame, message and error (schema in the README).")
        var json = false

        @Flag(name: .long, help: "Show whole payloads (default: the first --max-payload bytes).")
        var full = false

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Payload bytes shown per frame and message.", valueName: "N"))
        var maxPayload: Int = 256

        @Flag(name: .long, help: "In text output, show a message line for every message (default: only fragmented, compressed, enveloped or faulty ones).")
        var messages = false

        @Option(name: .long, help: ArgumentHelp("permessage-deflate: auto (RSV1 on a first frame means compressed), on, off (RSV1 is a violation).", valueName: "MODE"))
        var deflate: WebSocketDissectorConfiguration.DeflateMode = .auto

        @Flag(name: .long, help: "Inflate each message with a fresh context (no_context_takeover was negotiated).")
        var noContextTakeover = false

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("LZ77 window bits agreed for the sender, 9-15; a message referring further back is flagged window-exceeded.", valueName: "BITS"))
        var windowBits: Int = 15

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Largest frame payload accepted.", valueName: "BYTES"))
        var maxFrameSize: UInt64 = 64 << 20

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Largest message accepted (and largest inflated message).", valueName: "BYTES"))
        var maxMessageSize: Int = 64 << 20

        @Option(name: .long, help: ArgumentHelp("Dump format: auto or one of \(HexDumpFormat.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "FORMAT"))
        var format: String = "auto"

        @Option(name: .long, help: ArgumentHelp("Packet dumps (tcpdump, tshark): auto skips IP/TCP headers when every block is a TCP packet; off reads bytes as they are.", valueName: "MODE"))
        var packets: PacketMode = .auto

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Skip this many bytes at the start (e.g. headers of a single pasted packet).", valueName: "N"))
        var skip: Int = 0

        enum PacketMode: String, ExpressibleByArgument, CaseIterable { case auto, off }

        func validate() throws {
            if file != nil && !dump.isEmpty { throw ValidationError("give the dump as arguments or with --file, not both") }
            if raw && !dump.isEmpty { throw ValidationError("--raw reads bytes from --file or stdin, not from arguments") }
            if maxPayload < 0 { throw ValidationError("--max-payload must be 0 or more") }
            if maxMessageSize < 0 { throw ValidationError("--max-message-size must be 0 or more, got \(maxMessageSize)") }
            if !(9...15).contains(windowBits) { throw ValidationError("--window-bits takes 9-15") }
            if format != "auto" && HexDumpFormat(rawValue: format) == nil {
                throw ValidationError("--format takes auto or one of: \(HexDumpFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if skip < 0 { throw ValidationError("--skip must be 0 or more") }
        }

        func run() throws {
            let streams = try readStreams()
            var config = WebSocketDissectorConfiguration()
            config.parser.maxFrameSize = maxFrameSize
            config.assembler.maxMessageSize = maxMessageSize
            config.maxInflatedSize = maxMessageSize
            config.maxPayloadShown = full ? nil : maxPayload
            config.deflate = deflate
            config.clientNoContextTakeover = noContextTakeover
            config.serverNoContextTakeover = noContextTakeover
            config.clientMaxWindowBits = windowBits
            config.serverMaxWindowBits = windowBits
            config.checksWindow = true
            let printer = DissectionPrinter(configuration: config, direction: direction, json: json, allMessages: messages)
            var frames = 0, violations = 0, truncated = false
            var gaps = 0, gapBytes = 0, streamsWithGaps = 0
            for s in streams {
                let part = Self.passOverHTTP(s.bytes, gaps: s.gaps)
                let summary = printer.dissect(part.frames, label: s.label, heads: part.heads, gaps: part.gaps, startOffset: part.startOffset)
                frames += summary.frames
                violations += summary.violations
                truncated = truncated || summary.truncated
                gaps += summary.gaps
                gapBytes += summary.gapBytes
                if summary.gaps > 0 { streamsWithGaps += 1 }
            }
            Output.flush()
            if frames == 0 && !truncated && gaps == 0 && streams.allSatisfy({ $0.bytes.isEmpty }) {
                Output.error("no bytes to decode")
                throw ExitCode.failure
            }
            if gaps > 0 {
                // Not the input's fault as a protocol matter, so not exit 1 on its own (as for
                // sniff); but a script reading only stderr learns that part of it went undecoded.
                Output.error("\(counted(gapBytes, "byte")) missing from the dump (\(counted(gaps, "gap")) in \(counted(streamsWithGaps, "stream"))): the messages they touched are incomplete or missing")
            }
            if violations > 0 || truncated {
                var parts: [String] = []
                if violations > 0 { parts.append(counted(violations, "protocol violation")) }
                if truncated { parts.append("truncated input") }
                Output.error(parts.joined(separator: " and ") + " in \(counted(frames, "frame"))")
                throw ExitCode.failure
            }
        }

        struct Stream {
            var label: String?
            var bytes: [UInt8]
            /// Bytes missing from a packet dump (see `PacketDumpStreams`), by where they lie in `bytes`.
            var gaps: [DissectionPrinter.Gap] = []
        }

        /// A stream split for the printer: the HTTP heads passed over, the bytes read as frames, the
        /// gaps among them (placed in `frames`) and the stream offset the dissector counts from.
        struct Parts {
            var heads: [DissectionPrinter.HTTPHeadNote]
            var frames: [UInt8]
            var gaps: [DissectionPrinter.Gap]
            var startOffset: Int
        }

        /// `passOverHTTP` for a stream with gaps. The HTTP exchange is looked for in the bytes before
        /// the first gap. When it ends there (the last request, or a 101, complete before the gap),
        /// frames are read from after it as usual and the gaps fall among them. When the gap cuts
        /// it (the heads or a body run into the gap, or a refusal ends where the gap begins, so
        /// what the gap took may have been another request), whether frames follow cannot be
        /// told: the heads are shown, the last marked as cut by the gap, and frames are looked
        /// for after the gap as after any gap (taken only where plausible frame headers chain),
        /// with offsets counted from the stream's start.
        static func passOverHTTP(_ bytes: [UInt8], gaps: [DissectionPrinter.Gap]) -> Parts {
            guard let first = gaps.first else {
                let (heads, rest) = passOverHTTP(bytes)
                return Parts(heads: heads, frames: rest, gaps: [], startOffset: 0)
            }
            var (heads, rest) = passOverHTTP(Array(bytes[..<first.at]))
            guard let last = heads.last else { return Parts(heads: [], frames: bytes, gaps: gaps, startOffset: 0) }
            if last.framesFollow && last.ended {
                let start = first.at - rest.count
                let shifted = gaps.map { DissectionPrinter.Gap(at: $0.at - start, missing: $0.missing) }
                return Parts(heads: heads, frames: Array(bytes[start...]), gaps: shifted, startOffset: 0)
            }
            heads[heads.count - 1].cutByGap = true
            heads[heads.count - 1].framesFollow = false
            let shifted = gaps.map { DissectionPrinter.Gap(at: $0.at - first.at, missing: $0.missing) }
            return Parts(heads: heads, frames: Array(bytes[first.at...]), gaps: shifted, startOffset: first.at)
        }

        /// A dump of a whole connection begins with its HTTP exchange: the heads at the start of
        /// `bytes`, with their bodies (ordinary requests and responses on a kept-alive connection
        /// before the upgrade, a 401 and the client's second try, interim 1xx responses), are
        /// passed over, and frames are read from after the last one, unless it is a response
        /// other than 101 whose body runs to the close (what follows is HTTP). A start line is
        /// looked for first: bytes that begin with one can be no frame (its first byte would set
        /// a reserved opcode, or make a close frame a fragment).
        static func passOverHTTP(_ bytes: [UInt8]) -> (heads: [DissectionPrinter.HTTPHeadNote], rest: [UInt8]) {
            var (heads, rest) = scanHTTP(bytes)
            // Only the last one can be followed by frames.
            for i in heads.indices.dropLast() { heads[i].framesFollow = false }
            return (heads, rest)
        }

        private static func scanHTTP(_ bytes: [UInt8]) -> (heads: [DissectionPrinter.HTTPHeadNote], rest: [UInt8]) {
            var heads: [DissectionPrinter.HTTPHeadNote] = []
            var at = 0
            while heads.count < 100, looksLikeStartLine(bytes[at...]) {
                // (A head is at most `HTTPHead.maxLength` bytes: only that much is looked at.)
                switch HTTPHead.parse(Array(bytes[at..<min(bytes.count, at + HTTPHead.maxLength + 4)])) {
                case .head(let head):
                    let status = head.statusLine?.status
                    var note = DissectionPrinter.HTTPHeadNote(startLine: head.startLine, offset: at, length: head.length, framesFollow: true, ended: true)
                    at += head.length
                    if status == 101 {
                        heads.append(note)
                        return (heads, Array(bytes[at...]))
                    }
                    // Its body, as RFC 9112 §6.3 frames it. One that runs to the close, or whose
                    // length cannot be told, leaves nothing to read as frames.
                    guard let framing = HTTPBodySkipper.framing(of: head, request: status == nil), framing != .untilClose else {
                        note.framesFollow = false
                        note.length = bytes.count - note.offset
                        heads.append(note)
                        return (heads, [])
                    }
                    var skipper = HTTPBodySkipper(framing)
                    let used = bytes.withUnsafeBytes { skipper.consume(UnsafeRawBufferPointer(rebasing: $0[at...])) }
                    note.length += used
                    at += used
                    guard skipper.isDone, skipper.failure == nil else {
                        // A body that cannot be followed (a bad chunk size), or that the input ends
                        // inside (truncated input).
                        note.framesFollow = false
                        note.ended = skipper.failure != nil
                        note.length = bytes.count - note.offset
                        heads.append(note)
                        return (heads, [])
                    }
                    heads.append(note)
                case .needMore, .notHTTP(_):
                    // No blank line ends it: in the input (truncated), or within the length a head
                    // may have.
                    let line = bytes[at...].prefix { $0 != 13 && $0 != 10 }.prefix(200)
                    let cut = bytes.count - at <= HTTPHead.maxLength
                    heads.append(.init(startLine: String(decoding: line, as: UTF8.self), offset: at, length: bytes.count - at,
                                       framesFollow: false, ended: !cut))
                    return (heads, [])
                }
            }
            // The last head a response other than 101 (a refusal whose body had a length): what
            // follows it is not frames.
            if let last = heads.last, last.startLine.hasPrefix("HTTP/") {
                heads[heads.count - 1].framesFollow = false
                heads[heads.count - 1].length = bytes.count - last.offset
                return (heads, [])
            }
            return (heads, Array(bytes[at...]))
        }

        /// "HTTP/1.x " or "METHOD target HTTP/1.x" at the start of `bytes`.
        static func looksLikeStartLine(_ bytes: ArraySlice<UInt8>) -> Bool {
            let line = bytes.prefix(8_192).prefix { $0 != 10 }
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix("HTTP/1.") { return true }
            let parts = text.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3, let method = parts.first, !method.isEmpty,
                  method.allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "-") }) else { return false }
            return parts[2].hasPrefix("HTTP/1.")
        }

        private func readStreams() throws -> [Stream] {
            let input: [UInt8]
            do {
                if let file { input = try Input.readAll(path: file) }
                else if !dump.isEmpty { input = Array(dump.joined(separator: " ").utf8) }
                else {
                    if Output.stdinIsTerminal { Output.error("reading the dump from the terminal; end with Ctrl-D (wsctl decode --help for other ways)") }
                    input = try Input.readAll(path: "-")
                }
            } catch {
                Output.error("\(error)")
                throw ExitCode.failure
            }
            if raw { return [Stream(label: nil, bytes: Array(input.dropFirst(skip)))] }
            let dump: HexDump
            do {
                let text = String(decoding: input, as: UTF8.self)
                if format == "auto" { dump = try HexDumpReader.read(text) }
                else { dump = try HexDumpReader.read(text, format: HexDumpFormat(rawValue: format)!) }
            } catch {
                Output.error("cannot read the hex dump: \(error)")
                throw ExitCode.failure
            }
            if packets == .auto, dump.format.holdsPackets, !dump.blocks.isEmpty {
                // tshark adds buffers of its own after a frame ("Unmasked data", "Reassembled TCP"):
                // only the packets themselves are read; the rest would repeat their bytes.
                let packetBlocks = dump.blocks.indices.filter { i in
                    let label = dump.blockLabels[i] ?? ""
                    return dump.format != .wireshark || label.isEmpty || label.hasPrefix("Frame")
                }
                if let tcp = PacketDumpStreams.streams(packetBlocks.map { Array(dump.bytes[dump.blocks[$0]]) }) {
                    return tcp.map { s in
                        // --skip drops bytes at each stream's start; gaps keep their place among the rest.
                        let gaps = s.gaps.map { DissectionPrinter.Gap(at: max(0, $0.at - skip), missing: $0.missing) }
                        return Stream(label: s.label, bytes: Array(s.bytes.dropFirst(skip)), gaps: gaps)
                    }
                }
            }
            return [Stream(label: nil, bytes: Array(dump.bytes.dropFirst(skip)))]
        }
    }
}

extension WebSocketDirection: ExpressibleByArgument {}
extension WebSocketDissectorConfiguration.DeflateMode: ExpressibleByArgument {}
