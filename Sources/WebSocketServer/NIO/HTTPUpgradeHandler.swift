import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import WebSocketCodec
import WebSocketCompression

/// The HTTP/1.1 side of a connection: the upgrade (RFC 6455 §4.2) checked by the codec's handshake
/// validator and the server's policies, plain pages for non-upgrade GETs, /metrics and /healthz.
/// On a valid upgrade it writes the 101 itself and swaps the HTTP handlers for a WebSocketFrameHandler.
final class HTTPUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: ServerContext
    private let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private let encoder: HTTPResponseEncoder
    private var head: HTTPRequestHead?
    private var upgraded = false
    /// A response (and `Connection: close`) has been written; anything the client sends after it is ignored.
    private var responded = false
    /// The request is a HEAD: responses carry the headers GET would get, Content-Length included,
    /// and no body (RFC 9110 §9.3.2).
    private var headOnly = false
    private var timeout: Scheduled<Void>?
    /// Under TLS: whether the client sent any bytes (a connection closed before its first byte, a
    /// port check, is no failed TLS handshake, as it is no failed request on a plain port).
    private let tlsFirstBytes: FirstBytesMarker?
    /// The TLS handshake failure of this connection has been counted (NIOSSL may report more).
    private var tlsFailureCounted = false

    init(server: ServerContext, decoder: ByteToMessageHandler<HTTPRequestDecoder>, encoder: HTTPResponseEncoder,
         tlsFirstBytes: FirstBytesMarker? = nil) {
        self.server = server
        self.decoder = decoder
        self.encoder = encoder
        self.tlsFirstBytes = tlsFirstBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Slow or idle clients before the upgrade are cut (slowloris).
        let seconds = server.configuration.handshakeTimeout
        let channel = context.channel
        let logger = server.logger
        let counters = server.counters
        let metrics = server.metrics
        timeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            logger.debug("handshake timeout", metadata: ["remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            counters.handshakeFailures.add(1, ordering: .relaxed)
            metrics?.handshakeFailed(reason: ServerMetrics.HandshakeFailure.timeout)
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if upgraded {
            // Bytes that followed the upgrade request in the same read, forwarded by the decoder.
            context.fireChannelRead(data)
            return
        }
        // Answered with Connection: close; a request pipelined behind that one is not served.
        if responded { return }
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            respond(to: h, context: context)
        }
    }

    /// The request decoder reports a request it cannot parse (not HTTP at all, a header line without
    /// a colon, a TLS ClientHello on a plain listener, a head over the decoder's 80 KiB limit) here:
    /// it gets a 400 (431 for the oversized head) naming the problem, and the connection is closed,
    /// rather than silence until the handshake timeout.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !upgraded, case .handshakeFailed = error as? NIOSSLError {
            tlsHandshakeFailed(error, context: context)
            return
        }
        guard !upgraded, let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !responded else { return }
        headOnly = head?.method == .HEAD
        head = nil
        guard context.channel.isActive else {
            // The client went away in the middle of its request: nobody to answer.
            timeout?.cancel()
            server.logger.debug("connection closed during the request", metadata: ["error": "\(parserError.debugDescription)"])
            context.close(promise: nil)
            return
        }
        if parserError == .headerOverflow {
            refuse(context, .requestHeaderFieldsTooLarge,
                   "request head too large: its header fields are over \(Self.headerLimitDescription)",
                   reason: ServerMetrics.HandshakeFailure.badRequest)
        } else {
            refuse(context, .badRequest, "malformed HTTP request: \(parserError.debugDescription)",
                   reason: ServerMetrics.HandshakeFailure.badRequest)
        }
    }

    /// NIOSSL reports a failed TLS handshake (a plain HTTP request or other bytes that are not TLS on
    /// a TLS port, a protocol or cipher the two sides do not share, an alert from a client that
    /// rejects the certificate, the connection ending halfway): counted once under the `tls` reason
    /// and logged; NIOSSL closes the connection. One that ended before the client sent anything is
    /// not counted.
    private func tlsHandshakeFailed(_ error: any Error, context: ChannelHandlerContext) {
        timeout?.cancel()
        defer { context.close(promise: nil) }
        guard !tlsFailureCounted else { return }
        tlsFailureCounted = true
        let remote = context.channel.remoteAddress.map(Self.describe) ?? "?"
        guard tlsFirstBytes?.sawBytes ?? true else {
            server.logger.debug("connection closed before the TLS handshake", metadata: ["remote": "\(remote)"])
            return
        }
        server.counters.handshakeFailures.add(1, ordering: .relaxed)
        server.metrics?.handshakeFailed(reason: ServerMetrics.HandshakeFailure.tls)
        server.logger.info("TLS handshake failed", metadata: ["reason": "\(Self.describeTLS(error))", "remote": "\(remote)"])
        server.logger.debug("TLS handshake error", metadata: ["error": "\(error)", "remote": "\(remote)"])
    }

    /// BoringSSL's reasons for a failed handshake, short: `HTTP_REQUEST` (a plain HTTP request on
    /// the TLS port), `WRONG_VERSION_NUMBER`, `EOF during handshake`…, without the source paths.
    static func describeTLS(_ error: any Error) -> String {
        guard case .handshakeFailed(let failure) = error as? NIOSSLError else { return "\(error)" }
        let stack: NIOBoringSSLErrorStack
        switch failure {
        case .sslError(let s), .unknownError(let s): stack = s
        default: return "\(failure)"
        }
        let reasons = stack.map { entry -> String in
            var text = entry.description
            if let at = text.range(of: " at ") { text = String(text[..<at.lowerBound]) }
            if let reason = text.range(of: "OPENSSL_internal:") { return String(text[reason.upperBound...]) }
            // A synthetic entry ("Error: <code> EOF during handshake"): the words after the code.
            var words = text.split(separator: " ")
            if words.first == "Error:" { words.removeFirst() }
            if let code = words.first, code.allSatisfy(\.isNumber) { words.removeFirst() }
            return words.isEmpty ? text : words.joined(separator: " ")
        }
        return reasons.isEmpty ? "\(failure)" : reasons.joined(separator: ", ")
    }

    /// The request decoder's limit on a request's header fields (NIOHTTP1's default).
    static let headerLimitDescription = "\(NIOHTTPDecoderLimitConfiguration().maxHeaderListSize / 1024) KiB"

    private func respond(to h: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = String(h.uri.split(separator: "?", maxSplits: 1).first ?? "")
        headOnly = h.method == .HEAD
        let getOrHead = h.method == .GET || h.method == .HEAD
        let isUpgrade = h.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
        if !isUpgrade {
            if server.configuration.metrics, getOrHead, path == "/metrics" {
                return page(context, .ok, server.metrics?.render() ?? "", contentType: ServerMetrics.contentType)
            }
            if server.configuration.metrics, getOrHead, path == "/healthz" {
                return page(context, .ok, "ok\n")
            }
            if getOrHead {
                return page(context, .ok, "wsctl serve: this is a WebSocket endpoint (mode \(server.configuration.mode.rawValue)). Connect with a WebSocket client to \(server.configuration.path ?? "/").\n")
            }
            return page(context, .methodNotAllowed, "only GET (and HEAD) is served here\n", extra: [("Allow", "GET, HEAD")])
        }
        if server.shuttingDown.load(ordering: .relaxed) {
            return refuse(context, .serviceUnavailable, "server is shutting down", reason: ServerMetrics.HandshakeFailure.shuttingDown)
        }
        if let only = server.configuration.path, path != only {
            return refuse(context, .notFound, "no WebSocket endpoint at \(path); this server upgrades \(only)", reason: ServerMetrics.HandshakeFailure.wrongPath)
        }
        if let exec = server.exec, server.execHub == nil, exec.running.load(ordering: .relaxed) >= exec.maxProcesses {
            return refuse(context, .serviceUnavailable, "process limit (\(exec.maxProcesses), --max-processes) reached", reason: ServerMetrics.HandshakeFailure.tooManyConnections)
        }
        if server.registry.count >= server.configuration.maxConnections {
            return refuse(context, .serviceUnavailable, "connection limit (\(server.configuration.maxConnections)) reached", reason: ServerMetrics.HandshakeFailure.tooManyConnections)
        }
        let request: WebSocketUpgradeRequest
        do {
            request = try WebSocketUpgradeRequest.validate(
                method: h.method.rawValue, target: h.uri, version: "HTTP/\(h.version.major).\(h.version.minor)",
                headers: h.headers.map { (name: $0.name, value: $0.value) })
        } catch {
            let status = HTTPResponseStatus(statusCode: error.httpStatus ?? 400)
            return refuse(context, status, error.message, reason: error.httpStatus == 426 ? ServerMetrics.HandshakeFailure.unsupportedVersion : ServerMetrics.HandshakeFailure.badRequest,
                          extra: error.rejectionHeaders)
        }
        let c = server.configuration
        let subprotocol = c.subprotocols.first { request.subprotocols.contains($0) }
        var deflate: PerMessageDeflateParameters? = nil
        if c.compression {
            deflate = c.deflate.negotiate(offers: request.extensions)
        }
        var refusal: (UInt16, String)? = nil
        if !server.originPolicy.allows(request.origin) {
            refusal = (4003, "origin not allowed")
        } else {
            switch server.authPolicy.check(query: request.query, headers: h.headers.map { (name: $0.name, value: $0.value) }) {
            case .allowed: break
            case .missing: refusal = (4001, "authentication required")
            case .invalid: refusal = (4002, "authentication failed")
            }
        }
        if let refusal {
            server.counters.handshakeFailures.add(1, ordering: .relaxed)
            server.metrics?.handshakeFailed(reason: refusal.0 == 4003 ? ServerMetrics.HandshakeFailure.originNotAllowed : (refusal.0 == 4001 ? ServerMetrics.HandshakeFailure.authMissing : ServerMetrics.HandshakeFailure.authInvalid))
        }
        let remote = context.channel.remoteAddress.map(Self.describe) ?? "?"
        let query = h.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let info = NegotiatedConnection(
            id: server.makeConnectionID(), remote: remote, path: path,
            subprotocol: subprotocol, deflate: deflate, refuse: refusal.map { (code: $0.0, reason: $0.1) },
            request: ScriptRequest(path: path, query: query, headers: h.headers.map { (name: $0.name, value: $0.value) },
                                   remote: remote, subprotocol: subprotocol))
        upgrade(context: context, response: request.responseHeaders(subprotocol: subprotocol, extensions: deflate?.headerValue), info: info)
    }

    private func upgrade(context: ChannelHandlerContext, response: [(name: String, value: String)], info: NegotiatedConnection) {
        timeout?.cancel()
        upgraded = true
        var text = "HTTP/1.1 101 Switching Protocols\r\n"
        for (name, value) in response { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        let pipeline = context.pipeline.syncOperations
        _ = pipeline.removeHandler(encoder)
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: text)), promise: nil)
        let handler = WebSocketFrameHandler(server: server, info: info)
        do {
            try pipeline.addHandler(handler, position: .after(self))
            _ = pipeline.removeHandler(decoder)
            _ = pipeline.removeHandler(self)
        } catch {
            server.logger.error("upgrade failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ message: String, reason: String,
                        extra: [(name: String, value: String)] = []) {
        server.counters.handshakeFailures.add(1, ordering: .relaxed)
        server.metrics?.handshakeFailed(reason: reason)
        let remote = context.channel.remoteAddress.map(Self.describe) ?? "?"
        server.logger.info("handshake refused", metadata: ["status": "\(status.code)", "reason": "\(message)", "remote": "\(remote)"])
        page(context, status, message + "\n", extra: extra.map { ($0.name, $0.value) })
    }

    private func page(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: String,
                      contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = []) {
        timeout?.cancel()
        responded = true
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.utf8.count)"), ("Connection", "close")])
        for (n, v) in extra { headers.add(name: n, value: v) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !headOnly {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4: return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6: return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        default: return "\(address)"
        }
    }
}

/// Before the TLS handler: notes that the client sent something, then leaves the pipeline (so it
/// costs nothing after the first read).
final class FirstBytesMarker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private(set) var sawBytes = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sawBytes = true
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
