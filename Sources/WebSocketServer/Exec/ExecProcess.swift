#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CExecSpawn
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import WebSocketCodec

/// What `--exec` shares across connections: the command, the process count for --max-processes,
/// and every live process group so that shutdown can end them all.
final class ExecSupervisor: Sendable {
    let command: String
    let maxProcesses: Int
    let lineBuffered: Bool
    let maxLine: Int
    let logger: Logger
    let running = Atomic<Int>(0)
    private let live = Mutex<Set<pid_t>>([])

    init(configuration: ServerConfiguration, logger: Logger) {
        command = configuration.execCommand ?? ""
        maxProcesses = configuration.maxProcesses
        lineBuffered = configuration.execLineBuffered
        maxLine = configuration.maxMessageSize
        self.logger = logger
    }

    struct SpawnError: Error, CustomStringConvertible { var description: String }

    /// Starts `/bin/sh -c COMMAND` in its own process group with pipes on 0, 1 and 2, signals at
    /// their defaults and none blocked. Returns the pid and our ends: stdin (write), stdout and
    /// stderr (read), all close-on-exec.
    func spawn(environment: [String: String]) throws(SpawnError) -> (pid: pid_t, stdin: CInt, stdout: CInt, stderr: CInt) {
        let args: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        var stdin: CInt = -1
        var stdout: CInt = -1
        var stderr: CInt = -1
        let rc = argv.map { UnsafePointer($0) }.withUnsafeBufferPointer { a in
            envp.map { UnsafePointer($0) }.withUnsafeBufferPointer { e in
                wsx_spawn(a.baseAddress, e.baseAddress, &pid, &stdin, &stdout, &stderr)
            }
        }
        guard rc == 0 else {
            throw SpawnError(description: "cannot start /bin/sh -c: \(String(cString: strerror(rc)))")
        }
        live.withLock { _ = $0.insert(pid) }
        running.add(1, ordering: .relaxed)
        return (pid, stdin, stdout, stderr)
    }

    /// Waits for `pid` without blocking the loop: polls every 20 ms; SIGTERM to its group at once
    /// when `terminate`, SIGKILL after `grace`. Logs how it ended.
    func reap(pid: pid_t, on loop: any EventLoop, terminate: Bool, grace: TimeAmount = .seconds(2), context: String) {
        if terminate { kill(-pid, SIGTERM) }
        let deadline = NIODeadline.now() + grace
        let logger = self.logger
        func poll(killed: Bool) {
            var status: CInt = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) {
                self.ended(pid)
                if r == pid {
                    let exited = status & 0x7F == 0
                    let how = exited ? "exit status \((status >> 8) & 0xFF)" : "signal \(status & 0x7F)"
                    logger.info("process ended", metadata: ["pid": "\(pid)", "status": "\(how)", "for": "\(context)"])
                }
                return
            }
            var killedNow = killed
            if !killed && NIODeadline.now() >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                killedNow = true
                logger.warning("process did not end; killed", metadata: ["pid": "\(pid)", "for": "\(context)"])
            }
            loop.scheduleTask(in: .milliseconds(20)) { poll(killed: killedNow) }
        }
        poll(killed: false)
    }

    private func ended(_ pid: pid_t) {
        let removed = live.withLock { $0.remove(pid) != nil }
        if removed { running.add(-1, ordering: .relaxed) }
    }

    /// At shutdown: SIGKILL every process group still alive and collect them.
    func terminateAll() {
        let pids = live.withLock { s -> [pid_t] in let all = Array(s); s.removeAll(); return all }
        for pid in pids {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            var status: CInt = 0
            _ = waitpid(pid, &status, 0)
            running.add(-1, ordering: .relaxed)
        }
    }

    /// The child's environment: ours, the CGI/1.1 variables websocketd also sets, one HTTP_* per
    /// request header, and (with line buffering on) what makes common runtimes flush each line.
    func environment(request: ScriptRequest?, connectionID: String?, tls: Bool) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["GATEWAY_INTERFACE"] = "CGI/1.1"
        env["SERVER_SOFTWARE"] = "wsctl"
        env["SERVER_PROTOCOL"] = "HTTP/1.1"
        env["REQUEST_METHOD"] = "GET"
        env["SCRIPT_NAME"] = ""
        if tls { env["HTTPS"] = "on" }
        if let r = request {
            env["PATH_INFO"] = r.path
            env["QUERY_STRING"] = r.query
            env["REQUEST_URI"] = r.query.isEmpty ? r.path : "\(r.path)?\(r.query)"
            let (address, port) = Self.split(hostPort: r.remote)
            env["REMOTE_ADDR"] = address
            env["REMOTE_PORT"] = port
            env["REMOTE_HOST"] = address
            var headers: [String: String] = [:]
            for (name, value) in r.headers {
                let key = "HTTP_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
                headers[key] = headers[key].map { "\($0), \(value)" } ?? value
            }
            env.merge(headers) { $1 }
            if let host = headers["HTTP_HOST"] {
                let (name, port) = Self.split(hostPort: host)
                env["SERVER_NAME"] = name
                env["SERVER_PORT"] = port.isEmpty ? (tls ? "443" : "80") : port
            }
            if let sp = r.subprotocol { env["WSCTL_SUBPROTOCOL"] = sp }
        }
        if let connectionID { env["WSCTL_CONNECTION_ID"] = connectionID }
        if lineBuffered {
            env["PYTHONUNBUFFERED"] = "1"
            if let lib = Self.stdbufLibrary {
                env["_STDBUF_O"] = "L"
                env["LD_PRELOAD"] = env["LD_PRELOAD"].map { "\(lib) \($0)" } ?? lib
            }
        }
        return env
    }

    /// coreutils' stdbuf helper: preloaded, it makes C stdio line-buffer stdout (what `stdbuf -oL` does).
    static let stdbufLibrary: String? = ["/usr/libexec/coreutils/libstdbuf.so", "/usr/lib/coreutils/libstdbuf.so"]
        .first { FileManager.default.fileExists(atPath: $0) }

    /// "1.2.3.4:5" → ("1.2.3.4", "5"); "[::1]:5" → ("::1", "5"); "host" → ("host", "").
    static func split(hostPort: String) -> (String, String) {
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            let host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let rest = hostPort[hostPort.index(after: close)...]
            return (host, rest.hasPrefix(":") ? String(rest.dropFirst()) : "")
        }
        if let colon = hostPort.lastIndex(of: ":"), hostPort.firstIndex(of: ":") == colon {
            return (String(hostPort[..<colon]), String(hostPort[hostPort.index(after: colon)...]))
        }
        return (hostPort, "")
    }
}

/// One running `--exec` process seen from its event loop: stdout cut into lines, stdin written a
/// line per message, stderr lines to the log, and the end of stdout reported as the end.
final class ExecProcess {
    struct Callbacks {
        /// One line of stdout (without its newline), or a piece of a line longer than the limit.
        var line: (ByteBuffer) -> Void
        /// A batch of lines has been delivered (flush now).
        var batchDone: () -> Void
        /// stdout ended: the process exited or closed it.
        var ended: () -> Void
        /// Whether stdin can take more (false: stop reading from clients).
        var stdinWritable: (Bool) -> Void
    }

    let pid: pid_t
    private let loop: any EventLoop
    private let supervisor: ExecSupervisor
    private let context: String
    private var channel: (any Channel)?
    private var pending: [ByteBuffer] = []
    private var finished = false
    private var stdinOpen = true

    /// Spawns the process and wires its pipes on `loop`. Call on `loop`.
    init(supervisor: ExecSupervisor, loop: any EventLoop, environment: [String: String], context: String,
         callbacks: Callbacks) throws(ExecSupervisor.SpawnError) {
        self.supervisor = supervisor
        self.loop = loop
        self.context = context
        let p = try supervisor.spawn(environment: environment)
        pid = p.pid
        supervisor.logger.info("process started", metadata: ["pid": "\(pid)", "for": "\(context)", "command": "\(supervisor.command)"])
        let maxLine = supervisor.maxLine
        let bound = NIOLoopBound(callbacks, eventLoop: loop)
        let me = NIOLoopBound(self, eventLoop: loop)
        NIOPipeBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LineSplitter(maxLine: maxLine, output: bound))
                }
            }
            .takingOwnershipOfDescriptors(input: p.stdout, output: p.stdin)
            .whenComplete { result in
                switch result {
                case .success(let ch): me.value.ready(ch)
                case .failure(let error):
                    close(p.stdout)
                    close(p.stdin)
                    supervisor.logger.error("cannot attach to the process's pipes", metadata: ["error": "\(error)"])
                    bound.value.ended()
                }
            }
        let logger = supervisor.logger
        let pid = self.pid
        NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // stderr: a log line per line, long lines cut at 4 KiB.
                    let log = ExecProcess.Callbacks(
                        line: { line in
                            logger.info("process stderr", metadata: ["pid": "\(pid)", "for": "\(context)",
                                                                     "line": "\(String(buffer: line))"])
                        },
                        batchDone: {}, ended: {}, stdinWritable: { _ in })
                    try channel.pipeline.syncOperations.addHandler(
                        LineSplitter(maxLine: 4096, output: NIOLoopBound(log, eventLoop: channel.eventLoop)))
                }
            }
            .takingOwnershipOfDescriptor(input: p.stderr)
            .whenFailure { _ in close(p.stderr) }
    }

    private func ready(_ ch: any Channel) {
        if finished {
            ch.close(promise: nil)
            return
        }
        channel = ch
        ch.closeFuture.whenComplete { [me = NIOLoopBound(self, eventLoop: loop)] _ in me.value.stdoutEnded() }
        for b in pending { ch.write(b, promise: nil) }
        pending = []
        ch.flush()
    }

    private func stdoutEnded() {
        guard !finished else { return }
        finished = true
        channel = nil
        supervisor.reap(pid: pid, on: loop, terminate: false, context: context)
    }

    /// One message as a line on stdin. A message's own newlines go through as they are.
    func writeLine(_ bytes: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) {
        guard !finished, stdinOpen else { return }
        var b = allocator.buffer(capacity: bytes.count + 1)
        b.writeBytes(bytes)
        b.writeInteger(UInt8(ascii: "\n"))
        if let channel {
            channel.writeAndFlush(b, promise: nil)
        } else {
            pending.append(b)
        }
    }

    var isStdinWritable: Bool { channel?.isWritable ?? true }

    /// The client went away: stdin and stdout are closed, the group gets SIGTERM (SIGKILL after 2 s).
    func terminate() {
        guard !finished else { return }
        finished = true
        channel?.close(promise: nil)
        channel = nil
        supervisor.reap(pid: pid, on: loop, terminate: true, context: context)
    }

    func setStdoutReading(_ on: Bool) {
        channel?.setOption(.autoRead, value: on).whenComplete { _ in }
    }
}

/// Cuts the process's stdout into lines (LF, with a CR before it dropped); a line longer than
/// `maxLine` is passed on in `maxLine` pieces, and what is left at the end as a last line.
private final class LineSplitter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let maxLine: Int
    private let output: NIOLoopBound<ExecProcess.Callbacks>
    private var partial: ByteBuffer?

    init(maxLine: Int, output: NIOLoopBound<ExecProcess.Callbacks>) {
        self.maxLine = maxLine
        self.output = output
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var p = partial {
            p.writeBuffer(&buffer)
            buffer = p
            partial = nil
        }
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
            emit(line)
        }
        while buffer.readableBytes >= maxLine, let piece = buffer.readSlice(length: maxLine) {
            output.value.line(piece)
        }
        if buffer.readableBytes > 0 { partial = buffer }
    }

    private func emit(_ line: ByteBuffer) {
        var line = line
        while line.readableBytes > maxLine, let piece = line.readSlice(length: maxLine) { output.value.line(piece) }
        output.value.line(line)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        output.value.batchDone()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        output.value.stdinWritable(context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let p = partial, p.readableBytes > 0 {
            partial = nil
            emit(p)
            output.value.batchDone()
        }
        output.value.ended()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
