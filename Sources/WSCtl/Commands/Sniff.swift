import ArgumentParser
import Dispatch
import Foundation
import WebSocketCodec
import WebSocketInspect
import WebSocketServer
import WebSocketSniffer

extension WSCtlCommand {
    struct Sniff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sniff",
            abstract: "Watch WebSocket traffic live (libpcap) or dissect a pcap/pcapng file.",
            discussion: """
                Reassembles TCP per connection and direction, finds WebSocket upgrades on any port from the \
                HTTP exchange itself, and dissects both directions with the same codec as decode and serve: \
                every frame, messages assembled, permessage-deflate inflated with the negotiated parameters \
                (one context per direction), close codes, ping/pong round trips, protocol violations, and \
                JSON envelopes with request/reply latency paired by correlation_id.

                Output: one line per message (default), --frames one line per frame, -v every field, \
                --json JSON Lines (schema in the README). --stats prints per-connection counts at the end.

                Packets missing from the capture leave a gap in a connection's stream: it is shown with \
                its size and dissection starts again at the next frame (after a gap that ends inside a \
                frame, where five plausible frame headers follow one another, or live, when the connection has \
                been quiet for a second: a resync line says where, and how many bytes it passed over). \
                A message that lost bytes is \
                marked incomplete; so is, with permessage-deflate context takeover, a later compressed \
                message of that direction that refers back to what the gap took (they are inflated \
                with an empty window, so those that inflate are exact). A frame \
                or message whose end never came (a gap took it, or the capture or the connection ended \
                first) is shown as far as it arrived and marked incomplete, not dropped.

                Memory is bounded: out-of-order bytes per connection direction (--max-flow-buffer), idle \
                connections (--flow-timeout), and the messages all connections are collecting at once \
                (--max-message-memory; sniff says how many did not fit). With --full, payloads that do \
                not fit in it are shown cut at --max-payload, as without --full.

                The upgrade may follow ordinary requests on a kept-alive connection: they and \
                their responses are passed over, and so is a refusal that keeps the connection open \
                (a 401), after which the client's next try is followed. A capture of one direction only is still followed: from the request alone (the \
                response is reported missing once the client sends frames a second after it, or \
                the connection ends), or from the 101 response alone. With --port, a connection \
                already open when the capture began is dissected from its first captured byte, \
                looking for where frames start as after a gap.

                -w saves every packet of the connections shown (refused upgrades too) and nothing \
                else, in capture order: packets of connections still undecided are held, at most \
                64 MiB, until their upgrade is seen or they close. The file is pcap, or pcapng when \
                the capture read is pcapng: one interface for each link type, so a capture on \
                interfaces of several link types (or a pipe whose later sections add some) is saved whole.

                A damaged capture file gives a warning with the packet number and byte offset; sniff \
                then looks for the next readable packet (a plausible record header followed by another) \
                and dissects the rest from there, so one bad record does not cost the file. A file cut \
                short keeps what came before the cut. Either way the exit status is 1.

                Traffic that broke a protocol rule (any error line, any entry in a JSON line's \
                "errors", a handshake that broke RFC 6455 or 7692: an Accept that does not match the \
                key, a request without its key) also makes the exit status 1, and the last line on stderr counts the \
                violations and the connections they were in, so that `wsctl sniff -r FILE >/dev/null` \
                checks a capture in a script. Bytes the capture lost (gaps: packets dropped or cut short) \
                are not the traffic's fault and leave the exit status 0, but a stderr line counts them \
                too.

                Live capture needs permission: run as root, or give the binary the capabilities: \
                sudo setcap cap_net_raw,cap_net_admin=eip $(which wsctl)

                Examples:
                  wsctl sniff -i lo                         # live, loopback
                  wsctl sniff -i any -f 'tcp port 8080'
                  wsctl sniff -r capture.pcap --frames
                  wsctl sniff -r capture.pcapng --json --stats
                  wsctl sniff -r old.pcap --port 9000       # open before the capture began
                  wsctl sniff -i eth0 -w websocket-only.pcap --duration 60
                """
        )

        @Option(name: .shortAndLong, help: ArgumentHelp("Interface to capture on (default: any).", valueName: "IFACE")) var interface: String?
        @Option(name: .shortAndLong, help: ArgumentHelp("BPF capture filter. Default, live: TCP, also behind IPv6 extension headers and (on Ethernet) inside 802.1Q/802.1ad VLAN tags; with -r: none (packets that are not TCP are counted and skipped).", valueName: "FILTER")) var filter: String?
        @Option(name: .shortAndLong, help: ArgumentHelp("Read a pcap or pcapng file (- for stdin) instead of capturing.", valueName: "FILE")) var read: String?
        @Option(name: .shortAndLong, help: ArgumentHelp("Save the packets of the connections shown (WebSocket, or asking for an upgrade) to a pcap file, in capture order: pcapng when the capture read is pcapng, which may have interfaces of several link types (- for standard output; what would be printed there then goes to standard error).", valueName: "FILE")) var write: String?
        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Stop after this many packets.", valueName: "N")) var count: Int?
        @Option(name: .long, help: ArgumentHelp("Stop after this long (e.g. 30s; capture time for files).", valueName: "DURATION")) var duration: String?
        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Bytes captured per packet (live).", valueName: "BYTES")) var snaplen = 262_144
        @Option(name: .customLong("port"), parsing: .unconditionalSingleValue, help: ArgumentHelp("A port that speaks WebSocket even when no handshake was seen (repeatable).", valueName: "PORT")) var ports: [Int] = []
        @Flag(name: .long, help: "One line per frame instead of per message.") var frames = false
        @Flag(name: .shortAndLong, help: "Every field of every frame and message.") var verbose = false
        @Flag(name: .long, help: "JSON Lines (frames, messages, handshakes, connection-closed events).") var json = false
        @Flag(name: .long, help: "Print per-connection and total counts at the end.") var stats = false
        @Flag(name: .long, help: "Show whole payloads, up to 64 MiB a frame, as far as --max-message-memory holds them (default: the first --max-payload bytes).") var full = false
        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Payload bytes shown per frame and message.", valueName: "N")) var maxPayload = 256
        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Out-of-order bytes buffered per connection direction before a gap is declared (and at most one segment per KiB of it, 4,096 at least).", valueName: "SIZE")) var maxFlowBuffer = "4MiB"
        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Forget connections idle this long (capture time). One that ended is remembered for TIME_WAIT (240 s) however short this is, so that its late copies (a FIN sent again) start no connection.", valueName: "DURATION")) var flowTimeout = "300s"
        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Memory for messages being collected (fragmented, compressed, spanning segments) and what compressed ones inflate to, bytes held after gaps and inflate windows, all connections together. A message that does not fit keeps only its first bytes: it is shown as usual but without its envelope (with --full: cut at --max-payload, as is a frame arriving in pieces that does not fit).", valueName: "SIZE")) var maxMessageMemory = "256MiB"
        @Flag(name: .long, help: "Also decode each compressed message's DEFLATE codes, to flag a back-reference beyond the window agreed for its direction (window-exceeded, RFC 7692 §7.1.2; zlib lets one through when the bytes it names are still in its output). Only where a window under 15 bits was agreed; costs about as much CPU again as inflating.") var checkWindow = false
        /// Read, dissect and print a file on one thread (for tests that compare it with the
        /// three-thread path, and for measuring what the other threads buy).
        @Flag(name: .customLong("one-thread"), help: .private) var oneThread = false

        /// Read errors shown one by one; later ones are counted.
        static let shownReadWarnings = 20

        func validate() throws {
            if let count, count < 1 { throw ValidationError("--count must be at least 1") }
            if snaplen < 64 { throw ValidationError("--snaplen must be at least 64") }
            if maxPayload < 0 { throw ValidationError("--max-payload must be 0 or more, got \(maxPayload)") }
            if ports.contains(where: { !(1...65535).contains($0) }) { throw ValidationError("--port takes 1-65535") }
            if read != nil && interface != nil { throw ValidationError("use -r FILE or -i IFACE, not both") }
            if frames && verbose { throw ValidationError("-v already shows every frame; leave out --frames") }
            if let read, let write, read != "-", write != "-", Self.sameFile(read, write) {
                throw ValidationError("-w \(write) is the file -r reads: writing it would destroy the capture being read")
            }
            _ = try makeConfiguration()
            _ = try durationSeconds()
        }

        /// Whether two paths name one existing file (same device and inode: links and `./` spellings too).
        static func sameFile(_ a: String, _ b: String) -> Bool {
            var sa = stat(), sb = stat()
            guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
            return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
        }

        func durationSeconds() throws -> Double? {
            guard let duration else { return nil }
            let seconds: Double
            do { seconds = try DurationFlag.parseSeconds(duration) } catch { throw ValidationError("--duration: \(error)") }
            // (As --count 0: a capture that stops before it starts is a mistake, not a request.)
            guard seconds > 0 else { throw ValidationError("--duration must be more than 0, got \(duration)") }
            return seconds
        }

        func makeConfiguration() throws -> SniffConfiguration {
            var d = WebSocketDissectorConfiguration()
            // --full stops at the largest frame the parser accepts: a hostile length cannot make it keep more.
            d.maxPayloadShown = full ? Int(d.parser.maxFrameSize) : maxPayload
            // Thousands of connections may be followed at once: each keeps little between messages,
            // and what they collect shares one limit. With --full, what does not fit in it is
            // shown cut at --max-payload, as without --full.
            d.assembler.retainedBufferCapacity = 64 << 10
            d.parser.retainedCarryCapacity = 64 << 10
            d.checksWindow = checkWindow
            var r = TCPReassemblerConfiguration()
            // Each value's error names its option.
            func parsed<T>(_ option: String, _ parse: () throws -> T) throws -> T {
                do { return try parse() } catch { throw ValidationError("\(option): \(error)") }
            }
            r.maxFlowBuffer = try parsed("--max-flow-buffer") { try ByteSizeFlag.parse(maxFlowBuffer) }
            r.idleTimeout = try parsed("--flow-timeout") { try DurationFlag.parseSeconds(flowTimeout) }
            d.messageMemory = DissectionMemoryBudget(limit: try parsed("--max-message-memory") { try ByteSizeFlag.parse(maxMessageMemory) })
            if full { d.maxPayloadShownWithoutRoom = maxPayload }
            // (A timeout of 0 forgot every connection between two of its packets: their messages
            // vanished without a word.)
            guard r.idleTimeout > 0 else { throw ValidationError("--flow-timeout must be more than 0, got \(flowTimeout)") }
            return SniffConfiguration(dissector: d, reassembly: r, webSocketPorts: Set(ports), maxSummaries: stats ? 10_000 : 0,
                                      reportsForSaving: write != nil)
        }

        func run() throws {
            // -w - puts the capture on standard output: the dissection and the stats go to standard
            // error beside the warnings, so that neither corrupts the other.
            if write == "-" { Output.redirectToStandardError() }
            let session = SniffSession(configuration: try makeConfiguration())
            let source: PcapSource
            do {
                if let read {
                    source = try PcapSource(offlinePath: read)
                } else {
                    source = try PcapSource(liveInterface: interface, snaplen: snaplen)
                }
                if let filter {
                    if !filter.isEmpty { try source.setFilter(filter) }
                } else if read == nil {
                    // Live, the kernel keeps what is not TCP from being copied at all. `tcp` alone
                    // matches neither IPv6 with extension headers before TCP (Hop-by-Hop, Routing,
                    // Fragment, Destination Options, AH; AH in IPv4 too: the decoder follows them) nor VLAN-tagged
                    // frames; `vlan` exists only on link types that can carry tags, so it is left
                    // out where it is refused.
                    let tcp = "(tcp or (ip and ip[9] == 51) or (ip6 and (ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 51 or ip6[6] == 60)))"
                    try source.setFilter("\(tcp) or (vlan and (\(tcp) or (vlan and \(tcp))))", fallback: tcp, passOver: true)
                }
                // A file is not filtered by default: the decoder takes TCP wherever it follows it (any
                // number of VLAN tags, VLAN in Linux cooked captures, IPv6 extension headers, loopback
                // headers in either byte order, link types BPF has no name for) and counts the rest,
                // which a BPF filter would pass over unseen.
            } catch let error as PcapError where error.kind == .filter {
                // A filter that does not compile is a usage error, like any bad option value.
                throw ValidationError("-f: \(error.message)")
            } catch {
                Output.error("\(error)")
                throw ExitCode.failure
            }
            if let w = source.activationWarning { Output.warning(w) }
            var writer: PcapWriter? = nil
            if let write {
                // pcapng for a pcapng capture, whose interfaces may have several link types (a pcap
                // file holds one), described before the packets or later in a pipe; pcap otherwise.
                do { writer = try PcapWriter(path: write, matching: source) } catch {
                    Output.error("\(error)")
                    throw ExitCode.failure
                }
            }
            // SIGINT/SIGTERM end a live capture cleanly: the loop is broken and stats printed.
            // SIGHUP too: a closed terminal or ssh session ends it the same way, -w file complete.
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            signal(SIGHUP, SIG_IGN)
            let breaker = source.loopBreaker
            let signals = [SIGINT, SIGTERM, SIGHUP].map { sig -> any DispatchSourceSignal in
                let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                s.setEventHandler { breaker.breakLoop() }
                s.resume()
                return s
            }
            defer { withExtendedLifetime(signals) {} }
            // A live capture with no traffic may never return from a read on its own: a timer
            // breaks the loop at the deadline.
            if let seconds = try durationSeconds(), source.isLive {
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { breaker.breakLoop() }
            }

            var printer = SniffPrinter(mode: json ? .json : (verbose ? .verbose : (frames ? .frames : .messages)),
                                       style: TerminalStyle(enabled: Output.colourEnabled))
            let limit = try durationSeconds()
            // Read once: an option's getter is not free, and the loop runs once per packet.
            let count = self.count
            let write = self.write
            let wallStart = DispatchTime.now().uptimeNanoseconds
            var firstTime: Double? = nil
            var saver = PacketSaver()
            var warnings = 0
            // A badly damaged file can fail at every other record: the first warnings are shown,
            // the rest counted.
            func warnReadError(_ error: any Error) {
                warnings += 1
                if warnings <= Self.shownReadWarnings {
                    Output.warning("\(error)")
                } else if warnings == Self.shownReadWarnings + 1 {
                    Output.warning("more damage in the capture; further read errors are counted, not shown")
                }
            }
            // A file is read and reassembled on one thread (ReassemblyReadAhead), dissected on this
            // one and printed on a third (SniffPipeline); -w, which needs each packet beside its
            // dissection, reads on this thread. A live capture prints as it goes, so that nothing
            // waits in a batch.
            var pipeline: SniffPipeline? = nil
            defer { if let p = pipeline { _ = p.finish() } }
            func stopPipeline() {
                if let p = pipeline { printer = p.finish(); pipeline = nil }
            }
            func startPipeline(origin: Double) {
                printer.origin = origin
                if !source.isLive && !oneThread { pipeline = SniffPipeline(printer: printer) }
            }
            // A live capture prints on this thread (no pipeline); frames a quiet connection holds
            // after a gap are let out now and then (a file keeps to the connection's end, so that
            // its output does not depend on how it is read).
            /// -w: a write that fails (a full disk, a file size limit) ends sniff with the error.
            func saving(_ body: () throws -> Void) throws {
                do { try body() } catch {
                    stopPipeline()
                    Output.error("writing \(write!): \(error)")
                    throw ExitCode.failure
                }
            }
            var lastSettle = 0.0
            var lastFlush = DispatchTime.now().uptimeNanoseconds
            func settleQuietHunts(now: Double) {
                lastSettle = now
                session.settleQuietHunts(now: now) { printer.print($0) }
            }
            if !source.isLive && !oneThread && writer == nil {
                let stage = ReassemblyReadAhead(source: source, session: session, count: count, duration: limit)
                defer { stage.stop() }
                // The pipeline, unretained: `pipeline` holds it while it runs. Read from the
                // variable the functions above share, it was retained and released for every event.
                var running: Unmanaged<SniffPipeline>? = nil
                // The printer prints what the dissector shows of the stage's batches from there:
                // the pipeline holds each batch until then.
                func startLending() {
                    running = pipeline.map { Unmanaged.passUnretained($0) }
                    stage.holder = pipeline
                }
                while let item = stage.next() {
                    switch item {
                    case .origin(let time):
                        startPipeline(origin: time)
                        startLending()
                    case .inputWaits:
                        // A pipe whose writer has not sent more yet: show what came so far.
                        if let pipeline { pipeline.flushNow() } else { Output.flush() }
                    case .event(let event):
                        // The stage's copy of the stream: unmasked where it lies.
                        if let running {
                            running._withUnsafeGuaranteedRef { p in
                                p.lent = stage.lentBytes
                                session.dissect(event, mayModify: true, sink: p) { p.submit($0) }
                            }
                        } else {
                            session.dissect(event, mayModify: true) { printer.print($0) }
                        }
                    case .readError(let error):
                        // A truncated or corrupt file: say where, keep what was dissected, and go on
                        // with what comes after the damage if the source found it.
                        let wasRunning = pipeline != nil
                        running = nil
                        stage.holder = nil
                        stopPipeline()
                        warnReadError(error)
                        if wasRunning { startPipeline(origin: printer.origin) }
                        startLending()
                    }
                }
                stage.holder = nil
                stopPipeline()
            } else {
                // A pipe whose writer has not sent more yet: show what came so far.
                source.whenInputWaits { if let pipeline { pipeline.flushNow() } else { Output.flush() } }
                loop: while true {
                    let result: PcapReadResult
                    do {
                        result = try source.read()
                    } catch {
                        // A truncated or corrupt file: say where, keep what was dissected, and go on
                        // with what comes after the damage if the source found it.
                        session.uncountPacketsReadOutOfStep(error)
                        let running = pipeline != nil
                        stopPipeline()
                        warnReadError(error)
                        if (error as? PcapError)?.resumes == true {
                            if running { startPipeline(origin: printer.origin) }
                            continue
                        }
                        break
                    }
                    switch result {
                    case .endOfCapture, .interrupted:
                        break loop
                    case .timeout:
                        if let limit, source.isLive, Double(DispatchTime.now().uptimeNanoseconds - wallStart) / 1e9 >= limit { break loop }
                        if source.isLive { settleQuietHunts(now: Date().timeIntervalSince1970) }
                        Output.flush()
                        lastFlush = DispatchTime.now().uptimeNanoseconds
                        continue
                    case .packet(let packet):
                        if firstTime == nil {
                            firstTime = packet.time
                            startPipeline(origin: packet.time)
                        }
                        if let limit {
                            let elapsed = source.isLive ? Double(DispatchTime.now().uptimeNanoseconds - wallStart) / 1e9 : packet.time - firstTime!
                            if elapsed >= limit { break loop }
                        }
                        let r: SniffSession.PacketFlow?
                        if let pipeline {
                            r = session.process(packet, linkType: source.packetLinkType) { pipeline.submit($0) }
                        } else {
                            r = session.process(packet, linkType: source.packetLinkType) { printer.print($0) }
                        }
                        if let writer {
                            try saving {
                                try saver.save(packet, linkType: source.packetLinkType, info: r, news: session.takeSavingNews(), writer: writer)
                            }
                        }
                        if let count, session.packets >= count { break loop }
                        // Traffic on other connections may leave no quiet moment for the timeout.
                        if source.isLive, packet.time - lastSettle >= 0.25 { settleQuietHunts(now: packet.time) }
                        if source.isLive {
                            // Nor for the timeout's flush: steady traffic would keep the lines in the
                            // buffer until it filled (seconds at 10 messages a second). With the
                            // read timeout (100 ms), a line waits at most about a tenth of a
                            // second, by the wall clock (the README promises a fifth).
                            let now = DispatchTime.now().uptimeNanoseconds
                            if now &- lastFlush >= 100_000_000 {
                                Output.flush()
                                lastFlush = now
                            }
                        }
                    }
                }
                if let pipeline {
                    session.finish { pipeline.submit($0) }
                    stopPipeline()
                } else {
                    session.finish { printer.print($0) }
                }
                if let writer {
                    try saving { try saver.finish(news: session.takeSavingNews(), writer: writer) }
                }
            }
            // The end of the file is where a full disk or a file size limit shows: a capture cut
            // short is an error, not a success.
            if let writer {
                try saving { try writer.close() }
                if writer.packetsCut > 0 {
                    Output.warning("-w \(write!): \(writer.packetsCut) packets longer than the file's snapshot length (\(writer.snapshotLength) bytes) were saved cut to it, as pcap readers refuse longer ones")
                }
                if writer.timesClamped > 0 {
                    Output.warning("-w \(write!): \(writer.timesClamped) packets were saved with the nearest time the file could hold: their times lie in more than \(PcapWriter.maxInterfaces) different spans of 10^9 seconds, or billions of years away")
                }
            }
            let memory = session.configuration.dissector.messageMemory
            if stats {
                printer.printStats(session.summaries, totals: session.totals, packets: session.packets, skipped: session.skipped, cut: session.packetsCut,
                                   live: source.stats, memory: memory)
            }
            Output.flush()
            if let memory, memory.messagesNotHeldWhole > 0 {
                let shown = full ? "they are shown cut at --max-payload \(maxPayload) bytes (payload_truncated) and" : "they are shown as usual but"
                Output.warning("\(memory.messagesNotHeldWhole) messages did not fit in --max-message-memory \(maxMessageMemory) (all connections' messages being collected at once): only their first bytes were kept, so \(shown) without envelopes; a larger limit holds them whole")
            }
            if let memory, memory.framesNotHeldWhole > 0 {
                Output.warning("\(memory.framesNotHeldWhole) frames arriving in pieces did not fit in --max-message-memory \(maxMessageMemory) with --full: they are shown cut at --max-payload \(maxPayload) bytes (payload_truncated); a larger limit shows them whole")
            }
            if let memory, memory.messagesNotInflated > 0 {
                Output.warning("\(memory.messagesNotInflated) compressed messages were left uninflated (shown compressed, marked incomplete): --max-message-memory \(maxMessageMemory) had no room for their connection's inflate window")
            }
            if session.packetsCut > 0 {
                // Said once here; each gap it made is shown where it is.
                Output.warning("\(session.packetsCut) of \(session.packets) packets were cut short by the capture's snapshot length (at most \(session.longestCutPacket) of their bytes kept): the bytes they lost are shown as gaps, and a packet cut inside its headers is skipped; capture with a larger snapshot length (\(source.isLive ? "--snaplen" : "tcpdump -s 0")) to see everything")
            }
            if !source.linkTypesRefusedByFilter.isEmpty {
                let names = source.linkTypesRefusedByFilter.map { PcapSource.name(of: $0) }.joined(separator: ", ")
                Output.warning("the packets of interfaces of link type \(names), described after the reading started, were passed over: the filter does not compile for that link type")
            }
            let lost = saver.lostPackets
            if lost.packets > 0 {
                Output.warning("-w: \(lost.packets) packets of \(lost.connections) connections were not saved: they came before the connection was known to be WebSocket while more than \(PacketSaver.maxHeldBytes >> 20) MiB of such packets were held (to keep the file in capture order)")
            }
            let skippedTotal = session.skipped.values.reduce(0, +)
            if skippedTotal > 0 && !json {
                // Most first; ties by name (a dictionary's order differs from run to run).
                let detail = session.skipped.map { ("\($0.key)", $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                    .map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                Output.stderrLine("wsctl sniff: \(session.packets) packets, \(skippedTotal) skipped (\(detail))\n")
            }
            if warnings > Self.shownReadWarnings {
                Output.warning("\(warnings) read errors in all")
            }
            // Exit status 1 when the traffic broke a protocol rule, as for decode.
            let broken = session.totals
            if broken.gaps > 0 {
                // Not the traffic's fault, so not exit 1; but a script reading only the exit status
                // and stderr learns that part of the capture could not be dissected.
                let what = broken.bufferFullGapBytes == 0 ? "not captured"
                    : "not captured (\(broken.bufferFullGapBytes) of them given up when the out-of-order buffer filled before they came: --max-flow-buffer)"
                Output.stderrLine("wsctl sniff: \(counted(broken.gapBytes, "byte")) \(what) (\(counted(broken.gaps, "gap")) in \(counted(broken.connectionsWithGaps, "connection"))): the messages they touched are incomplete or missing\n")
            }
            if broken.violations > 0 {
                Output.stderrLine("wsctl sniff: \(counted(broken.violations, "protocol violation")) in \(counted(broken.connectionsWithViolations, "connection"))\n")
            }
            if warnings > 0 || broken.violations > 0 { throw ExitCode.failure }
        }
    }
}

/// -w: the packets of the connections sniff shows (WebSocket, or that asked for an upgrade,
/// granted or not), and nothing else, written in capture order. A connection's packets before its
/// upgrade is decided (the TCP handshake, ordinary requests before the upgrade, the request itself)
/// are held, and with them every packet after them, so that the file keeps the capture's order;
/// they are written or dropped as soon as the connection is known, or closes. So are the
/// fragments of an IP datagram until it is whole (then they belong to its connection) or given
/// up (then to none). Held packets are bounded (`maxHeldBytes`): past it, the earliest held
/// packet of an undecided connection is let go, and counted if that connection turns out to be
/// kept (`lostPackets`).
struct PacketSaver {
    /// One connection's verdict, shared by its held packets; or an IP datagram's, whose
    /// fragments follow the verdict of its connection once it is whole.
    private final class Flow {
        let key: SniffSession.ConnectionKey?
        var verdict = SniffSession.SaveVerdict.undecided
        /// A datagram's connection, once the datagram is whole.
        var follows: Flow?
        var lost = 0
        init(key: SniffSession.ConnectionKey?) { self.key = key }
        var decided: SniffSession.SaveVerdict { follows?.verdict ?? verdict }
    }
    private struct Held {
        let flow: Flow
        var bytes: [UInt8]
        let seconds: Int64
        let nanoseconds: Int32
        let wireLength: Int
        let linkType: Int32
    }
    /// Open flows by ID, and kept flows that closed, by their pair of endpoints (for an ACK after
    /// the close, which belongs to no flow any more).
    private var open: [TCPFlowID: Flow] = [:]
    private var closedKept: [SniffSession.ConnectionKey: Flow] = [:]
    /// IP datagrams in progress whose fragments are held (at most as many as the session's
    /// fragment reassembler keeps: each is whole or given up in the end).
    private var datagrams: [IPFragment.Datagram: Flow] = [:]
    /// Datagrams completed lately, for their duplicate fragments (`FragmentRole.duplicate`), which
    /// go where the datagram went: as many as the session's reassembler remembers, each let go
    /// when it says it let go of it (`forgottenDatagrams`).
    private var recent: [IPFragment.Datagram: Flow] = [:]
    private var queue = FIFOQueue<Held>()
    private var heldBytes = 0
    /// Kept connections that lost packets to `maxHeldBytes` (up to `maxLossy` of them).
    private var lossy: [Flow] = []
    static let maxHeldBytes = 64 << 20
    /// What holding a packet costs beside its bytes, counted toward `maxHeldBytes`: its entry in
    /// the queue, and its array's header and the allocator's (a capture of tiny packets held
    /// three times what its packet bytes alone came to).
    static let heldOverhead = MemoryLayout<Held?>.stride + 48
    static let maxClosedKept = 100_000
    static let maxLossy = 10_000

    /// Packets of kept connections let go because `maxHeldBytes` were held, and how many connections.
    var lostPackets: (packets: Int, connections: Int) {
        // (A datagram follows its connection once whole, and its losses are then the connection's.)
        let kept = lossy.filter { $0.follows == nil && $0.verdict == .keep }
        return (kept.reduce(0) { $0 + $1.lost }, kept.count)
    }

    /// Takes `p`, of the connection `info` names (nil: not TCP, or a fragment of a datagram still
    /// missing pieces), with what the session learnt since the packet before (`news`): what `p`
    /// was as an IP fragment, the datagrams given up or let go, and the flows closed.
    mutating func save(_ p: PcapPacket, linkType: Int32, info: SniffSession.PacketFlow?, news: SniffSession.SavingNews,
                       writer: PcapWriter) throws {
        learnDatagrams(news)
        let flow = self.flow(of: info)  // (before the flows closed go: `p` may have closed its own)
        apply(news.closedFlows)
        switch news.fragment {
        case .pending(let d)?:
            // Held in its place until the datagram is whole or given up.
            let datagram = datagrams[d] ?? Flow(key: nil)
            datagrams[d] = datagram
            try hold(datagram, p, linkType, writer)
        case .completed(let d)?:
            complete(d, in: flow)
            fallthrough
        case nil:
            if let flow, flow.verdict != .drop { try hold(flow, p, linkType, writer) }
        case .duplicate(let d)?:
            // Saved with the datagram it repeats, if that one was.
            if let datagram = recent[d] { try hold(datagram, p, linkType, writer) }
        }
        try flush(writer)
    }

    /// The connection a packet belongs to, with what the packet decided about it (nil for none).
    private mutating func flow(of info: SniffSession.PacketFlow?) -> Flow? {
        guard let info else { return nil }
        guard let id = info.flow else { return closedKept[info.key] }
        if let f = open[id] {
            if info.verdict != .undecided { f.verdict = info.verdict }
            return f
        }
        let f = Flow(key: info.key)
        open[id] = f
        // A new connection on these ports: packets outside any flow are no longer the
        // last ACKs of the one before.
        closedKept[info.key] = nil
        if info.verdict != .undecided { f.verdict = info.verdict }
        return f
    }

    /// Datagram `d` is whole: its earlier fragments, held, belong to its connection if it is TCP
    /// (`flow`), else to none.
    private mutating func complete(_ d: IPFragment.Datagram, in flow: Flow?) {
        // (None held when the fragments before were taken for duplicates of the datagram that had
        // the identification before: its duplicates to come still follow this one.)
        let datagram = datagrams.removeValue(forKey: d) ?? Flow(key: nil)
        recent[d] = datagram
        guard let flow else {
            datagram.verdict = .drop
            return
        }
        datagram.follows = flow
        // Fragments let go while the datagram was incomplete count as its connection's.
        if datagram.lost > 0 {
            if flow.lost == 0 && lossy.count < Self.maxLossy { lossy.append(flow) }
            flow.lost += datagram.lost
            datagram.lost = 0
        }
    }

    /// Datagrams given up (their fragments belong to no connection) and completed ones let go
    /// (fragments repeating them are no longer their duplicates).
    private mutating func learnDatagrams(_ news: SniffSession.SavingNews) {
        for d in news.forgottenDatagrams { recent[d] = nil }
        for d in news.droppedDatagrams { datagrams.removeValue(forKey: d)?.verdict = .drop }
    }

    private mutating func apply(_ closed: [(flow: TCPFlowID, keep: Bool)]) {
        for c in closed {
            guard let f = open.removeValue(forKey: c.flow) else { continue }
            if f.verdict != .keep { f.verdict = c.keep ? .keep : .drop }
            if f.verdict == .keep, let key = f.key {
                // Bounded: past it, the last ACKs of long-closed connections are let go.
                if closedKept.count >= Self.maxClosedKept { closedKept.removeAll() }
                closedKept[key] = f
            }
        }
    }

    /// The end of the capture, after the session closed every flow and gave up every datagram
    /// in progress: the last verdicts, and everything still held written or dropped.
    mutating func finish(news: SniffSession.SavingNews, writer: PcapWriter) throws {
        learnDatagrams(news)
        apply(news.closedFlows)
        try flush(writer)
        // Undecided to the end (a flow the session never closed): not a connection it showed.
        for h in queue.elements where h.flow.decided == .keep {
            try writer.write(h.bytes, seconds: h.seconds, nanoseconds: h.nanoseconds, wireLength: h.wireLength, linkType: h.linkType)
        }
        queue.removeAll()
        heldBytes = 0
    }

    private mutating func hold(_ flow: Flow, _ p: PcapPacket, _ linkType: Int32, _ writer: PcapWriter) throws {
        if queue.isEmpty && flow.decided == .keep {
            try writer.write(p.data, seconds: p.seconds, nanoseconds: p.nanoseconds, wireLength: p.wireLength, linkType: linkType)
            return
        }
        queue.append(Held(flow: flow, bytes: Array(p.data), seconds: p.seconds, nanoseconds: p.nanoseconds, wireLength: p.wireLength,
                          linkType: linkType))
        heldBytes += p.data.count + Self.heldOverhead
    }

    /// Writes or drops the held packets from the earliest on, up to the first of an undecided
    /// connection; past `maxHeldBytes`, undecided ones are let go too.
    private mutating func flush(_ writer: PcapWriter) throws {
        while let h = queue.first {
            switch h.flow.decided {
            case .keep:
                try writer.write(h.bytes, seconds: h.seconds, nanoseconds: h.nanoseconds, wireLength: h.wireLength, linkType: h.linkType)
            case .drop:
                break
            case .undecided:
                guard heldBytes > Self.maxHeldBytes else { return }
                // A datagram's fragment is its connection's loss, once it has one.
                let owner = h.flow.follows ?? h.flow
                if owner.lost == 0 && lossy.count < Self.maxLossy { lossy.append(owner) }
                owner.lost += 1
            }
            heldBytes -= h.bytes.count + Self.heldOverhead
            queue.removeFirst()
        }
    }
}

/// The sniffer's output: message lines, frame lines, verbose records or JSON Lines.
struct SniffPrinter {
    enum Mode { case messages, frames, verbose, json }
    let mode: Mode
    let style: TerminalStyle
    var origin: Double = 0 { didSet { originMicros = OutputBuffer.micros(origin) } }
    /// `origin` in whole microseconds, worked out once rather than for every line.
    private var originMicros: Int64? = 0
    /// A single-frame message's line copies its frame line's text and hex (JSON only).
    private let echo: JSONPayloadEcho?

    init(mode: Mode, style: TerminalStyle) {
        self.mode = mode
        self.style = style
        echo = mode == .json ? JSONPayloadEcho() : nil
    }

    private func time(_ t: Double) -> String { FixedPointText.format(t - origin, digits: 6, width: 11) }
    private func arrow(_ d: WebSocketDirection) -> StaticString { d == .clientToServer ? "C→S" : "S→C" }

    private func extra(_ connection: Int, _ direction: WebSocketDirection?, _ t: Double) -> (inout JSONLineWriter) -> Void {
        { w in
            w.int("connection", connection)
            w.string("direction", direction?.rawValue)
            w.seconds("time", t)
            w.seconds("time_relative", relative(t))
        }
    }

    /// Seconds since the first packet, from the two times in whole microseconds, so that the
    /// difference is exact.
    private func relative(_ t: Double) -> Double {
        guard let a = OutputBuffer.micros(t), let b = OutputBuffer.micros(origin) else { return t - origin }
        return Double(a - b) / 1e6
    }

    /// The keys `extra` writes, straight into the output buffer.
    /// A message's line usually follows its frame's with the same connection, direction and time:
    /// those keys are then copied from the line before (`OutputBuffer.remember`), not written again.
    /// (`time_relative` depends on `origin` too, which is set once, at the first packet, before
    /// any line is written.)
    /// Then, if there is one, a round-trip or reply time under `timingKey`.
    private func writeContext(_ out: inout OutputBuffer, _ connection: Int, _ direction: WebSocketDirection, _ t: Double,
                              _ timingKey: StaticString, _ timing: Double?) {
        let key = (UInt64(UInt(bitPattern: connection)) << 1 | (direction == .clientToServer ? 1 : 0), t.bitPattern)
        if !out.appendRemembered(key) {
            let mark = out.mark
            writeContextKeys(&out, connection, direction, t)
            out.remember(since: mark, as: key)
        }
        if let timing { out.jsonSeconds(timingKey, timing) }
    }

    private func writeContextKeys(_ out: inout OutputBuffer, _ connection: Int, _ direction: WebSocketDirection, _ t: Double) {
        // Connection and direction as one run of pieces (see `OutputBuffer.put`): at most 63 bytes.
        out.reserve(64)
        out.separate()
        out.put("\"connection\":")
        out.put(decimal: connection)
        out.put(direction == .clientToServer ? ",\"direction\":\"client\",\"time\":" : ",\"direction\":\"server\",\"time\":")
        out.keyWritten()
        guard let micros = OutputBuffer.micros(t), let originMicros else {
            out.jsonNull()
            out.jsonKey("time_relative")
            return out.jsonNull()
        }
        out.jsonSeconds(micros: micros)
        out.jsonKey("time_relative")
        out.jsonSeconds(micros: micros - originMicros)
    }

    /// A frame's JSON line, from the pipeline's slot (the printing thread writes runs of them in
    /// one access to the output buffer; `printFrame` takes it for each line).
    func writeJSON(_ e: UnsafePointer<SniffPipeline.FrameEntry>, to out: inout OutputBuffer) {
        writeFrameJSON(e.pointee.record, e.pointee.connection, e.pointee.direction, e.pointee.time, e.pointee.timing, to: &out)
    }

    /// A message's JSON line, from the pipeline's slot.
    func writeJSON(_ e: UnsafePointer<SniffPipeline.MessageEntry>, to out: inout OutputBuffer) {
        writeMessageJSON(e.pointee.record, e.pointee.connection, e.pointee.direction, e.pointee.time, e.pointee.timing, to: &out)
    }

    @inline(__always)
    private func writeFrameJSON(_ f: FrameRecordView, _ c: Int, _ d: WebSocketDirection, _ t: Double, _ timing: MessageTiming,
                                to out: inout OutputBuffer) {
        DissectionRenderer.writeJSON(f, to: &out, echo: echo) { writeContext(&$0, c, d, t, "ping_rtt", timing.pingRTT) }
    }

    @inline(__always)
    private func writeMessageJSON(_ m: MessageRecordView, _ c: Int, _ d: WebSocketDirection, _ t: Double, _ timing: MessageTiming,
                                  to out: inout OutputBuffer) {
        DissectionRenderer.writeJSON(m, to: &out, echo: echo) { writeContext(&$0, c, d, t, "reply_latency", timing.replyLatency) }
    }

    /// A frame's line (or lines, or none in message mode unless it is a control frame).
    func printFrame(_ c: Int, _ d: WebSocketDirection, _ t: Double, _ f: FrameRecordView, _ timing: MessageTiming) {
        switch mode {
        case .json:
            Output.withBuffer { writeFrameJSON(f, c, d, t, timing, to: &$0) }
        case .verbose:
            let rtt = timing.pingRTT.map { " rtt \(Self.milliseconds($0))" }
            if wroteRecord({ DissectionRenderer.writeText(f, style: style, suffix: rtt, to: &$0, prefix: $1) }, t, c, d) { return }
            Output.line(Self.appendingToFirstLine(DissectionRenderer.text(f, style: style, prefix: "\(time(t)) #\(c) \(arrow(d)) "), rtt))
        case .frames:
            if writeFrameLine(c, d, t, f, timing) { return }
            var line = "\(time(t)) #\(c) \(arrow(d)) \(f.header.opcode.name)\(f.header.fin ? "" : " (no FIN)")\(f.header.rsv1 ? " RSV1" : "") \(f.header.payloadLength) B"
            if f.incomplete { line += style.yellow(" incomplete") }
            if let close = f.close { line += " close " + closeText(close) }
            else if let text = f.textString { line += " " + preview(text, cut: f.payloadTruncated) }
            finishControlLine(line, f, timing)
        case .messages:
            // Control frames are shown in message mode too: they are the connection's events.
            guard f.header.opcode.isControl || !f.violations.isEmpty else { return }
            var line = "\(time(t)) #\(c) \(arrow(d)) \(f.header.opcode.name)"
            if let close = f.close { line += " " + closeText(close) }
            finishControlLine(line, f, timing)
        }
    }

    /// A message's line (or lines; none in frame mode).
    func printMessage(_ c: Int, _ d: WebSocketDirection, _ t: Double, _ m: MessageRecordView, _ timing: MessageTiming) {
        switch mode {
        case .json:
            Output.withBuffer { writeMessageJSON(m, c, d, t, timing, to: &$0) }
        case .verbose:
            let latency = timing.replyLatency.map { ", reply \(Self.milliseconds($0))" }
            if wroteRecord({ DissectionRenderer.writeText(m, style: style, suffix: latency, to: &$0, prefix: $1) }, t, c, d) { return }
            Output.line(Self.appendingToFirstLine(DissectionRenderer.text(m, style: style, prefix: "\(time(t)) #\(c) \(arrow(d)) "), latency))
        case .frames:
            return
        case .messages:
            if writeMessageLine(c, d, t, m, timing) { return }
            var line = "\(time(t)) #\(c) \(arrow(d)) \(style.green(m.opcode.name)) \(m.dataLength) B"
            if m.fragmentCount > 1 { line += " (\(m.fragmentCount) frames)" }
            if m.incomplete { line += style.yellow(" incomplete") }
            if m.compressed { line += " deflated \(m.length) B" }
            if let e = m.borrowedEnvelope?.pointee {  // (not `m.envelope`: see ConnectionDissector.report)
                // (Each cut to a preview's length: a 40,000-character type made a 40,000-character line.)
                line += e.error == nil ? " \(style.cyan("[\(TerminalText.safe(Self.shortened(e.type)))]"))" : " \(style.yellow("[bad envelope]"))"
                if let cid = e.correlationID { line += " cid=\(TerminalText.safe(Self.shortened(cid)))" }
            }
            if let l = timing.replyLatency { line += " reply \(Self.milliseconds(l))" }
            if let text = m.textString { line += " " + preview(text, cut: m.dataTruncated) }
            else if !m.data.isEmpty { line += " " + hexString(m.data.prefix(16)) + (m.dataLength > 16 ? "…" : "") }
            Output.line(line)
            for v in m.violations { Output.line("    " + DissectionRenderer.violationText(v, style: style)) }
        }
    }

    /// Consumed, so that ending it is left to the case it is: a frame or a message needs nothing
    /// done. Borrowed, every event was destroyed after it through its type's value witness.
    func print(_ event: consuming SniffEvent) {
        switch consume event {
        case .handshake(let h):
            if mode == .json {
                var w = JSONLineWriter()
                w.string("kind", "handshake")
                w.int("connection", h.connection)
                w.seconds("time", h.time)
                w.seconds("time_relative", relative(h.time))
                w.string("client", h.client)
                w.string("server", h.server)
                w.string("request", h.requestLine.isEmpty ? nil : h.requestLine)  // null: no request in the capture
                w.string("host", h.host)
                w.string("origin", h.origin)
                w.string("key", h.key)
                w.array("offered_subprotocols", h.offeredSubprotocols.map(JSONLineWriter.quoted))
                w.array("offered_extensions", h.offeredExtensions.map(JSONLineWriter.quoted))
                w.string("request_error", h.requestError)
                w.int("status", h.status)
                w.bool("accept_matches", h.acceptMatches)
                w.string("subprotocol", h.subprotocol)
                w.string("extensions", h.extensions)
                w.string("response_error", h.responseError)
                w.bool("upgraded", h.upgraded)
                Output.line(w.finish())
            } else {
                // Every field but the addresses comes from the wire: escaped for the terminal.
                let safe = TerminalText.safe
                var line = "\(time(h.time)) #\(h.connection) \(style.bold("handshake")) \(h.client) → \(h.server) \(h.requestLine.isEmpty ? "(no request)" : safe(h.requestLine))"
                if let s = h.status { line += " → \(s) \(safe(h.statusReason ?? ""))" } else { line += " → (no response)" }
                if let ok = h.acceptMatches { line += ok ? " accept ok" : style.red(" accept MISMATCH") }
                if let p = h.subprotocol { line += " subprotocol=\(safe(p))" }
                if let e = h.extensions { line += " extensions=\(safe(e))" }
                Output.line(line)
                if mode == .verbose {
                    // Every field: the request's too.
                    var fields = ["host=\(h.host.map(safe) ?? "-")", "origin=\(h.origin.map(safe) ?? "-")", "key=\(h.key.map(safe) ?? "-")"]
                    if !h.offeredSubprotocols.isEmpty { fields.append("offered subprotocols=\(safe(h.offeredSubprotocols.joined(separator: ", ")))") }
                    if !h.offeredExtensions.isEmpty { fields.append("offered extensions=\(safe(h.offeredExtensions.joined(separator: ", ")))") }
                    Output.line("    " + fields.joined(separator: " "))
                }
                if let e = h.requestError { Output.line("    " + style.red("request: \(safe(e))")) }
                if let e = h.responseError { Output.line("    " + style.red("response: \(safe(e))")) }
            }
        case .frame(let c, let d, let t, let f, let timing):
            printFrame(c, d, t, f, timing)
        case .message(let c, let d, let t, let m, let timing):
            printMessage(c, d, t, m, timing)
        case .gap(let c, let d, let missing, let t, let bufferFull):
            if mode == .json {
                var w = JSONLineWriter()
                w.string("kind", "gap")
                extra(c, d, t)(&w)
                w.int("missing_bytes", missing)
                if bufferFull { w.bool("buffer_full", true) }
                Output.line(w.finish())
            } else if bufferFull {
                Output.line("\(time(t)) #\(c) \(d.map(arrow) ?? "?") " + style.yellow("gap: \(missing) bytes given up, not captured before the out-of-order buffer filled (--max-flow-buffer); resynchronising"))
            } else {
                Output.line("\(time(t)) #\(c) \(d.map(arrow) ?? "?") " + style.yellow("gap: \(missing) bytes not captured; resynchronising"))
            }
        case .resync(let c, let d, let t, let r):
            if mode == .json {
                var w = JSONLineWriter()
                w.string("kind", "resync")
                extra(c, d, t)(&w)
                w.int("gap_end", r.gapEnd)
                w.int("offset", r.offset)
                w.int("skipped_bytes", r.skipped)
                Output.line(w.finish())
            } else {
                // (`gapEnd` 0: no gap ends at byte 0; the connection was picked up in its middle,
                // --port, or a gap cut its handshake head short.)
                Output.line("\(time(t)) #\(c) \(arrow(d)) " + style.yellow(DissectionRenderer.resyncText(r)))
            }
        case .closed(let s):
            if mode == .json {
                Output.line(Self.summaryJSON(s, kind: "connection_closed"))
            } else {
                Output.line("\(time(s.lastTime)) #\(s.connection) \(style.bold("closed")) (\(s.reason))\(s.closeCode.map { " close \($0)" } ?? "") C→S \(s.messages[.clientToServer] ?? 0) msgs, S→C \(s.messages[.serverToClient] ?? 0) msgs")
            }
        }
    }

    /// The usual message line (no envelope, latency, gap or violation; a text preview that needs no
    /// character counting) written straight into the output buffer: the same bytes as the line the
    /// general case builds as a String, at a fraction of the cost. False, having written nothing,
    /// for anything else.
    private func writeMessageLine(_ c: Int, _ d: WebSocketDirection, _ t: Double, _ m: MessageRecordView,
                                  _ timing: MessageTiming) -> Bool {
        guard m.envelope == nil, timing.replyLatency == nil, !m.incomplete, m.violations.isEmpty,
              !m.textEndsInsideCharacter else { return false }
        var shown = (length: 0, more: false)
        if let text = m.text {
            // (A message's text ends with a whole character: one of 80 bytes or fewer is shown whole.)
            guard let p = Self.bytePreview(text, shortIsWhole: true) else { return false }
            shown = p
        }
        Output.withBuffer { out in
            writeLineStart(&out, t, c, d)
            if style.enabled { out.append("\u{1B}[32m") }
            out.append(contentsOf: m.opcode.name)
            if style.enabled { out.append("\u{1B}[0m") }
            out.append(" ")
            out.append(decimal: m.dataLength)
            out.append(" B")
            if m.fragmentCount > 1 {
                out.append(" (")
                out.append(decimal: m.fragmentCount)
                out.append(" frames)")
            }
            if m.compressed {
                out.append(" deflated ")
                out.append(decimal: m.length)
                out.append(" B")
            }
            if let text = m.text {
                Self.writePreview(&out, UnsafeRawBufferPointer(rebasing: text[0..<shown.length]), cut: shown.more || m.dataTruncated)
            } else if !m.data.isEmpty {
                out.append(" ")
                out.appendHex(UnsafeRawBufferPointer(rebasing: m.data.prefix(16)))
                if m.dataLength > 16 { out.append("…") }
            }
            out.append(0x0A)
        }
        return true
    }

    /// A frame's line (frames mode) written straight into the output buffer, byte for byte as
    /// the String path in `printFrame` writes it; false, with nothing written, for the frames that
    /// need that path (incomplete, close, a violation, a round-trip time, a text whose preview
    /// `characterPrefix` cannot tell or that `TerminalText` must escape beyond JSON).
    private func writeFrameLine(_ c: Int, _ d: WebSocketDirection, _ t: Double, _ f: FrameRecordView,
                                _ timing: MessageTiming) -> Bool {
        guard !f.incomplete, f.borrowedClose == nil, f.violations.isEmpty, timing.pingRTT == nil else { return false }
        var shown = (length: 0, more: false)
        if let text = f.text {
            // (A frame's text may have been cut inside a character: it is read to its end.)
            guard let p = Self.bytePreview(text, shortIsWhole: false) else { return false }
            shown = p
        }
        Output.withBuffer { out in
            writeLineStart(&out, t, c, d)
            out.append(contentsOf: f.header.opcode.name)
            if !f.header.fin { out.append(" (no FIN)") }
            if f.header.rsv1 { out.append(" RSV1") }
            out.append(" ")
            out.append(decimal: f.header.payloadLength)
            out.append(" B")
            if let text = f.text {
                Self.writePreview(&out, UnsafeRawBufferPointer(rebasing: text[0..<shown.length]), cut: shown.more || f.payloadTruncated)
            }
            out.append(0x0A)
        }
        return true
    }

    /// How much of `text` a line's preview shows when it is written from the bytes (see
    /// `TerminalText.characterPrefix`), and whether more follow; nil when the String path must
    /// write it. With `shortIsWhole`, a text of 80 bytes or fewer is shown whole without being read.
    private static func bytePreview(_ text: UnsafeRawBufferPointer, shortIsWhole: Bool) -> (length: Int, more: Bool)? {
        // characterPrefix reads only scalars JSON escaping covers (it declines DEL, C1 and the
        // bidirectional controls): what it tells needs no second look.
        if text.count > 80 || !shortIsWhole { return TerminalText.characterPrefix(text, limit: 80) }
        // DEL, C1 and the bidirectional controls, which JSON escaping lets through and a
        // terminal does not: the String path escapes them (TerminalText).
        return TerminalText.needsEscapeBeyondJSON(text) ? nil : (text.count, false)
    }

    /// Whether `write` wrote a -v record into the output buffer, each line starting as
    /// `writeLineStart` starts it (it writes nothing when it leaves the record to the String path).
    private func wroteRecord(_ write: (inout OutputBuffer, (inout OutputBuffer) -> Void) -> Bool,
                             _ t: Double, _ c: Int, _ d: WebSocketDirection) -> Bool {
        var written = false
        Output.withBuffer { out in written = write(&out) { writeLineStart(&$0, t, c, d) } }
        return written
    }

    /// A text line's time, connection and direction, as `time`, `#` and `arrow` write them.
    private func writeLineStart(_ out: inout OutputBuffer, _ t: Double, _ c: Int, _ d: WebSocketDirection) {
        FixedPointText.write(t - origin, digits: 6, width: 11, to: &out)
        out.append(" #")
        out.append(decimal: c)
        out.append(" ")
        out.append(arrow(d))
        out.append(" ")
    }

    /// A preview: the shown bytes JSON-escaped in quotes, and "…" when `cut`.
    private static func writePreview(_ out: inout OutputBuffer, _ shown: UnsafeRawBufferPointer, cut: Bool) {
        out.append(" \"")
        out.appendJSONEscaped(shown)
        if cut { out.append("…") }
        out.append("\"")
    }

    /// A round trip or a latency in seconds as text lines show it: `12.345 ms`.
    static func milliseconds(_ seconds: Double) -> String {
        "\(FixedPointText.format(seconds * 1000, digits: 3, width: 0)) ms"
    }

    /// `text` with `suffix` at the end of its first line (a record's head, before its payload lines).
    static func appendingToFirstLine(_ text: String, _ suffix: String?) -> String {
        guard let suffix else { return text }
        guard let newline = text.firstIndex(of: "\n") else { return text + suffix }
        return text[..<newline] + suffix + text[newline...]
    }

    /// `1000 Normal Closure "reason"`, or `(no code)`.
    private func closeText(_ close: WebSocketClosePayload) -> String {
        (close.code.map { "\($0.code) \($0.name)" } ?? "(no code)") + (close.reason.isEmpty ? "" : " \(TerminalText.quoted(close.reason))")
    }

    /// Prints a frame line with its ping round trip, then the frame's violations.
    private func finishControlLine(_ line: String, _ f: FrameRecordView, _ timing: MessageTiming) {
        Output.line(line + (timing.pingRTT.map { " rtt \(Self.milliseconds($0))" } ?? ""))
        for v in f.violations { Output.line("    " + DissectionRenderer.violationText(v, style: style)) }
    }

    /// The first 80 characters of `text`, quoted, with "…" when there were more, or when the text
    /// itself was cut (`cut`: at --max-payload).
    private func preview(_ text: String, cut: Bool = false) -> String {
        // A string has no more characters than UTF-8 bytes: short ones need no counting, and long
        // ones are counted only as far as the 81st character.
        guard text.utf8.count > 80 else { return TerminalText.quoted(cut ? text + "…" : text) }
        // A character may be any number of scalars (a letter under 100,000 combining marks is one):
        // the preview also stops at 320 scalars, so that its line stays a line.
        let scalars = text.unicodeScalars
        let scalarEnd = scalars.index(scalars.startIndex, offsetBy: Self.previewScalars, limitedBy: scalars.endIndex) ?? scalars.endIndex
        let end = text.index(text.startIndex, offsetBy: 80, limitedBy: text.endIndex) ?? text.endIndex
        if scalarEnd < end { return TerminalText.quoted(String(scalars[..<scalarEnd]) + "…") }
        guard end != text.endIndex else { return TerminalText.quoted(cut ? text + "…" : text) }
        return TerminalText.quoted(String(text[..<end]) + "…")
    }

    /// At most this many Unicode scalars in a one-line preview.
    static let previewScalars = 320

    /// An envelope's type or correlation id in a one-line message: at most 64 characters, then "…".
    static func shortened(_ s: String) -> String {
        s.count <= 64 ? s : String(s.prefix(63)) + "…"
    }

    static func summaryJSON(_ s: ConnectionSummary, kind: String) -> String {
        var w = JSONLineWriter()
        w.string("kind", kind)
        w.int("connection", s.connection)
        w.string("client", s.client)
        w.string("server", s.server)
        w.seconds("first_time", s.firstTime)
        w.seconds("last_time", s.lastTime)
        w.seconds("duration", s.lastTime - s.firstTime)
        w.string("reason", s.reason)
        w.int("messages_client_to_server", s.messages[.clientToServer] ?? 0)
        w.int("messages_server_to_client", s.messages[.serverToClient] ?? 0)
        w.int("bytes_client_to_server", s.bytes[.clientToServer] ?? 0)
        w.int("bytes_server_to_client", s.bytes[.serverToClient] ?? 0)
        w.int("frames_client_to_server", s.frames[.clientToServer] ?? 0)
        w.int("frames_server_to_client", s.frames[.serverToClient] ?? 0)
        var ow = JSONLineWriter()
        for (k, v) in s.opcodes.sorted(by: { $0.key < $1.key }) { ow.int(k, v) }
        w.raw("opcodes", ow.finish())
        w.int("close_code", s.closeCode.map(Int.init))
        w.int("violations", s.violations)
        w.int("gaps", s.gaps)
        w.int("gap_bytes", s.gapBytes)
        return w.finish()
    }

    /// The connections' lines (the last 10,000: `summaries`) and the totals over all of them.
    func printStats(_ summaries: [ConnectionSummary], totals: SniffTotals, packets: Int, skipped: [PacketSkipReason: Int], cut: Int, live: PcapStatistics?,
                    memory: DissectionMemoryBudget? = nil) {
        let notHeldWhole = memory?.messagesNotHeldWhole ?? 0
        let notInflated = memory?.messagesNotInflated ?? 0
        let framesNotHeldWhole = memory?.framesNotHeldWhole ?? 0
        let messages = totals.messages
        let bytes = totals.bytes
        if mode == .json {
            for s in summaries { Output.line(Self.summaryJSON(s, kind: "connection_stats")) }
            var w = JSONLineWriter()
            w.string("kind", "stats")
            w.int("packets", packets)
            w.int("packets_skipped", skipped.values.reduce(0, +))
            w.int("packets_cut", cut)
            w.int("connections", totals.connections)
            w.int("messages", messages)
            w.int("bytes", bytes)
            w.int("violations", totals.violations)
            w.int("gaps", totals.gaps)
            w.int("gap_bytes", totals.gapBytes)
            w.int("connections_with_gaps", totals.connectionsWithGaps)
            w.int("messages_not_held_whole", notHeldWhole)
            w.int("messages_not_inflated", notInflated)
            w.int("frames_not_held_whole", framesNotHeldWhole)
            if let live { w.uint("kernel_received", live.received); w.uint("kernel_dropped", live.dropped) }
            Output.line(w.finish())
            return
        }
        Output.line(style.bold("connection  client → server                              msgs C→S/S→C   bytes C→S/S→C     close  duration"))
        if totals.connections > summaries.count {
            Output.line(style.dim("(the \(totals.connections - summaries.count) connections before these are counted in the total, not listed)"))
        }
        // A column is padded to its width but never cut: a long IPv6 pair or a large byte count
        // pushes the rest of its line right (one space still between), it does not lose digits.
        func column(_ text: String, _ width: Int) -> String {
            let n = text.count
            return n < width ? text + String(repeating: " ", count: width - n) : text + " "
        }
        for s in summaries {
            let pair = column("\(s.client) → \(s.server)", 44)
            let msgs = column("\(s.messages[.clientToServer] ?? 0)/\(s.messages[.serverToClient] ?? 0)", 15)
            let b = column("\(s.bytes[.clientToServer] ?? 0)/\(s.bytes[.serverToClient] ?? 0)", 17)
            let close = column(s.closeCode.map(String.init) ?? "-", 6)
            Output.line(column("#\(s.connection)", 12) + pair + msgs + b + close + " " + FixedPointText.format(s.lastTime - s.firstTime, digits: 6, width: 0) + "s")
            let ops = s.opcodes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            let counts = (ops.isEmpty ? [] : ["opcodes: \(ops)"]) + (s.violations > 0 ? ["violations \(s.violations)"] : [])
                + (s.gaps > 0 ? ["gaps \(s.gaps) (\(s.gapBytes) bytes not captured)"] : [])
            if !counts.isEmpty { Output.line("            " + counts.joined(separator: ", ")) }
        }
        Output.line("total: \(packets) packets, \(totals.connections) WebSocket connections, \(messages) messages, \(bytes) bytes"
                    + (totals.violations > 0 ? ", \(totals.violations) violations" : "")
                    + (totals.gaps > 0 ? ", \(counted(totals.gaps, "gap")) (\(totals.gapBytes) bytes not captured)" : "")
                    + (notHeldWhole > 0 ? ", \(notHeldWhole) not held whole (--max-message-memory)" : "")
                    + (notInflated > 0 ? ", \(notInflated) not inflated (--max-message-memory)" : "")
                    + (framesNotHeldWhole > 0 ? ", \(framesNotHeldWhole) frames shown cut (--max-message-memory)" : ""))
        if let live { Output.line("kernel: \(live.received) received, \(live.dropped) dropped") }
    }
}
