// nio-echo-server: the benchmark baseline for `wsctl serve` — the echo server a Swift user would
// write with SwiftNIO's own WebSocket support: NIOWebSocketServerUpgrader on the standard HTTP/1
// server pipeline, NIO's frame decoder and encoder, NIOWebSocketFrameAggregator for fragmented
// messages, and a small handler that echoes text and binary messages, answers pings and closes.
//
//   nio-echo-server [--host 127.0.0.1] [--port 0] [--threads N]
//
// The first line on stdout is the URL (ws://HOST:PORT/), as `wsctl serve` prints it. SIGINT or
// SIGTERM stops it. Limits match `wsctl serve`'s defaults: 16 MiB frames and messages.

import Dispatch
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// 16 MiB, as `wsctl serve --max-frame-size` / `--max-message-size` default to.
let maxMessageSize = 16 << 20

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var threads = System.coreCount

    static func parse(_ arguments: [String]) -> Options {
        var o = Options()
        var i = 1
        func value() -> String {
            i += 1
            guard i < arguments.count else { usage("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--host": o.host = value()
            case "--port": guard let p = Int(value()), (0...65535).contains(p) else { usage("--port takes 0-65535") }; o.port = p
            case "--threads": guard let t = Int(value()), t >= 1 else { usage("--threads takes a number ≥ 1") }; o.threads = t
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(arguments[i])")
            }
            i += 1
        }
        return o
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { FileHandle.standardError.write(Data("nio-echo-server: \(problem)\n".utf8)) }
        print("usage: nio-echo-server [--host ADDR] [--port N (0 = any free port)] [--threads N]")
        exit(problem == nil ? 0 : 2)
    }
}

/// Echoes each (aggregated) text or binary message as one frame, answers pings, and completes
/// the close handshake by echoing the peer's close code.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private var sentClose = false
    private var needsFlush = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard !sentClose else { return }
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
            needsFlush = true
        case .ping:
            guard !sentClose else { return }
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            needsFlush = true
        case .connectionClose:
            guard !sentClose else {
                context.close(promise: nil)
                return
            }
            sentClose = true
            var payload = frame.unmaskedData
            // RFC 6455 §5.5.1: echo the status code (not the reason).
            let reply: ByteBuffer
            if let code = payload.readInteger(as: UInt16.self) {
                var b = context.channel.allocator.buffer(capacity: 2)
                b.writeInteger(code)
                reply = b
            } else {
                reply = context.channel.allocator.buffer(capacity: 0)
            }
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Answers plain HTTP requests (those that are not upgrades) with a short page.
final class PlainHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let body = context.channel.allocator.buffer(string: "nio-echo-server: connect with a WebSocket client\n")
        let headers = HTTPHeaders([("Content-Type", "text/plain"), ("Content-Length", "\(body.readableBytes)"), ("Connection", "close")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

let options = Options.parse(CommandLine.arguments)
let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)

let upgrader = NIOWebSocketServerUpgrader(
    maxFrameSize: maxMessageSize,
    automaticErrorHandling: true,
    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
    upgradePipelineHandler: { channel, _ in
        channel.eventLoop.makeCompletedFuture {
            let ops = channel.pipeline.syncOperations
            try ops.addHandler(NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: maxMessageSize))
            try ops.addHandler(EchoHandler())
        }
    })

let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let plain = PlainHTTPHandler()
            let plainBound = NIOLoopBound(plain, eventLoop: channel.eventLoop)
            let ops = channel.pipeline.syncOperations
            try ops.configureHTTPServerPipeline(withServerUpgrade: (
                upgraders: [upgrader],
                completionHandler: { context in
                    _ = context.pipeline.syncOperations.removeHandler(plainBound.value)
                }))
            try ops.addHandler(plain)
        }
    }

let serverChannel: any Channel
do {
    serverChannel = try bootstrap.bind(host: options.host, port: options.port).wait()
} catch {
    FileHandle.standardError.write(Data("nio-echo-server: cannot listen on \(options.host):\(options.port): \(error)\n".utf8))
    exit(1)
}
let port = serverChannel.localAddress?.port ?? options.port
let host = options.host.contains(":") ? "[\(options.host)]" : options.host
print("ws://\(host):\(port)/")
fflush(nil)

/// Blocks until SIGINT or SIGTERM. A plain function: a closure written in top-level code would be
/// main-actor isolated, and Dispatch calls signal handlers on another queue.
func waitForTerminationSignal() {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let stop = DispatchSemaphore(value: 0)
    let sources = [SIGINT, SIGTERM].map { sig in
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler { stop.signal() }
        s.resume()
        return s
    }
    stop.wait()
    withExtendedLifetime(sources) {}
}

waitForTerminationSignal()
try? serverChannel.close().wait()
try? group.syncShutdownGracefully()
