import WebSocketCodec
import WebSocketCompression

/// What the server does with each message.
public enum ServerMode: String, Sendable, CaseIterable {
    /// Each message goes back to its sender as one message of the same type.
    case echo
    /// Each message goes to every client (`echoSelf == false` leaves out the sender).
    case broadcast
    /// The JSON envelope chat-room protocol of DESIGN.md.
    case rooms
}

/// Everything `wsctl serve` can be told, with the defaults its `--help` documents.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 8080
    /// Only this path upgrades; nil accepts any path.
    public var path: String? = nil
    /// Event-loop threads; nil means one per core.
    public var threads: Int? = nil
    public var mode: ServerMode = .echo
    /// In broadcast mode, whether the sender receives its own messages.
    public var echoSelf = true
    /// Subprotocols the server speaks, in preference order; the first one the client offers wins.
    public var subprotocols: [String] = []
    /// Negotiate permessage-deflate when the client offers it.
    public var compression = true
    public var deflate = PerMessageDeflateConfiguration()

    /// Accepted tokens (from `?token=` or `Authorization: Bearer`); empty means no authentication.
    public var authTokens: Set<String> = []
    /// Allowed `Origin` values (`*.example.com` wildcards); empty means any origin.
    public var allowedOrigins: [String] = []
    /// Messages per second per connection, with a burst of the same size; nil means no limit.
    public var rateLimit: Double? = nil
    public var rateBurst: Double? = nil

    /// 16 MiB: Autobahn's 9.x cases send 16 MiB messages; larger ones are closed with 1009.
    public var maxMessageSize = 16 << 20
    /// 16 MiB, the same as the message limit.
    public var maxFrameSize = 16 << 20
    /// Most open connections; further upgrades get 503.
    public var maxConnections = 100_000
    /// Seconds a client has to complete the upgrade request; more than 0 (`wsctl serve` refuses 0).
    public var handshakeTimeout: Double = 10
    /// Seconds between server pings; nil (or 0) disables them.
    public var pingInterval: Double? = nil
    /// Seconds to wait for a pong before closing as dead; more than 0 (`wsctl serve` refuses 0).
    public var pongTimeout: Double = 10
    /// Seconds without any traffic before closing; nil (or 0) disables.
    public var idleTimeout: Double? = nil
    /// Bytes queued for one connection before it counts as a slow consumer and is closed. 16 MiB: one
    /// echo of the largest message, plus room.
    public var maxSendQueue = 16 << 20 + 1 << 20
    /// Seconds to wait for clients to finish closing at shutdown (and for the peer's close after any
    /// close the server starts); 0 does not wait.
    public var shutdownGrace: Double = 5

    public var tlsCertificatePath: String? = nil
    public var tlsKeyPath: String? = nil
    /// Serve Prometheus text at /metrics and health at /healthz.
    public var metrics = false

    /// `--exec`: a shell command run per connection (echo mode) or once for all (broadcast mode).
    public var execCommand: String? = nil
    /// Most --exec processes at once (echo mode); further upgrades get 503.
    public var maxProcesses = 256
    /// Make the processes' stdout line-buffered (PYTHONUNBUFFERED, coreutils' libstdbuf).
    public var execLineBuffered = true

    public init() {}
}
