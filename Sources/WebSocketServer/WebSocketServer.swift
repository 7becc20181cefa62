import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// `wsctl serve`: binds, accepts, upgrades, and shuts down cleanly.
public final class WebSocketServer: Sendable {
    public let configuration: ServerConfiguration
    let context: ServerContext
    private let group: MultiThreadedEventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)

    private let scriptError: (any Error)?

    /// With a `script` factory, the script is made here on the loop it will run on (a Lua script's
    /// top level runs then); `start` throws the factory's error if it failed.
    public init(configuration: ServerConfiguration, logger: Logger, script makeScript: ServerScriptFactory? = nil) {
        self.configuration = configuration
        // A script runs on one thread; its connections too unless --threads asks for more. NIO
        // ends the process when it cannot open an event loop's descriptors, so the count stays
        // within what the open-file limit allows (`wsctl serve` refuses such a --threads first).
        let openFileLimit = ThreadLimit.openFileLimit()
        var threads = ThreadLimit.defaultThreads(preferred: makeScript != nil ? 1 : System.coreCount, openFileLimit: openFileLimit)
        if let asked = configuration.threads {
            threads = asked
            if let problem = ThreadLimit.problem(threads: asked, openFileLimit: openFileLimit) {
                threads = ThreadLimit.defaultThreads(preferred: asked, openFileLimit: openFileLimit)
                logger.warning("event-loop threads lowered", metadata: ["asked": "\(asked)", "using": "\(threads)", "reason": "\(problem)"])
            }
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var script: (any ServerScript)? = nil
        var scriptError: (any Error)? = nil
        if let makeScript {
            let loop = group.next()
            do {
                script = try loop.submit { try makeScript(loop) }.wait()
            } catch {
                scriptError = error
            }
        }
        self.scriptError = scriptError
        self.context = ServerContext(configuration: configuration, logger: logger, script: script, hubLoop: group.next())
    }

    /// Reloads the `--script` file (SIGHUP); a script that fails to load leaves the old one running.
    public func reloadScript() {
        guard let script = context.script else { return }
        script.loop.execute { script.reload() }
    }

    /// Binds and starts accepting. Returns the bound address (the port is real when 0 was asked).
    /// A TLS certificate or key that cannot be used throws `TLSFileError` before anything is bound.
    public func start() throws -> SocketAddress {
        if let scriptError { throw scriptError }
        let server = context
        let c = configuration
        var tls: NIOSSLContext? = nil
        if let cert = c.tlsCertificatePath, let key = c.tlsKeyPath {
            // Throws TLSFileError, naming the file and what is wrong with it.
            tls = try TLSFiles.makeContext(certificatePath: cert, keyPath: key)
        }
        let sslContext = tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Start each connection's receive buffer small and let it grow with traffic: an idle
            // connection then costs about 1.5 KiB less than with NIO's 2 KiB default.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: max(1, c.maxSendQueue / 2), high: max(2, c.maxSendQueue)))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    var firstBytes: FirstBytesMarker? = nil
                    if let sslContext {
                        let marker = FirstBytesMarker()
                        firstBytes = marker
                        try ops.addHandler(marker)
                        try ops.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    let encoder = HTTPResponseEncoder()
                    try ops.addHandler(decoder)
                    try ops.addHandler(encoder)
                    try ops.addHandler(HTTPUpgradeHandler(server: server, decoder: decoder, encoder: encoder, tlsFirstBytes: firstBytes))
                }
            }
        let ch = try bootstrap.bind(host: c.host, port: c.port).wait()
        channel.withLock { $0 = ch }
        return ch.localAddress!
    }

    /// Stops accepting, sends 1001 Going Away to every client, waits up to `shutdownGrace` seconds
    /// for them to finish the close handshake, then closes what is left and stops the threads.
    public func shutdown() {
        context.shuttingDown.store(true, ordering: .relaxed)
        let ch = channel.withLock { c -> (any Channel)? in let x = c; c = nil; return x }
        try? ch?.close().wait()
        let handles = context.registry.snapshot()
        for h in handles {
            h.eventLoop.execute { h.handler.value.goingAway() }
        }
        let deadline = Date().addingTimeInterval(configuration.shutdownGrace)
        while context.registry.count > 0 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        // --exec processes whose clients have gone get a moment to exit after their SIGTERM.
        if let exec = context.exec {
            context.execHub?.terminate()
            let until = Date().addingTimeInterval(min(2, configuration.shutdownGrace))
            while exec.running.load(ordering: .relaxed) > 0 && Date() < until { Thread.sleep(forTimeInterval: 0.02) }
            exec.terminateAll()
        }
        try? group.syncShutdownGracefully()
    }

    /// A summary of the run, for the log at shutdown.
    public var summary: String {
        let k = context.counters
        let closes = k.closesByCode.withLock { $0 }.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        return "connections \(k.connectionsTotal.load(ordering: .relaxed)), messages in \(k.messagesIn.load(ordering: .relaxed)) / out \(k.messagesOut.load(ordering: .relaxed)), bytes in \(k.bytesIn.load(ordering: .relaxed)) / out \(k.bytesOut.load(ordering: .relaxed)), handshake failures \(k.handshakeFailures.load(ordering: .relaxed)), slow consumers dropped \(k.slowConsumerDrops.load(ordering: .relaxed)), closes \(closes.isEmpty ? "none" : closes)"
    }

    public var activeConnections: Int { context.registry.count }
}
