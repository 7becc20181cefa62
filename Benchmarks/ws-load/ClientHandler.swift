import NIOCore
import WebSocketCodec

/// One client connection: the opening handshake (checked with the codec's
/// `WebSocketUpgradeResponse.validate`), then frames parsed with `WebSocketFrameParser` and sent
/// with `WebSocketFrameEncoder`, masked with a fresh random key each (RFC 6455 §5.3).
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role { case echo, sender, receiver, idle }
    enum State { case connecting, handshaking, open, closing, closed }

    let run: Run
    let role: Role
    private(set) var state = State.connecting
    private var context: ChannelHandlerContext?
    private var generator = SplitMix64()
    private let key: String
    private var response: [UInt8] = []
    private var parser = WebSocketFrameParser(configuration: .init(
        direction: .serverToClient, maxFrameSize: 64 << 20, maxBufferedFrameSize: 64 << 20))
    private var fragments: [UInt8]? = nil
    private var fragmentsOpcode = WebSocketOpcode.binary
    /// What this connection sends (echo) — the broadcast sender uses the run's shared payload.
    private var payload: Payload
    private var nextSequence: UInt64 = 0
    private var expectedSequence: UInt64 = 0
    private var needsFlush = false
    /// The handshake succeeded (and the run was told).
    private var established = false

    init(run: Run, role: Role) {
        self.run = run
        self.role = role
        key = WebSocketHandshake.randomKey(using: &generator)
        payload = role == .echo ? Payload(size: run.options.size, generator: &generator) : run.sharedPayload
    }

    // MARK: Handshake

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        state = .handshaking
        let o = run.options
        let request = "GET \(o.path) HTTP/1.1\r\nHost: \(o.hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: \(WebSocketHandshake.version)\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    private func receiveHandshake(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        response.append(contentsOf: buffer.readableBytesView)
        guard let end = Self.endOfHead(response) else {
            if response.count > 16 << 10 { failHandshake("response head over 16 KiB", context: context) }
            return
        }
        let head = String(decoding: response[..<(end - 4)], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return failHandshake("empty response", context: context) }
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            return failHandshake("bad status line", context: context)
        }
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces)
        }
        do {
            _ = try WebSocketUpgradeResponse.validate(status: status, headers: headers, sentKey: key)
        } catch {
            return failHandshake("\(error)", context: context)
        }
        state = .open
        established = true
        var rest = Array(response[end...])
        response = []
        run.handshakeSucceeded(self)
        if !rest.isEmpty {
            rest.withUnsafeMutableBytes { raw in parser.parse(raw) { self.receive($0, context: context) } }
        }
    }

    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == 0x0A && bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A && bytes[i - 3] == 0x0D {
            return i + 1
        }
        return nil
    }

    private func failHandshake(_ problem: String, context: ChannelHandlerContext) {
        state = .closed
        run.handshakeFailed("handshake: \(problem)")
        context.close(promise: nil)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch state {
        case .handshaking:
            receiveHandshake(&buffer, context: context)
        case .open, .closing:
            buffer.withUnsafeMutableReadableBytes { raw in
                parser.parse(raw) { self.receive($0, context: context) }
            }
        case .connecting, .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        if role == .receiver { run.flushSender() }
        context.fireChannelReadComplete()
    }

    private func receive(_ piece: WebSocketFramePiece, context: ChannelHandlerContext) {
        guard state == .open || state == .closing else { return }
        if let v = piece.violations.first {
            run.protocolError("server broke \(v.rule.rawValue): \(v.message)")
            state = .closed
            context.close(promise: nil)
            return
        }
        let h = piece.header
        switch h.opcode {
        case .text, .binary:
            if h.fin {
                message(h.opcode, piece.payload)
            } else {
                fragments = Array(piece.payload)
                fragmentsOpcode = h.opcode
            }
        case .continuation:
            guard fragments != nil else {
                run.protocolError("continuation frame without a message start")
                return
            }
            fragments!.append(contentsOf: piece.payload)
            if h.fin {
                let whole = fragments!
                fragments = nil
                whole.withUnsafeBytes { message(fragmentsOpcode, $0) }
            }
        case .ping:
            send(opcode: .pong, payload: piece.payload)
        case .close:
            if state == .open {
                // RFC 6455 §5.5.1: answer with the same status code.
                let code = piece.payload.count >= 2 ? [piece.payload[0], piece.payload[1]] : []
                code.withUnsafeBytes { send(opcode: .close, payload: $0) }
                flushIfNeeded()
            }
            state = .closing
            context.close(promise: nil)
        default:
            break
        }
    }

    private func message(_ opcode: WebSocketOpcode, _ bytes: UnsafeRawBufferPointer) {
        let expectedOpcode: WebSocketOpcode = run.options.text ? .text : .binary
        switch role {
        case .echo:
            let ok = opcode == expectedOpcode && payload.matches(bytes, sequence: expectedSequence)
            expectedSequence &+= 1
            if run.echoReceived(correct: ok) { sendMessage() }
        case .receiver:
            let ok = opcode == expectedOpcode && payload.matches(bytes, sequence: expectedSequence)
            run.delivered(sequence: expectedSequence, correct: ok)
            expectedSequence &+= 1
        case .sender:
            run.selfDelivered()
        case .idle:
            run.unexpectedMessage()
        }
    }

    // MARK: Outbound

    /// Sends the next message of this connection's sequence (echo, broadcast sender).
    func sendMessage() {
        payload.stamp(nextSequence)
        nextSequence &+= 1
        let opcode: WebSocketOpcode = run.options.text ? .text : .binary
        payload.bytes.withUnsafeBytes { send(opcode: opcode, payload: $0) }
    }

    private func send(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) {
        guard let context else { return }
        let maskingKey = WebSocketMaskingKey(packed: UInt32(truncatingIfNeeded: generator.next()))
        let size = WebSocketFrameEncoder.headerLength(payloadLength: UInt64(payload.count), masked: true) + payload.count
        var buffer = context.channel.allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            WebSocketFrameEncoder.encode(opcode: opcode, maskingKey: maskingKey, payload: payload, into: out)
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Starts the close handshake with 1000 (normal closure).
    func close() {
        guard state == .open, context != nil else {
            if state == .handshaking || state == .connecting { self.context?.close(promise: nil) }
            return
        }
        state = .closing
        let code: [UInt8] = [0x03, 0xE8]
        code.withUnsafeBytes { send(opcode: .close, payload: $0) }
        flushIfNeeded()
    }

    /// Drops the TCP connection without a close handshake.
    func abort() {
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let was = state
        state = .closed
        self.context = nil
        if established {
            run.connectionGone(self, expected: was == .closing)
        } else if was == .handshaking {
            run.handshakeFailed("connection closed during the handshake")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run.note("connection error: \(error)")
        context.close(promise: nil)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
