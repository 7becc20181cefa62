import Foundation
import Logging
import NIOCore
import Synchronization
import WebSocketCodec

/// Counts for the shutdown summary (the metrics registry, when enabled, has the full set). Bytes and
/// messages are updated only through `ServerContext.bytesReceived` and its neighbours, which update
/// the metrics too, so the summary and /metrics cannot disagree.
final class ServerCounters: Sendable {
    let connectionsTotal = Atomic<Int>(0)
    let messagesIn = Atomic<Int>(0)
    let messagesOut = Atomic<Int>(0)
    let bytesIn = Atomic<Int>(0)
    let bytesOut = Atomic<Int>(0)
    let handshakeFailures = Atomic<Int>(0)
    let slowConsumerDrops = Atomic<Int>(0)
    let closesByCode = Mutex<[UInt16: Int]>([:])

    func closed(code: UInt16) { closesByCode.withLock { $0[code, default: 0] += 1 } }
}

/// What every connection of one server shares.
final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let registry = ConnectionRegistry()
    let counters = ServerCounters()
    let logger: Logger
    let metrics: ServerMetrics?
    let rooms: Mutex<RoomsEngine>
    let authPolicy: AuthPolicy
    let originPolicy: OriginPolicy
    /// The `--script` host, when there is one.
    let script: (any ServerScript)?
    /// `--exec`: the process supervisor, and in broadcast mode the one shared process.
    let exec: ExecSupervisor?
    let execHub: ExecHub?
    let nextID = Atomic<Int>(0)
    /// Set at shutdown: new upgrades are refused.
    let shuttingDown = Atomic<Bool>(false)

    init(configuration: ServerConfiguration, logger: Logger, script: (any ServerScript)? = nil, hubLoop: (any EventLoop)? = nil) {
        self.configuration = configuration
        self.script = script
        let exec = configuration.execCommand.map { _ in ExecSupervisor(configuration: configuration, logger: logger) }
        self.exec = exec
        if let exec, configuration.mode == .broadcast, let hubLoop {
            execHub = ExecHub(loop: hubLoop, supervisor: exec, registry: registry, tls: configuration.tlsCertificatePath != nil)
        } else {
            execHub = nil
        }
        self.logger = logger
        self.metrics = configuration.metrics ? ServerMetrics() : nil
        self.authPolicy = AuthPolicy(tokens: configuration.authTokens)
        self.originPolicy = OriginPolicy(patterns: configuration.allowedOrigins)
        self.rooms = Mutex(RoomsEngine(authenticate: { [tokens = configuration.authTokens] token in
            tokens.isEmpty || tokens.contains(token)
        }))
    }

    // The summary's counters and the metrics are updated together, here only, so that the shutdown
    // summary's "bytes in / out" and wsctl_bytes_in_total / wsctl_bytes_out_total are one number.

    /// Bytes read from an upgraded connection: frames as they arrived, headers included.
    func bytesReceived(_ n: Int) {
        counters.bytesIn.add(n, ordering: .relaxed)
        metrics?.bytesReceived(n)
    }

    /// Bytes written to an upgraded connection: frames (data and control) as sent, headers included.
    func bytesSent(_ n: Int) {
        counters.bytesOut.add(n, ordering: .relaxed)
        metrics?.bytesSent(n)
    }

    /// One whole message received.
    func messageReceived() {
        counters.messagesIn.add(1, ordering: .relaxed)
        metrics?.messageIn()
    }

    /// `count` messages written.
    func messagesSent(_ count: Int) {
        counters.messagesOut.add(count, ordering: .relaxed)
        metrics?.messageOut(count: count)
    }

    func makeConnectionID() -> String {
        let n = nextID.add(1, ordering: .relaxed).newValue
        return "c\(n)"
    }

    static let monotonicStart = DispatchTime.now().uptimeNanoseconds
    /// Seconds on a monotonic clock (the start is read first: it is initialised lazily).
    static func now() -> Double {
        let start = monotonicStart
        return Double(Int64(bitPattern: DispatchTime.now().uptimeNanoseconds &- start)) / 1e9
    }
}
