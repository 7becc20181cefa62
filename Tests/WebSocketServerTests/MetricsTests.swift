import Prometheus
import Testing

@testable import WebSocketServer

/// The samples of a text exposition, keyed by `name` or `name{labels}`, and its `# TYPE` lines.
private struct Exposition {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("unreadable sample line: \(line)")
                continue
            }
            samples[String(line[..<space])] = value
        }
    }
}

@Suite struct MetricsTests {
    static let names = [
        "wsctl_connections_active", "wsctl_connections_total", "wsctl_messages_in_total", "wsctl_messages_out_total",
        "wsctl_bytes_in_total", "wsctl_bytes_out_total", "wsctl_slow_consumer_drops_total",
    ]

    @Test func freshMetricsAreAllZeroAndTyped() {
        let metrics = ServerMetrics()
        let exposition = Exposition(metrics.render())
        for name in Self.names {
            #expect(exposition.samples[name] == 0, "\(name)")
        }
        #expect(exposition.types["wsctl_connections_active"] == "gauge")
        for name in Self.names where name != "wsctl_connections_active" {
            #expect(exposition.types[name] == "counter", "\(name)")
        }
        #expect(exposition.types["wsctl_closes_total"] == "counter")
        #expect(exposition.types["wsctl_handshake_failures_total"] == "counter")
        // The codes and reasons the server produces are there from the start, at zero.
        #expect(exposition.samples[#"wsctl_closes_total{code="1000"}"#] == 0)
        #expect(exposition.samples[#"wsctl_closes_total{code="4004"}"#] == 0)
        #expect(exposition.samples[#"wsctl_handshake_failures_total{reason="origin_not_allowed"}"#] == 0)
    }

    @Test func eventsAreCounted() {
        let metrics = ServerMetrics()
        for _ in 0..<3 { metrics.connectionOpened() }
        metrics.connectionClosed(code: 1000)
        metrics.connectionClosed(code: 1000)
        metrics.messageIn()
        metrics.messageIn()
        metrics.bytesReceived(10)
        metrics.bytesReceived(32)
        metrics.messageOut(count: 5)
        metrics.messageOut()
        metrics.bytesSent(100)
        metrics.bytesSent(7)
        metrics.handshakeFailed(reason: ServerMetrics.HandshakeFailure.originNotAllowed)
        metrics.handshakeFailed(reason: ServerMetrics.HandshakeFailure.authMissing)
        metrics.handshakeFailed(reason: ServerMetrics.HandshakeFailure.authMissing)
        metrics.slowConsumerDropped()
        let e = Exposition(metrics.render())
        #expect(e.samples["wsctl_connections_active"] == 1)
        #expect(e.samples["wsctl_connections_total"] == 3)
        #expect(e.samples[#"wsctl_closes_total{code="1000"}"#] == 2)
        #expect(e.samples[#"wsctl_closes_total{code="1001"}"#] == 0)
        #expect(e.samples["wsctl_messages_in_total"] == 2)
        #expect(e.samples["wsctl_bytes_in_total"] == 42)
        #expect(e.samples["wsctl_messages_out_total"] == 6)
        #expect(e.samples["wsctl_bytes_out_total"] == 107)
        #expect(e.samples[#"wsctl_handshake_failures_total{reason="origin_not_allowed"}"#] == 1)
        #expect(e.samples[#"wsctl_handshake_failures_total{reason="auth_missing"}"#] == 2)
        #expect(e.samples["wsctl_slow_consumer_drops_total"] == 1)
    }

    @Test func unusualCloseCodesAndReasons() {
        let metrics = ServerMetrics()
        metrics.connectionClosed(code: 4999)
        metrics.connectionClosed(code: 3000)
        metrics.connectionClosed(code: 1006)
        metrics.connectionClosed(code: 999)
        metrics.connectionClosed(code: 5000)
        metrics.connectionClosed(code: 2000)
        metrics.handshakeFailed(reason: "something_new")
        metrics.handshakeFailed(reason: "something_new")
        let e = Exposition(metrics.render())
        #expect(e.samples[#"wsctl_closes_total{code="4999"}"#] == 1)
        #expect(e.samples[#"wsctl_closes_total{code="3000"}"#] == 1)
        #expect(e.samples[#"wsctl_closes_total{code="1006"}"#] == 1)
        // Codes that can never be on the wire are pooled, so peers cannot mint series.
        #expect(e.samples[#"wsctl_closes_total{code="other"}"#] == 3)
        #expect(e.samples[#"wsctl_closes_total{code="999"}"#] == nil)
        #expect(e.samples[#"wsctl_handshake_failures_total{reason="something_new"}"#] == 2)
    }

    /// Event loops call in from several threads at once; nothing may be lost.
    @Test func concurrentUpdatesAreNotLost() async {
        let metrics = ServerMetrics()
        let tasks = 8
        let rounds = 5_000
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for _ in 0..<rounds {
                        metrics.connectionOpened()
                        metrics.messageIn()
                        metrics.bytesReceived(3)
                        metrics.messageOut(count: 2)
                        metrics.bytesSent(5)
                        metrics.handshakeFailed(reason: task % 2 == 0 ? "timeout" : "dynamic_\(task % 4)")
                        metrics.connectionClosed(code: task % 2 == 0 ? 1000 : 4321)
                    }
                }
            }
        }
        let e = Exposition(metrics.render())
        let total = Double(tasks * rounds)
        #expect(e.samples["wsctl_connections_active"] == 0)
        #expect(e.samples["wsctl_connections_total"] == total)
        #expect(e.samples["wsctl_messages_in_total"] == total)
        #expect(e.samples["wsctl_bytes_in_total"] == total * 3)
        #expect(e.samples["wsctl_messages_out_total"] == total * 2)
        #expect(e.samples["wsctl_bytes_out_total"] == total * 5)
        #expect(e.samples[#"wsctl_closes_total{code="1000"}"#] == total / 2)
        #expect(e.samples[#"wsctl_closes_total{code="4321"}"#] == total / 2)
        #expect(e.samples[#"wsctl_handshake_failures_total{reason="timeout"}"#] == total / 2)
        #expect(e.samples[#"wsctl_handshake_failures_total{reason="dynamic_1"}"#] == total / 4)
        #expect(e.samples[#"wsctl_handshake_failures_total{reason="dynamic_3"}"#] == total / 4)
    }

    @Test func instancesAreIndependent() {
        let a = ServerMetrics()
        let b = ServerMetrics()
        a.connectionOpened()
        #expect(Exposition(a.render()).samples["wsctl_connections_total"] == 1)
        #expect(Exposition(b.render()).samples["wsctl_connections_total"] == 0)
    }

    @Test func sharesAGivenRegistry() {
        let registry = PrometheusCollectorRegistry()
        let metrics = ServerMetrics(registry: registry)
        metrics.slowConsumerDropped()
        #expect(Exposition(registry.emitToString()).samples["wsctl_slow_consumer_drops_total"] == 1)
        #expect(ServerMetrics.contentType.hasPrefix("text/plain; version=0.0.4"))
    }
}
