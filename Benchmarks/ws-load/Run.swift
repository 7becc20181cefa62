import Foundation
import NIOCore
import NIOPosix

/// One workload from connecting to closing. Everything here runs on the load generator's single
/// event loop, so the counters need no locks.
final class Run {
    enum Phase { case created, connecting, holding, measuring, draining, closing, done }

    let options: Options
    let loop: any EventLoop
    /// Output lines, fulfilled once when the run is over.
    let finished: EventLoopPromise<Result>
    let sharedPayload: Payload

    struct Result: Sendable {
        var lines: [(String, String)] = []
        var failed = false
    }

    private var phase = Phase.created
    private var handlers: [ClientHandler] = []
    private var sender: ClientHandler?
    private var toLaunch = 0
    private var launched = 0
    private var handshaking = 0
    private var gone = 0
    private var problems: [String] = []
    private var problemCount = 0
    private var connectStart = 0.0
    private var connectSeconds = 0.0

    private var sent = 0
    private var received = 0
    private var mismatches = 0
    private var lost = 0
    private var unexpected = 0
    private var selfDeliveries = 0
    /// Broadcast: receivers that have each of the last `window` messages, by sequence mod window.
    private var deliveredCount: [Int] = []
    /// Broadcast: the oldest message not yet at every receiver.
    private var oldest = 0
    private var senderNeedsFlush = false

    private var wall0 = 0.0, wall1 = 0.0
    private var own0 = 0.0, own1 = 0.0
    private var server0: Double?, server1: Double?
    private var timers: [Scheduled<Void>] = []

    init(options: Options, loop: any EventLoop, finished: EventLoopPromise<Result>) {
        self.options = options
        self.loop = loop
        self.finished = finished
        var g = SplitMix64()
        sharedPayload = Payload(size: options.size, generator: &g)
    }

    private var bound: NIOLoopBound<Run> { NIOLoopBound(self, eventLoop: loop) }

    private func after(_ seconds: Double, _ body: @escaping (Run) -> Void) {
        let me = bound
        let bodyBound = NIOLoopBound(body, eventLoop: loop)
        timers.append(loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { bodyBound.value(me.value) })
    }

    // MARK: Connecting

    func start() {
        phase = .connecting
        toLaunch = options.mode == .broadcast ? options.receivers + 1 : options.connections
        connectStart = ProcessClock.wallSeconds()
        after(options.connectTimeout) { run in
            guard run.phase == .connecting else { return }
            run.problem("only \(run.handlers.count) of \(run.toLaunch) connections open after \(run.options.connectTimeout) s")
            run.closeAll()
        }
        launchMore()
    }

    private func launchMore() {
        while phase == .connecting && handshaking < options.concurrency && launched < toLaunch {
            let role: ClientHandler.Role
            switch options.mode {
            case .echo: role = .echo
            case .idle: role = .idle
            case .broadcast: role = launched == toLaunch - 1 ? .sender : .receiver
            }
            launched += 1
            handshaking += 1
            let me = bound
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClientHandler(run: me.value, role: role))
                    }
                }
                .connect(host: options.host, port: options.port)
                .whenFailure { error in me.value.handshakeFailed("connect: \(error)") }
        }
    }

    func handshakeSucceeded(_ handler: ClientHandler) {
        handshaking -= 1
        handlers.append(handler)
        if handler.role == .sender { sender = handler }
        guard phase == .connecting else {
            handler.close()
            return
        }
        if handlers.count == toLaunch {
            connectSeconds = ProcessClock.wallSeconds() - connectStart
            connected()
        } else {
            launchMore()
        }
    }

    func handshakeFailed(_ why: String) {
        handshaking -= 1
        problem(why)
        if phase == .connecting {
            // Fail fast: a benchmark with fewer connections than asked measures something else.
            closeAll()
        }
    }

    private func connected() {
        switch options.mode {
        case .idle:
            phase = .holding
            emitNow([("established", "\(handlers.count)"), ("connect_seconds", format(connectSeconds)), ("ready", "1")])
            after(options.duration) { run in run.finish() }
        case .echo, .broadcast:
            phase = .measuring
            if options.mode == .broadcast { deliveredCount = Array(repeating: 0, count: options.window) }
            server0 = options.serverPID.flatMap(ProcessClock.cpuSeconds(pid:))
            own0 = ProcessClock.ownCPUSeconds()
            wall0 = ProcessClock.wallSeconds()
            after(options.duration) { run in run.stopSending() }
            if options.mode == .echo {
                for h in handlers {
                    for _ in 0..<options.window where mayStartMessage() { h.sendMessage() }
                    h.flushIfNeeded()
                }
            } else {
                fillBroadcastWindow()
                flushSender()
            }
        }
    }

    // MARK: Measuring

    private func mayStartMessage() -> Bool {
        guard phase == .measuring else { return false }
        sent += 1
        if sent >= options.count { stopSending() }
        return true
    }

    /// Echo: counts an echo and says whether its connection should send another message.
    func echoReceived(correct: Bool) -> Bool {
        received += 1
        if !correct { mismatch() }
        if mayStartMessage() { return true }
        checkDrained()
        return false
    }

    func delivered(sequence: UInt64, correct: Bool) {
        received += 1
        if !correct { mismatch() }
        let s = Int(sequence)
        if s >= oldest && s < sent {
            deliveredCount[s % options.window] += 1
        }
        var advanced = false
        while oldest < sent && deliveredCount[oldest % options.window] >= options.receivers {
            deliveredCount[oldest % options.window] = 0
            oldest += 1
            advanced = true
        }
        if advanced {
            fillBroadcastWindow()
            checkDrained()
        }
    }

    private func fillBroadcastWindow() {
        guard let sender else { return }
        while sent - oldest < options.window && mayStartMessage() {
            sender.sendMessage()
            senderNeedsFlush = true
        }
    }

    /// Called at the end of each receiver read: one flush for all the sender's new messages.
    func flushSender() {
        guard senderNeedsFlush else { return }
        senderNeedsFlush = false
        sender?.flushIfNeeded()
    }

    func selfDelivered() { selfDeliveries += 1 }

    func unexpectedMessage() { unexpected += 1 }

    private func mismatch() {
        mismatches += 1
        if mismatches <= 3 { problems.append("echo or delivery did not match what was sent") }
    }

    private func stopSending() {
        guard phase == .measuring else { return }
        phase = .draining
        after(options.drainTimeout) { run in
            guard run.phase == .draining else { return }
            run.problem("\(run.outstanding) messages still outstanding \(run.options.drainTimeout) s after sending stopped")
            run.endMeasurement()
        }
        checkDrained()
    }

    private var outstanding: Int {
        options.mode == .echo ? sent - received : (sent - oldest)
    }

    private func checkDrained() {
        if phase == .draining && outstanding == 0 { endMeasurement() }
    }

    /// All messages sent are answered (or the drain timed out): the server did exactly this work
    /// between the two samples.
    private func endMeasurement() {
        wall1 = ProcessClock.wallSeconds()
        own1 = ProcessClock.ownCPUSeconds()
        server1 = options.serverPID.flatMap(ProcessClock.cpuSeconds(pid:))
        closeAll()
    }

    // MARK: Closing

    func problem(_ why: String) {
        problemCount += 1
        if problems.count < 5 { problems.append(why) }
    }

    func protocolError(_ why: String) { problem(why) }

    func note(_ why: String) { problem(why) }

    func connectionGone(_ handler: ClientHandler, expected: Bool) {
        gone += 1
        if !expected && phase != .closing && phase != .done {
            lost += 1
            problem("the server closed a connection")
        }
        if (phase == .closing || phase == .holding) && gone == handlers.count && handshaking == 0 { finish() }
    }

    private func closeAll() {
        guard phase != .closing && phase != .done else { return }
        phase = .closing
        if wall1 == 0 && wall0 != 0 { endMeasurementClocksOnly() }
        for h in handlers { h.close() }
        if gone == handlers.count && handshaking == 0 {
            finish()
            return
        }
        after(3) { run in
            for h in run.handlers where h.state != .closed { h.abort() }
            run.finish()
        }
    }

    private func endMeasurementClocksOnly() {
        wall1 = ProcessClock.wallSeconds()
        own1 = ProcessClock.ownCPUSeconds()
        server1 = options.serverPID.flatMap(ProcessClock.cpuSeconds(pid:))
    }

    /// Idle mode: SIGINT/SIGTERM ends the hold.
    func stop() {
        if phase == .holding || phase == .connecting { finish() }
    }

    private func emitNow(_ lines: [(String, String)]) {
        for (k, v) in lines { print("\(k) \(v)") }
        fflush(nil)
    }

    private func format(_ v: Double) -> String { String(format: "%.3f", v) }

    private func finish() {
        guard phase != .done else { return }
        let wasHolding = phase == .holding
        phase = .done
        for t in timers { t.cancel() }
        timers = []
        var r = Result()
        r.failed = problemCount > 0 || mismatches > 0
        if options.mode == .idle {
            if !wasHolding { r.lines.append(("established", "\(handlers.count)")) }
        } else {
            let seconds = wall1 - wall0
            let measured = wall0 != 0 && seconds > 0
            r.lines.append(("established", "\(handlers.count)"))
            r.lines.append(("connect_seconds", format(connectSeconds)))
            r.lines.append(("seconds", format(measured ? seconds : 0)))
            r.lines.append(("sent", "\(sent)"))
            r.lines.append((options.mode == .echo ? "echoed" : "deliveries", "\(received)"))
            r.lines.append(("mismatches", "\(mismatches)"))
            if options.mode == .broadcast { r.lines.append(("self_deliveries", "\(selfDeliveries)")) }
            if measured {
                r.lines.append(("per_second", format(Double(received) / seconds)))
                r.lines.append(("client_cpu_seconds", format(own1 - own0)))
                if let a = server0, let b = server1 {
                    r.lines.append(("server_cpu_seconds", format(b - a)))
                    if b > a { r.lines.append(("per_server_cpu_second", format(Double(received) / (b - a)))) }
                }
            }
        }
        if lost > 0 { r.lines.append(("connections_lost", "\(lost)")) }
        if unexpected > 0 { r.lines.append(("unexpected_messages", "\(unexpected)")) }
        r.lines.append(("problems", "\(problemCount + mismatches)"))
        for p in problems { FileHandle.standardError.write(Data("ws-load: \(p)\n".utf8)) }
        if problemCount > problems.count {
            FileHandle.standardError.write(Data("ws-load: … and \(problemCount - problems.count) more problems\n".utf8))
        }
        finished.succeed(r)
    }
}
