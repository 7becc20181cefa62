import ArgumentParser
import Dispatch
import Foundation
import Logging
import WebSocketScripting
import WebSocketServer

extension WSCtlCommand {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run a WebSocket echo, broadcast or chat-room server for testing clients.",
            discussion: """
                With no flags: an echo server on ws://127.0.0.1:8080/ that sends each message back as one \
                message of the same type, negotiating permessage-deflate when the client offers it.

                Modes:
                  echo       each message back to its sender (default)
                  broadcast  each message to every client (--no-echo-self leaves out the sender)
                  rooms      the JSON envelope chat-room protocol (see the README)

                Close codes the server sends: 1000 normal (or --exec process exited), 1001 shutting down or \
                idle, 1002 protocol error, 1003 binary message to --exec, 1007 invalid UTF-8 or compressed \
                data, 1008 slow consumer, 1009 message or frame too big, 1011 script error, \
                4001 authentication required, 4002 authentication failed, 4003 origin not allowed, \
                4004 rate limit exceeded.

                SIGINT or SIGTERM: every client gets 1001, the server waits up to --shutdown-grace seconds, \
                prints a summary and exits 0.

                SCRIPTING (--script FILE.lua, Lua 5.4)
                  Hooks (on_message replaces the --mode behaviour, which applies without it):
                    on_open(conn, request)   false refuses (4001 unless closed already)
                    on_message(conn, msg)    msg.text (nil if binary), .data, .binary,
                                             .envelope
                    on_close(conn, code, reason)
                  request: path, query (table), headers (lower-case), remote, subprotocol
                  conn: id, send(text), send_binary(bytes), send_envelope(type, payload
                    [, cid]), close([code [, reason]]), join(room), leave(room), rooms(),
                    set(k, v), get(k), send_raw(bytes)
                  ws: broadcast(text [, room [, except]]), members(room), send_to(id, text),
                    connections(), after(ms, fn), every(ms, fn) -> handle:cancel(),
                    log(level, text), json.encode(v), json.decode(text), json.null, now(),
                    uuid(), encode_frame(opcode, payload [, fin [, rsv]]); print() logs
                  Hooks and timers run one at a time on one Lua state and thread (--threads
                  defaults to 1 with a script). No io, os.execute, require, loadfile, bytecode.
                  A call past --script-budget instructions or --script-memory fails; a failing
                  hook is logged with file:line and its connection closed with 1011. A script
                  that does not load: exit 2. SIGHUP reloads it (connections, rooms and
                  conn:set values stay; old timers stop). See Fixtures/scripts/*.lua.

                EXEC (--exec COMMAND, as websocketd)
                  --mode echo: /bin/sh -c COMMAND per connection. Each text message is a
                  line on its stdin; each line it prints is a message back (binary if not
                  UTF-8).
                  Binary messages close with 1003. The process exiting closes with 1000; the
                  connection closing sends SIGTERM to its process group (SIGKILL after 2 s).
                  stderr lines go to the log. --mode broadcast: one process for everyone, its
                  lines to every client, every client's messages to its stdin.
                  Environment: the server's plus REMOTE_ADDR, REMOTE_PORT, PATH_INFO,
                  QUERY_STRING, REQUEST_URI, SERVER_NAME, SERVER_PORT, HTTP_* (one per request
                  header), WSCTL_CONNECTION_ID.
                  Buffering: programs writing to a pipe hold output until a buffer fills. wsctl
                  sets PYTHONUNBUFFERED=1 and preloads coreutils' libstdbuf (as stdbuf -oL),
                  which covers Python and C stdio tools (sed, tr, grep…). Others need their own
                  switch: perl $| = 1; mawk -W interactive; Ruby $stdout.sync = true; Go, Java,
                  Rust: flush. --no-line-buffering turns this off.

                Examples:
                  wsctl serve
                  wsctl serve --port 0 --mode broadcast --no-echo-self
                  wsctl serve --mode rooms --auth-token s3cret --allow-origin '*.example.com'
                  wsctl serve --rate-limit 100/s --max-message-size 1MiB --ping-interval 30s
                  wsctl serve --tls-cert cert.pem --tls-key key.pem --metrics
                  wsctl serve --script Fixtures/scripts/chat.lua
                  wsctl serve --exec 'sh Fixtures/scripts/echo.sh'
                  wsctl serve --mode broadcast --exec 'tail -F /var/log/syslog'
                """
        )

        @Option(help: "Address to bind.") var host = "127.0.0.1"
        @Option(parsing: .unconditional, help: "Port; 0 picks a free one (printed at start).") var port = 8080
        @Option(help: ArgumentHelp("Only this path upgrades (others get 404). Default: any path.", valueName: "PATH")) var path: String?
        @Option(parsing: .unconditional, help: ArgumentHelp("Event-loop threads, 1-256; each holds 3 file descriptors, and at most half of the open-file limit (ulimit -n) goes to them. Default: one per core.", valueName: "N")) var threads: Int?
        @Option(help: ArgumentHelp("echo, broadcast or rooms.", valueName: "MODE")) var mode: ServerMode = .echo
        @Flag(help: "Broadcast mode: do not send a message back to its sender.") var noEchoSelf = false
        @Option(name: .customLong("subprotocol"), help: ArgumentHelp("A subprotocol to accept (repeatable, in preference order).", valueName: "NAME"))
        var subprotocols: [String] = []
        @Flag(help: "Do not negotiate permessage-deflate.") var noCompression = false

        @Option(name: .customLong("auth-token"), help: ArgumentHelp("Accepted token, from ?token= or Authorization: Bearer (repeatable). Missing → close 4001, wrong → 4002.", valueName: "TOKEN"))
        var authTokens: [String] = []
        @Option(help: ArgumentHelp("File of accepted tokens, one per line (# comments).", valueName: "FILE")) var authTokensFile: String?
        @Option(name: .customLong("allow-origin"), help: ArgumentHelp("Allowed Origin (repeatable; *.example.com wildcards). Others → close 4003. Default: any.", valueName: "ORIGIN"))
        var allowOrigins: [String] = []
        @Option(help: ArgumentHelp("Messages per second per connection, e.g. 100/s or 100/s:200 (burst). Over it → close 4004. Default: none.", valueName: "RATE"))
        var rateLimit: String?

        @Option(help: ArgumentHelp("Largest message (and inflated message), e.g. 16MiB. Over it → close 1009.", valueName: "SIZE")) var maxMessageSize = "16MiB"
        @Option(help: ArgumentHelp("Largest frame. Over it → close 1009.", valueName: "SIZE")) var maxFrameSize = "16MiB"
        @Option(parsing: .unconditional, help: ArgumentHelp("Most open WebSocket connections (at least 1); more get HTTP 503.", valueName: "N")) var maxConnections = 100_000
        @Option(help: ArgumentHelp("Time a client has to send its upgrade request; more than 0.", valueName: "DURATION")) var handshakeTimeout = "10s"
        @Option(help: ArgumentHelp("Send a ping this often; no pong within --pong-timeout closes the connection. 0 or not given: off (the default).", valueName: "DURATION")) var pingInterval: String?
        @Option(help: ArgumentHelp("How long to wait for a pong; more than 0.", valueName: "DURATION")) var pongTimeout = "10s"
        @Option(help: ArgumentHelp("Close connections idle this long (1001). 0 or not given: off (the default).", valueName: "DURATION")) var idleTimeout: String?
        @Option(help: ArgumentHelp("Bytes queued for one client before it counts as a slow consumer (broadcast, rooms: close 1008; echo: reading pauses).", valueName: "SIZE")) var maxSendQueue = "17MiB"
        @Option(help: ArgumentHelp("How long to wait for clients to answer the 1001 at shutdown (and for any close the server starts); 0: do not wait, close at once.", valueName: "DURATION")) var shutdownGrace = "5s"

        @Option(help: ArgumentHelp("PEM certificate chain: serve wss://.", valueName: "PEM")) var tlsCert: String?
        @Option(help: ArgumentHelp("PEM private key for --tls-cert.", valueName: "PEM")) var tlsKey: String?
        @Flag(help: "Serve Prometheus metrics at GET /metrics and health at GET /healthz on the same port.") var metrics = false
        @Option(help: ArgumentHelp("Lua 5.4 script with on_open/on_message/on_close hooks (see SCRIPTING above). SIGHUP reloads it.", valueName: "FILE.lua"))
        var script: String?
        @Option(help: ArgumentHelp("Most memory the script's Lua state may use; beyond it the call fails.", valueName: "SIZE")) var scriptMemory = "64MiB"
        @Option(parsing: .unconditional, help: ArgumentHelp("Lua instructions one hook or timer call may run before it is stopped with an error.", valueName: "N"))
        var scriptBudget = 10_000_000
        @Option(help: ArgumentHelp("Run COMMAND (with /bin/sh -c) per connection: each text message a line on its stdin, each stdout line a message back (see EXEC above). With --mode broadcast: one process for all clients.", valueName: "COMMAND"))
        var exec: String?
        @Option(parsing: .unconditional, help: ArgumentHelp("Most --exec processes at once; more clients get HTTP 503.", valueName: "N")) var maxProcesses = 256
        @Flag(help: "Leave the --exec process's stdout buffering alone (by default C stdio and Python are made to flush every line).")
        var noLineBuffering = false
        @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error, critical.", valueName: "LEVEL")) var logLevel: Logger.Level = .info
        @Option(help: ArgumentHelp("text or json.", valueName: "FORMAT")) var logFormat: LogFormat = .text

        func validate() throws {
            if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
            if !(0...65535).contains(port) { throw ValidationError("--port takes 0-65535") }
            if let threads, let problem = ThreadLimit.problem(threads: threads, openFileLimit: ThreadLimit.openFileLimit()) {
                throw ValidationError("--threads \(threads): \(problem)")
            }
            if noEchoSelf && mode != .broadcast { throw ValidationError("--no-echo-self applies to --mode broadcast") }
            if script != nil && exec != nil { throw ValidationError("--script and --exec do not go together: choose one") }
            if exec != nil && mode == .rooms { throw ValidationError("--exec works with --mode echo (a process per connection) or broadcast (one for all), not rooms") }
            if let exec, exec.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--exec needs a command") }
            if maxProcesses < 1 { throw ValidationError("--max-processes must be at least 1") }
            if maxConnections < 1 { throw ValidationError("--max-connections must be at least 1, got \(maxConnections)") }
            _ = try makeConfiguration()
        }

        func makeConfiguration() throws -> ServerConfiguration {
            var c = ServerConfiguration()
            c.host = host
            c.port = port
            c.path = path
            c.threads = threads
            c.mode = mode
            c.echoSelf = !noEchoSelf
            c.subprotocols = subprotocols
            c.compression = !noCompression
            var tokens = Set(authTokens)
            if let f = authTokensFile {
                do { tokens.formUnion(try AuthTokensFile.load(path: f)) } catch { throw ValidationError("--auth-tokens-file: \(error)") }
            }
            c.authTokens = tokens
            do { _ = try OriginPolicy(validating: allowOrigins) } catch { throw ValidationError("--allow-origin: \(error)") }
            c.allowedOrigins = allowOrigins
            if let r = rateLimit {
                do {
                    let rate = try RateLimit(parsing: r)
                    c.rateLimit = rate.messagesPerSecond
                    c.rateBurst = rate.burst
                } catch { throw ValidationError("--rate-limit: \(error)") }
            }
            func size(_ name: String, _ v: String) throws -> Int {
                do { return try ByteSizeFlag.parse(v) } catch { throw ValidationError("--\(name): \(error)") }
            }
            func seconds(_ name: String, _ v: String) throws -> Double {
                do { return try DurationFlag.parseSeconds(v) } catch { throw ValidationError("--\(name): \(error)") }
            }
            c.maxMessageSize = try size("max-message-size", maxMessageSize)
            c.maxFrameSize = try size("max-frame-size", maxFrameSize)
            c.maxSendQueue = try size("max-send-queue", maxSendQueue)
            c.maxConnections = maxConnections
            // A duration of 0 means "off" where off is a meaning (pings, idle closes; "no wait" for
            // the grace) and is refused where nothing could work: no request arrives in 0 s, and
            // every ping would close its connection before the pong could come.
            func positive(_ name: String, _ v: String, _ why: String) throws -> Double {
                let s = try seconds(name, v)
                guard s > 0 else { throw ValidationError("--\(name) \(v): must be more than 0 (\(why))") }
                return s
            }
            func offWhenZero(_ name: String, _ v: String?) throws -> Double? {
                guard let v else { return nil }
                let s = try seconds(name, v)
                return s > 0 ? s : nil
            }
            c.handshakeTimeout = try positive("handshake-timeout", handshakeTimeout, "with 0 no client could complete its upgrade")
            c.pingInterval = try offWhenZero("ping-interval", pingInterval)
            c.pongTimeout = try positive("pong-timeout", pongTimeout, "with 0 every ping would close its connection before the pong arrived; --ping-interval 0 turns pings off")
            c.idleTimeout = try offWhenZero("idle-timeout", idleTimeout)
            c.shutdownGrace = try seconds("shutdown-grace", shutdownGrace)
            c.tlsCertificatePath = tlsCert
            c.tlsKeyPath = tlsKey
            if let tlsCert, let tlsKey {
                // Read and parsed here, so that a bad file is a usage error naming it (as for
                // --script and --auth-tokens-file), not a failure to listen.
                do { _ = try TLSFiles.makeContext(certificatePath: tlsCert, keyPath: tlsKey) } catch {
                    throw ValidationError(Self.describe(error))
                }
            }
            c.metrics = metrics
            if let script, !FileManager.default.isReadableFile(atPath: script) {
                throw ValidationError("--script: cannot read \(script)")
            }
            guard try size("script-memory", scriptMemory) >= 1 << 20 else { throw ValidationError("--script-memory: at least 1MiB") }
            guard scriptBudget >= 1000 else { throw ValidationError("--script-budget: at least 1000 instructions") }
            c.execCommand = exec
            c.maxProcesses = maxProcesses
            c.execLineBuffered = !noLineBuffering
            return c
        }

        /// `--tls-cert PATH: problem` or `--tls-key PATH: problem`.
        static func describe(_ error: TLSFileError) -> String {
            "\(error.file == .certificate ? "--tls-cert" : "--tls-key") \(error.path): \(error.problem)"
        }

        /// The Lua host for --script, made on the loop it runs on.
        func makeScriptFactory(logger: Logger, maxMessageSize: Int) throws -> ServerScriptFactory? {
            guard let path = script else { return nil }
            let memory = try ByteSizeFlag.parse(scriptMemory)
            let budget = scriptBudget
            return { loop in
                try ScriptHost(path: path, loop: loop, memoryLimit: memory, instructionBudget: budget,
                               maxMessageSize: maxMessageSize, logger: logger)
            }
        }

        func run() throws {
            let configuration = try makeConfiguration()
            let level = logLevel
            let format = logFormat
            LoggingSystem.bootstrap { label in
                var h = StderrLogHandler(label: label, json: format == .json)
                h.logLevel = level
                return h
            }
            let logger = Logger(label: "wsctl.serve")
            // Until the signal sources below exist, a SIGHUP (reload) must not end the process.
            signal(SIGHUP, SIG_IGN)
            let server = WebSocketServer(configuration: configuration, logger: logger,
                                         script: try makeScriptFactory(logger: logger, maxMessageSize: configuration.maxMessageSize))
            let address: String
            do {
                let bound = try server.start()
                let scheme = configuration.tlsCertificatePath == nil ? "ws" : "wss"
                let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
                address = "\(scheme)://\(host):\(bound.port ?? configuration.port)\(configuration.path ?? "/")"
            } catch let error as ScriptLoadError {
                Output.error("--script \(script ?? ""): \(error.description)")
                throw ExitCode(2)
            } catch let error as TLSFileError {
                Output.error(Self.describe(error))
                throw ExitCode(2)
            } catch {
                Output.error("cannot listen on \(configuration.host):\(configuration.port): \(error)")
                throw ExitCode.failure
            }
            Output.line(address)
            Output.flush()
            logger.info("listening", metadata: ["url": "\(address)", "mode": "\(configuration.mode.rawValue)"])
            let done = DispatchSemaphore(value: 0)
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            signal(SIGPIPE, SIG_IGN)
            let sources = [SIGINT, SIGTERM, SIGHUP].map { sig -> any DispatchSourceSignal in
                let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                if sig == SIGHUP {
                    s.setEventHandler {
                        if let path = script {
                            logger.notice("SIGHUP: reloading the script", metadata: ["script": "\(path)"])
                            server.reloadScript()
                        }
                    }
                } else {
                    s.setEventHandler { done.signal() }
                }
                s.resume()
                return s
            }
            done.wait()
            logger.info("shutting down", metadata: ["connections": "\(server.activeConnections)"])
            // A thread stuck where nothing can interrupt it (a Lua pattern running in C) must not
            // keep the process alive: past the grace and 5 s more, exit anyway.
            let grace = configuration.shutdownGrace
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: grace + 5)
                Output.errorRaw("wsctl serve: shutdown did not finish within --shutdown-grace + 5 s; exiting\n")
                _exit(1)
            }
            server.shutdown()
            Output.errorRaw("wsctl serve: \(server.summary)\n")
            withExtendedLifetime(sources) {}
        }

        enum LogFormat: String, ExpressibleByArgument { case text, json }
    }
}

extension ServerMode: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Log lines on stderr: `time level message key=value…`, or one JSON object per line.
struct StderrLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, json: Bool) {
        self.label = label
        self.json = json
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let time = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        var all = metadata
        if let m = event.metadata { all.merge(m) { $1 } }
        var line: String
        if json {
            line = "{\"time\":\(jsonQuote(time)),\"level\":\(jsonQuote(event.level.rawValue)),\"message\":\(jsonQuote(event.message.description))"
            for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += ",\(jsonQuote(k)):\(jsonQuote("\(v)"))" }
            line += "}"
        } else {
            line = "\(time) \(event.level.rawValue) \(event.message)"
            for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        }
        Output.stderrLine(line + "\n")
    }

    private func jsonQuote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
