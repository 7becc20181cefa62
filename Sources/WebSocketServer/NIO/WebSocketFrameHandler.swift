import Logging
import NIOCore
import WebSocketCodec
import WebSocketCompression

/// Result of the upgrade, handed to the frame handler.
struct NegotiatedConnection {
    var id: String
    var remote: String
    var path: String
    var subprotocol: String?
    var deflate: PerMessageDeflateParameters?
    /// A policy refused the client after the upgrade (auth 4001/4002, origin 4003): close at once.
    var refuse: (code: UInt16, reason: String)?
    /// The request as scripts and --exec see it.
    var request: ScriptRequest
}

/// One WebSocket connection after the upgrade: bytes in through the codec's parser and assembler,
/// behaviour (echo, broadcast, rooms), and the close/ping state machine's actions carried out.
final class WebSocketFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    private let info: NegotiatedConnection
    private var parser: WebSocketFrameParser
    private var assembler: WebSocketMessageAssembler
    private let compressor: PerMessageDeflateCompressor?
    private let decompressor: PerMessageDeflateDecompressor?
    private var machine: WebSocketConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var timer: RepeatedTask?
    private var lastPingAt: Double
    private var rateLimiter: TokenBucket?
    private var needsFlush = false
    /// Echo frames produced during the current read (one buffer, one write per read).
    private var echoOut: ByteBuffer?
    private var registered = false
    private var openedAt: Double
    /// How long a connection aborted as a slow consumer may take to drain its queue and the close.
    static let abortGrace = TimeAmount.seconds(1)
    /// The data message in progress was compressed (RSV1 on its first frame).
    private var messageCompressed = false
    /// Inside channelRead…channelReadComplete: output waits for channelReadComplete.
    private var inRead = false
    /// The script host wrote to this connection during its current call (it flushes us after).
    var scriptDirty = false
    /// The message for on_message or --exec, kept until the piece is known to break no rule (reused).
    private var scriptPayload: [UInt8] = []
    /// `--exec` in echo mode: this connection's process.
    private var exec: ExecProcess?

    init(server: ServerContext, info: NegotiatedConnection) {
        self.server = server
        self.info = info
        let c = server.configuration
        // With permessage-deflate the limits are about what the application receives: the codec
        // checks the bytes on the wire against a bound that lets incompressible data (deflate's
        // blocks can come out slightly larger than their input) through, the inflater enforces the message limit
        // exactly, and uncompressed frames and messages are held to the exact limits in `handle`.
        let wireSlack = info.deflate == nil ? 0 : c.maxMessageSize / 32 + 4096
        parser = WebSocketFrameParser(configuration: .init(
            direction: .clientToServer, allowedReservedBits: info.deflate == nil ? 0 : 0x40,
            maxFrameSize: UInt64(c.maxFrameSize + wireSlack), maxBufferedFrameSize: 1 << 20))
        assembler = WebSocketMessageAssembler(configuration: .init(
            maxMessageSize: c.maxMessageSize + wireSlack, compressionNegotiated: info.deflate != nil))
        if let d = info.deflate {
            compressor = PerMessageDeflateCompressor(d.serverToClient)
            decompressor = PerMessageDeflateDecompressor(d.clientToServer, maxInflatedSize: c.maxMessageSize)
        } else {
            compressor = nil
            decompressor = nil
        }
        let now = ServerContext.now()
        machine = WebSocketConnectionStateMachine(now: now)
        lastPingAt = now
        openedAt = now
        if let rate = c.rateLimit {
            rateLimiter = TokenBucket(rate: rate, burst: c.rateBurst ?? max(1, rate), now: now)
        }
    }

    var id: String { info.id }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let c = server.configuration
        server.counters.connectionsTotal.add(1, ordering: .relaxed)
        server.metrics?.connectionOpened()
        server.logger.info("open", metadata: ["conn": "\(info.id)", "remote": "\(info.remote)", "path": "\(info.path)",
                                              "subprotocol": "\(info.subprotocol ?? "-")", "deflate": "\(info.deflate != nil)"])
        if let refuse = info.refuse {
            perform(machine.abort(code: refuse.code, reason: refuse.reason), context: context)
            return
        }
        server.registry.add(ConnectionHandle(id: info.id, handler: NIOLoopBound(self, eventLoop: context.eventLoop)))
        registered = true
        let timeouts = self.timeouts
        if timeouts.pingInterval != nil || timeouts.idleTimeout != nil {
            let period = [timeouts.pingInterval, timeouts.idleTimeout].compactMap { $0 }.min()! / 4
            let step = TimeAmount.milliseconds(Int64(max(50, min(1000, period * 1000))))
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleRepeatedTask(initialDelay: step, delay: step) { _ in
                loopBound.value.tick()
            }
        }
        if server.configuration.mode == .rooms {
            let deliveries = server.rooms.withLock { $0.connect(clientID: info.id) }
            send(deliveries)
        }
        if let supervisor = server.exec {
            if let hub = server.execHub {
                hub.connectionOpened()
            } else {
                startProcess(supervisor, context: context)
            }
        }
        if let script = server.script {
            let connection = ScriptConnection(handle: ConnectionHandle(id: info.id, handler: NIOLoopBound(self, eventLoop: context.eventLoop)))
            let request = info.request
            if script.loop.inEventLoop {
                script.opened(connection, request: request)
            } else {
                script.loop.execute { script.opened(connection, request: request) }
            }
        }
        _ = c
    }

    private func startProcess(_ supervisor: ExecSupervisor, context: ChannelHandlerContext) {
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        do {
            exec = try ExecProcess(
                supervisor: supervisor, loop: context.eventLoop,
                environment: supervisor.environment(request: info.request, connectionID: info.id, tls: server.configuration.tlsCertificatePath != nil),
                context: info.id,
                callbacks: .init(
                    line: { me.value.execOutput($0) },
                    batchDone: { me.value.flushScriptOutput() },
                    ended: { me.value.execEnded() },
                    // stdin full: stop reading the client until the process catches up.
                    stdinWritable: { channel.setOption(ChannelOptions.autoRead, value: $0).whenComplete { _ in } }))
        } catch {
            server.logger.error("cannot start the --exec process", metadata: ["conn": "\(info.id)", "error": "\(error.description)"])
            perform(machine.initiateClose(code: 1011, reason: "cannot start the process", now: ServerContext.now()), context: context)
        }
    }

    /// A line of the process's stdout: a text message, or binary when it is not UTF-8.
    private func execOutput(_ line: ByteBuffer) {
        let valid = line.withUnsafeReadableBytes { WebSocketUTF8Validator.firstInvalidIndex($0) == nil }
        _ = line.withUnsafeReadableBytes { scriptSend(opcode: valid ? .text : .binary, payload: $0, slowConsumerCloses: false) }
    }

    /// The process ended (or closed its stdout): what it printed goes out, then close 1000.
    private func execEnded() {
        guard let context, exec != nil else { return }
        exec = nil
        flushScriptOutput()
        perform(machine.initiateClose(code: 1000, reason: "process exited", now: ServerContext.now()), context: context)
    }

    private var timeouts: WebSocketConnectionStateMachine.Timeouts {
        let c = server.configuration
        // 0 (or less) turns pings and idle closes off, as nil does: a ping every tick, or a close
        // at the first one, is never what was meant.
        return .init(pingInterval: c.pingInterval.flatMap { $0 > 0 ? $0 : nil }, pongTimeout: c.pongTimeout,
                     idleTimeout: c.idleTimeout.flatMap { $0 > 0 ? $0 : nil }, closeTimeout: c.shutdownGrace)
    }

    private func tick() {
        guard let context else { return }
        perform(machine.tick(now: ServerContext.now(), timeouts: timeouts, lastPingAt: &lastPingAt), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.connectionClosed()
        timer?.cancel()
        exec?.terminate()
        exec = nil
        if registered {
            server.registry.remove(id: info.id)
            registered = false
            if let script = server.script {
                // Always later: this may run inside a script call that closed the connection.
                let id = info.id
                let code = machine.closeCode ?? 1006
                let reason = machine.closeReason
                script.loop.execute { script.closed(connectionID: id, code: code, reason: reason) }
            }
            if server.configuration.mode == .rooms {
                let deliveries = server.rooms.withLock { $0.disconnect(clientID: info.id) }
                send(deliveries)
            }
        }
        let code = machine.closeCode ?? 1006
        server.counters.closed(code: code)
        server.metrics?.connectionClosed(code: code)
        let seconds = ServerContext.now() - openedAt
        server.logger.info("close", metadata: ["conn": "\(info.id)", "code": "\(code)", "reason": "\(machine.closeReason)",
                                               "duration": "\(String(format: "%.3f", seconds))s"])
        self.context = nil
        context.fireChannelInactive()
    }

    /// Server shutdown: every client gets 1001 Going Away.
    func goingAway() {
        guard let context else { return }
        perform(machine.initiateClose(code: 1001, reason: "server shutting down", now: ServerContext.now()), context: context)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        // Every byte that arrives counts, also after the close (what the peer sent still crossed).
        server.bytesReceived(buffer.readableBytes)
        guard machine.state != .closed else { return }
        inRead = true
        machine.receivedBytes(now: ServerContext.now())
        buffer.withUnsafeMutableReadableBytes { raw in
            parser.parse(raw) { piece in
                self.handle(piece, context: context)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inRead = false
        writeEchoes(context: context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// What a completed message or control frame asks for. It is worked out inside the assembler's
    /// callback (where the payload is valid) but carried out only when the piece broke no rule: a
    /// message that fails UTF-8, or a close with a bad code, must not be echoed or answered.
    private enum Outcome {
        case ping([UInt8])
        case pong
        case close(WebSocketClosePayload)
        case message(WebSocketOpcode, [UInt8]?, ByteBuffer?)
        /// Echo mode: the frame was appended to `echoOut` at this writer index (its bytes are
        /// counted when `echoOut` is written).
        case echoed(mark: Int)
        /// For the script's on_message: the payload is in `scriptPayload`.
        case scripted(binary: Bool)
        /// For the --exec process: the payload is in `scriptPayload`.
        case forwarded(binary: Bool)
    }

    private func handle(_ piece: WebSocketFramePiece, context: ChannelHandlerContext) {
        guard machine.state != .closed else { return }
        if let v = piece.violations.first {
            fail(v, context: context)
            return
        }
        if decompressor != nil && piece.isFirst {
            // Exact limits for what is not compressed (see init).
            let h = piece.header
            if h.opcode.isDataStart { messageCompressed = h.rsv1 }
            let compressed = h.opcode.isControl ? false : messageCompressed
            if !compressed && h.payloadLength > UInt64(server.configuration.maxFrameSize) {
                fail(WebSocketViolation(.frameTooLarge, offset: piece.frameOffset + 1,
                                        "frame payload of \(h.payloadLength) bytes exceeds the limit of \(server.configuration.maxFrameSize)"), context: context)
                return
            }
        }
        var outcome: Outcome? = nil
        let violations = assembler.receive(piece) { item in
            switch item {
            case .message(let m):
                guard m.isValidUTF8 != false else { return }
                outcome = self.prepare(m, context: context)
            case .control(let c):
                switch c.opcode {
                case .ping: outcome = .ping(Array(c.payload))
                case .pong: outcome = .pong
                case .close: outcome = .close(c.close ?? WebSocketClosePayload(code: nil))
                default: break
                }
            }
        }
        if let v = violations.first {
            if case .echoed(let mark) = outcome { echoOut?.moveWriterIndex(to: mark) }
            fail(v, context: context)
            return
        }
        switch outcome {
        case nil: break
        case .ping(let payload): perform(machine.receivedPing(payload), context: context)
        case .pong: machine.receivedPong(now: ServerContext.now())
        case .close(let payload): perform(machine.receivedClose(payload), context: context)
        case .message(let opcode, let bytes, let frame): deliver(opcode: opcode, bytes: bytes, frame: frame, context: context)
        case .forwarded(let binary):
            guard machine.isOpen, takeRateToken(context: context) else { return }
            if binary {
                perform(machine.initiateClose(code: 1003, reason: "--exec takes text messages only", now: ServerContext.now()), context: context)
            } else if let hub = server.execHub {
                hub.write(scriptPayload, from: ConnectionHandle(id: info.id, handler: NIOLoopBound(self, eventLoop: context.eventLoop)))
            } else {
                scriptPayload.withUnsafeBytes { exec?.writeLine($0, allocator: context.channel.allocator) }
            }
        case .scripted(let binary):
            guard machine.isOpen, takeRateToken(context: context), let script = server.script else { return }
            if script.loop.inEventLoop {
                scriptPayload.withUnsafeBytes { script.message(connectionID: info.id, binary: binary, payload: $0) }
            } else {
                let id = info.id
                let copy = scriptPayload
                script.loop.execute { copy.withUnsafeBytes { script.message(connectionID: id, binary: binary, payload: $0) } }
            }
        case .echoed(let mark):
            if !takeRateToken(context: context) {
                echoOut?.moveWriterIndex(to: mark)
                return
            }
            server.messagesSent(1)
        }
    }

    private func fail(_ v: WebSocketViolation, context: ChannelHandlerContext) {
        server.logger.debug("violation", metadata: ["conn": "\(info.id)", "rule": "\(v.rule.rawValue)", "offset": "\(v.offset)", "detail": "\(v.message)"])
        perform(machine.receivedViolation(v), context: context)
    }

    /// Inflates and checks a message, and encodes what it will send (the payload view dies with the callback).
    private func prepare(_ m: WebSocketMessageView, context: ChannelHandlerContext) -> Outcome? {
        guard machine.isOpen else { return nil }
        if m.compressed, let decompressor {
            let inflated: [UInt8]
            do {
                inflated = try decompressor.inflateMessage(m.payload)
            } catch {
                var v = error
                v.offset += m.offset
                fail(v, context: context)
                return nil
            }
            if m.opcode == .text, let bad = WebSocketUTF8Validator.firstInvalidIndex(inflated) {
                fail(WebSocketViolation(.invalidUTF8, offset: m.offset, "inflated text is not UTF-8 at message byte \(bad)"), context: context)
                return nil
            }
            return inflated.withUnsafeBytes { prepareOutbound(opcode: m.opcode, payload: $0, context: context) }
        }
        if decompressor != nil && m.payload.count > server.configuration.maxMessageSize {
            fail(WebSocketViolation(.messageTooLarge, offset: m.offset,
                                    "message of \(m.payload.count) bytes exceeds the limit of \(server.configuration.maxMessageSize)"), context: context)
            return nil
        }
        return prepareOutbound(opcode: m.opcode, payload: m.payload, context: context)
    }

    private func prepareOutbound(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, context: ChannelHandlerContext) -> Outcome {
        server.messageReceived()
        if let script = server.script, script.handlesMessages {
            scriptPayload.removeAll(keepingCapacity: scriptPayload.capacity <= 1 << 20)
            scriptPayload.append(contentsOf: payload)
            return .scripted(binary: opcode == .binary)
        }
        if server.exec != nil {
            scriptPayload.removeAll(keepingCapacity: scriptPayload.capacity <= 1 << 20)
            scriptPayload.append(contentsOf: payload)
            return .forwarded(binary: opcode == .binary)
        }
        switch server.configuration.mode {
        case .echo:
            // Echoes made during one read go into one buffer, written once at channelReadComplete.
            if let compressor {
                let deflated = compressor.compress(payload)
                return deflated.withUnsafeBytes { appendEcho(opcode: opcode, payload: $0, rsv1: true, allocator: context.channel.allocator) }
            }
            return appendEcho(opcode: opcode, payload: payload, rsv1: false, allocator: context.channel.allocator)
        case .broadcast:
            return .message(opcode, nil, Self.encode(opcode: opcode, payload: payload, rsv1: false, allocator: context.channel.allocator))
        case .rooms:
            return .message(opcode, Array(payload), nil)
        }
    }

    private func appendEcho(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, rsv1: Bool, allocator: ByteBufferAllocator) -> Outcome {
        let size = WebSocketFrameEncoder.headerLength(payloadLength: UInt64(payload.count), masked: false) + payload.count
        if echoOut == nil { echoOut = allocator.buffer(capacity: max(size, 4096)) }
        let mark = echoOut!.writerIndex
        echoOut!.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            WebSocketFrameEncoder.encode(reservedBits: rsv1 ? 0x40 : 0, opcode: opcode, payload: payload, into: out)
        }
        return .echoed(mark: mark)
    }

    /// Writes the echoes gathered so far (before any control frame, so that order is kept).
    private func writeEchoes(context: ChannelHandlerContext) {
        guard let out = echoOut, out.readableBytes > 0 else { return }
        echoOut = nil
        server.bytesSent(out.readableBytes)
        context.write(wrapOutboundOut(out), promise: nil)
        needsFlush = true
    }

    /// The rate limit (4004): false when this message is one too many.
    private func takeRateToken(context: ChannelHandlerContext) -> Bool {
        guard var limiter = rateLimiter else { return true }
        let ok = limiter.take(now: ServerContext.now())
        rateLimiter = limiter
        if !ok {
            writeEchoes(context: context)
            perform(machine.initiateClose(code: 4004, reason: "rate limit exceeded", now: ServerContext.now()), context: context)
        }
        return ok
    }

    private func deliver(opcode: WebSocketOpcode, bytes: [UInt8]?, frame: ByteBuffer?, context: ChannelHandlerContext) {
        guard machine.isOpen else { return }
        guard takeRateToken(context: context) else { return }
        switch server.configuration.mode {
        case .echo:
            var f = frame!
            write(&f, messages: 1, context: context)
        case .broadcast:
            var targets = server.registry.snapshot()
            if !server.configuration.echoSelf { targets.removeAll { $0.id == info.id } }
            ConnectionRegistry.deliver(frame!, to: targets)
        case .rooms:
            guard opcode == .text, let bytes else {
                let err = RoomsEngine.errorEnvelope(code: RoomsEngine.ErrorCode.binaryNotSupported, message: "rooms mode speaks JSON envelopes in text messages")
                var f = Self.encode(opcode: .text, payload: Array(err.utf8), allocator: context.channel.allocator)
                write(&f, messages: 1, context: context)
                return
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let deliveries = server.rooms.withLock { $0.receive(clientID: info.id, text: text) }
            send(deliveries)
        }
    }

    /// Rooms deliveries: each envelope is encoded once and shared by its recipients.
    private func send(_ deliveries: [RoomsEngine.Delivery]) {
        guard let context else { return }
        for d in deliveries {
            let frame = Self.encode(opcode: .text, payload: Array(d.text.utf8), allocator: context.channel.allocator)
            ConnectionRegistry.deliver(frame, to: server.registry.handles(for: d.recipients))
        }
    }

    // MARK: Script output (on this connection's loop)

    /// A message from the script: appended to this read's output (or flushed by the host after its
    /// call). False when the connection is not open. A client whose queue is over --max-send-queue
    /// while the script pushes to it is a slow consumer (1008).
    func scriptSend(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, slowConsumerCloses: Bool = true) -> Bool {
        guard let context, machine.isOpen else { return false }
        if slowConsumerCloses && !context.channel.isWritable {
            server.counters.slowConsumerDrops.add(1, ordering: .relaxed)
            server.metrics?.slowConsumerDropped()
            perform(machine.abort(code: 1008, reason: "slow consumer: send queue over \(server.configuration.maxSendQueue) bytes"), context: context)
            return false
        }
        let outcome: Outcome
        if let compressor, !opcode.isControl {
            let deflated = compressor.compress(payload)
            outcome = deflated.withUnsafeBytes { appendEcho(opcode: opcode, payload: $0, rsv1: true, allocator: context.channel.allocator) }
        } else {
            outcome = appendEcho(opcode: opcode, payload: payload, rsv1: false, allocator: context.channel.allocator)
        }
        if case .echoed = outcome { server.messagesSent(1) }
        return true
    }

    /// Bytes from the script straight onto the TCP stream (conn:send_raw), for breaking the rules
    /// on purpose.
    func scriptSendRaw(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let context, machine.isOpen else { return false }
        if echoOut == nil { echoOut = context.channel.allocator.buffer(capacity: max(bytes.count, 4096)) }
        echoOut!.writeBytes(bytes)
        return true
    }

    /// conn:close, a refusal by on_open (onlyIfOpen), or 1011 after a script error.
    func scriptClose(code: UInt16, reason: String) {
        guard let context else { return }
        perform(machine.initiateClose(code: code, reason: reason, now: ServerContext.now()), context: context)
    }

    /// Writes what the script queued, unless a read is in progress (channelReadComplete will).
    func flushScriptOutput() {
        scriptDirty = false
        guard let context, !inRead else { return }
        writeEchoes(context: context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    // MARK: Outbound

    static func encode(opcode: WebSocketOpcode, payload: [UInt8], rsv1: Bool = false, allocator: ByteBufferAllocator) -> ByteBuffer {
        payload.withUnsafeBytes { encode(opcode: opcode, payload: $0, rsv1: rsv1, allocator: allocator) }
    }

    static func encode(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, rsv1: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = WebSocketFrameEncoder.headerLength(payloadLength: UInt64(payload.count), masked: false) + payload.count
        var buffer = allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            WebSocketFrameEncoder.encode(reservedBits: rsv1 ? 0x40 : 0, opcode: opcode, payload: payload, into: out)
        }
        return buffer
    }

    /// A frame from another connection (broadcast, rooms), on this connection's event loop.
    func deliver(_ frame: ByteBuffer) {
        guard let context, machine.isOpen else { return }
        var frame = frame
        write(&frame, messages: 1, context: context)
        context.flush()
    }

    private func write(_ frame: inout ByteBuffer, messages: Int, context: ChannelHandlerContext) {
        // A connection whose queue is over the high water mark cannot keep up (echo mode stops
        // reading instead, see channelWritabilityChanged, so only pushed traffic gets here).
        if !context.channel.isWritable && server.configuration.mode != .echo {
            server.counters.slowConsumerDrops.add(1, ordering: .relaxed)
            server.metrics?.slowConsumerDropped()
            perform(machine.abort(code: 1008, reason: "slow consumer: send queue over \(server.configuration.maxSendQueue) bytes"), context: context)
            return
        }
        server.messagesSent(messages)
        server.bytesSent(frame.readableBytes)
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Echo: the client's own sends make our output, so stop reading until it catches up (TCP
        // flow control pushes back on it). Memory stays bounded by the high water mark.
        if let exec {
            // --exec: a client that does not read makes us stop reading the process's stdout.
            exec.setStdoutReading(context.channel.isWritable)
        } else if server.configuration.mode == .echo {
            context.channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    private func perform(_ action: WebSocketConnectionStateMachine.Action, context: ChannelHandlerContext) {
        if action != .none { writeEchoes(context: context) }
        switch action {
        case .none:
            return
        case .sendPong(let payload):
            var f = Self.encode(opcode: .pong, payload: payload, allocator: context.channel.allocator)
            server.bytesSent(f.readableBytes)
            context.write(wrapOutboundOut(f), promise: nil)
            f.clear()
            needsFlush = true
        case .sendPing(let payload):
            let f = Self.encode(opcode: .ping, payload: payload, allocator: context.channel.allocator)
            server.bytesSent(f.readableBytes)
            context.writeAndFlush(wrapOutboundOut(f), promise: nil)
        case .sendClose(let code, let reason, let thenCloseTCP):
            let payload = WebSocketClosePayload.encode(code: code.map(WebSocketCloseCode.init(code:)), reason: reason)
            let f = Self.encode(opcode: .close, payload: payload, allocator: context.channel.allocator)
            server.bytesSent(f.readableBytes)
            needsFlush = false
            if thenCloseTCP {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(f)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.writeAndFlush(wrapOutboundOut(f), promise: nil)
            }
        case .closeTCP:
            context.close(promise: nil)
        case .sendCloseAndDrop(let code, let reason):
            // The close goes behind what is queued; a client that reads again within the grace gets
            // it, one that does not is cut off then, so its queue cannot hold memory for long.
            let payload = WebSocketClosePayload.encode(code: WebSocketCloseCode(code: code), reason: reason)
            let channel = context.channel
            let f = Self.encode(opcode: .close, payload: payload, allocator: channel.allocator)
            server.bytesSent(f.readableBytes)
            context.writeAndFlush(wrapOutboundOut(f))
                .whenComplete { _ in channel.close(promise: nil) }
            context.eventLoop.scheduleTask(in: Self.abortGrace) { channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("error", metadata: ["conn": "\(info.id)", "error": "\(error)"])
        context.close(promise: nil)
    }
}
