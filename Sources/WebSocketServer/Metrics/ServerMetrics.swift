import Prometheus

/// The server's Prometheus metrics, served as text at `GET /metrics` when `--metrics` is on.
///
/// | metric | type | meaning |
/// |---|---|---|
/// | `wsctl_connections_active` | gauge | WebSocket connections open now |
/// | `wsctl_connections_total` | counter | WebSocket connections opened (after a successful upgrade) |
/// | `wsctl_messages_in_total` | counter | messages received (whole messages, not frames) |
/// | `wsctl_messages_out_total` | counter | messages sent; a broadcast counts once per receiver |
/// | `wsctl_bytes_in_total` | counter | WebSocket bytes received after the upgrade: every frame, headers included |
/// | `wsctl_bytes_out_total` | counter | WebSocket bytes sent after the upgrade: every frame, headers included |
/// | `wsctl_closes_total{code}` | counter | connections closed, by close code (`1006` when the TCP connection just ended) |
/// | `wsctl_handshake_failures_total{reason}` | counter | upgrades refused, by `HandshakeFailure` reason |
/// | `wsctl_slow_consumer_drops_total` | counter | connections closed because their send queue overflowed |
///
/// Every call is safe from any thread and takes no lock on the common path: the registry's counters
/// and gauges are atomics, and the counters for every close code and failure reason the server
/// itself produces are created up front and kept in immutable dictionaries. Only an unusual close
/// code (one a peer chose) or an unlisted reason asks the registry, which is locked inside.
///
/// `wsctl_closes_total` keeps the code of any close that may appear on the wire or be reported
/// (1000–1015, 3000–4999); any other value is counted as `code="other"`, so a peer cannot make the
/// server grow a series per value.
///
/// The two byte counters have one definition, the same as the shutdown summary's "bytes in / out":
/// the bytes of every frame that crossed the connection after the upgrade, in that direction —
/// headers, masking keys and payload, data and control frames (ping, pong, close) alike, compressed
/// payloads at their compressed size. Under TLS they are the WebSocket bytes inside it. The HTTP
/// upgrade request and response are not counted.
///
/// The registry is used directly, with no `MetricsSystem.bootstrap`, so several servers (tests) can
/// run in one process, each with its own numbers.
public final class ServerMetrics: Sendable {
    /// Reasons for `handshakeFailed(reason:)`: the label values of `wsctl_handshake_failures_total`.
    /// Use these, not free text, so that the number of series stays small.
    public enum HandshakeFailure {
        /// The request is not a valid WebSocket upgrade (HTTP 400).
        public static let badRequest = "bad_request"
        /// `Sec-WebSocket-Version` is not 13 (HTTP 426).
        public static let unsupportedVersion = "unsupported_version"
        /// The path is not the one `--path` upgrades (HTTP 404).
        public static let wrongPath = "wrong_path"
        /// `Origin` refused by `--allow-origin` (close 4003).
        public static let originNotAllowed = "origin_not_allowed"
        /// No token presented (close 4001).
        public static let authMissing = "auth_missing"
        /// A token that is not accepted (close 4002).
        public static let authInvalid = "auth_invalid"
        /// `--max-connections` reached (HTTP 503).
        public static let tooManyConnections = "too_many_connections"
        /// The request did not arrive within the handshake timeout.
        public static let timeout = "timeout"
        /// The TLS handshake failed (NIOSSL reported it before the HTTP upgrade): bytes that are not
        /// TLS, such as a plain HTTP request, no shared protocol or cipher, a client's alert, or the
        /// connection ending halfway. A connection closed before its first byte is not counted.
        public static let tls = "tls"
        /// The server is shutting down.
        public static let shuttingDown = "shutting_down"

        public static let all = [
            badRequest, unsupportedVersion, wrongPath, originNotAllowed, authMissing, authInvalid,
            tooManyConnections, timeout, tls, shuttingDown,
        ]
    }

    /// The registry the metrics live in, for a caller that wants to add its own.
    public let registry: PrometheusCollectorRegistry

    private let connectionsActive: Gauge
    private let connectionsTotal: Counter
    private let messagesIn: Counter
    private let messagesOut: Counter
    private let bytesIn: Counter
    private let bytesOut: Counter
    private let slowConsumerDrops: Counter
    private let closesByCode: [UInt16: Counter]
    private let failuresByReason: [String: Counter]

    /// The HELP text of the byte counters: the same definition for both directions.
    static func bytesHelp(_ direction: String) -> String {
        "WebSocket bytes \(direction) after the upgrade: every frame (data, ping, pong, close) with its header, "
            + "compressed payloads at their compressed size."
    }

    private static let closesName = "wsctl_closes_total"
    private static let closesHelp = "WebSocket connections closed, by close code."
    private static let failuresName = "wsctl_handshake_failures_total"
    private static let failuresHelp = "WebSocket upgrade requests refused, by reason."

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        connectionsActive = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "wsctl_connections_active", unitName: "", helpText: "WebSocket connections open now."))
        connectionsTotal = counter("wsctl_connections_total", "WebSocket connections opened.")
        messagesIn = counter("wsctl_messages_in_total", "WebSocket messages received.")
        messagesOut = counter("wsctl_messages_out_total", "WebSocket messages sent; a broadcast counts once per receiver.")
        bytesIn = counter("wsctl_bytes_in_total", Self.bytesHelp("received"))
        bytesOut = counter("wsctl_bytes_out_total", Self.bytesHelp("sent"))
        slowConsumerDrops = counter(
            "wsctl_slow_consumer_drops_total", "Connections closed because their send queue overflowed.")
        var closes: [UInt16: Counter] = [:]
        for code in Array(1000...1015) + Array(4000...4005) {
            closes[UInt16(code)] = Self.closeCounter(registry, label: String(code))
        }
        closesByCode = closes
        var failures: [String: Counter] = [:]
        for reason in HandshakeFailure.all {
            failures[reason] = Self.failureCounter(registry, reason: reason)
        }
        failuresByReason = failures
    }

    /// A connection completed its upgrade.
    public func connectionOpened() {
        connectionsTotal.increment()
        connectionsActive.increment()
    }

    /// A connection that `connectionOpened()` counted has ended, with the close code it ended with
    /// (sent or received; 1006 when there was no close handshake).
    public func connectionClosed(code: UInt16) {
        connectionsActive.decrement()
        closeCounter(for: code).increment()
    }

    /// One whole message received.
    public func messageIn() {
        messagesIn.increment()
    }

    /// `count` messages written (a broadcast frame written to many clients can be counted in one call).
    public func messageOut(count: Int = 1) {
        messagesOut.increment(by: Int64(count))
    }

    /// `bytes` read from a connection after its upgrade (frames as they arrived, headers included).
    public func bytesReceived(_ bytes: Int) {
        bytesIn.increment(by: Int64(bytes))
    }

    /// `bytes` written to a connection after its upgrade (frames as sent, headers included).
    public func bytesSent(_ bytes: Int) {
        bytesOut.increment(by: Int64(bytes))
    }

    /// An upgrade was refused; `reason` should be one of `HandshakeFailure`'s values.
    public func handshakeFailed(reason: String) {
        (failuresByReason[reason] ?? Self.failureCounter(registry, reason: reason)).increment()
    }

    /// A connection was closed because it could not keep up with what it was sent.
    public func slowConsumerDropped() {
        slowConsumerDrops.increment()
    }

    /// Everything in the registry in the Prometheus text exposition format (version 0.0.4; serve it
    /// as `text/plain; version=0.0.4; charset=utf-8`).
    public func render() -> String {
        registry.emitToString()
    }

    /// The `Content-Type` for `render()`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    // MARK: - Labelled counters

    private func closeCounter(for code: UInt16) -> Counter {
        if let counter = closesByCode[code] { return counter }
        let label: String
        switch code {
        case 1000...1015, 3000...4999: label = String(code)
        default: label = "other"
        }
        return Self.closeCounter(registry, label: label)
    }

    private static func closeCounter(_ registry: PrometheusCollectorRegistry, label: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: closesName, unitName: "", helpText: closesHelp),
            labels: [("code", label)])
    }

    private static func failureCounter(_ registry: PrometheusCollectorRegistry, reason: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: failuresName, unitName: "", helpText: failuresHelp),
            labels: [("reason", reason)])
    }
}
