import Testing
import WebSocketCodec
@testable import WebSocketServer

/// Close handshake and liveness rules (RFC 6455 §5.5, §7) without sockets.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    typealias M = WebSocketConnectionStateMachine
    let timeouts = M.Timeouts(pingInterval: 10, pongTimeout: 5, idleTimeout: 60, closeTimeout: 3)

    @Test func peerCloseIsEchoedThenTCPClosed() {
        var m = M(now: 0)
        let a = m.receivedClose(WebSocketClosePayload(code: .goingAway, reason: "bye"))
        // §5.5.1: reply with a close echoing the code; the server closes TCP first (§7.1.1).
        #expect(a == .sendClose(code: 1001, reason: "", thenCloseTCP: true))
        #expect(m.state == .closed)
        #expect(m.closeCode == 1001)
        #expect(m.closeReason == "bye")
        #expect(m.receivedClose(WebSocketClosePayload(code: .normalClosure)) == .none)
    }

    @Test func emptyCloseIsAnsweredWithEmptyClose() {
        var m = M(now: 0)
        #expect(m.receivedClose(WebSocketClosePayload(code: nil)) == .sendClose(code: nil, reason: "", thenCloseTCP: true))
        #expect(m.closeCode == 1005)  // §7.1.5: no status received
    }

    @Test func violationFailsWithItsCloseCode() {
        var m = M(now: 0)
        let v = WebSocketViolation(.invalidUTF8, offset: 9, "bad")
        #expect(m.receivedViolation(v) == .sendClose(code: 1007, reason: "invalid-utf8", thenCloseTCP: true))
        #expect(m.closeCode == 1007)
        #expect(m.receivedPing([1]) == .none)
    }

    @Test func pingIsAnsweredWithSamePayloadWhileOpen() {
        var m = M(now: 0)
        #expect(m.receivedPing([1, 2, 3]) == .sendPong([1, 2, 3]))
        _ = m.initiateClose(code: 1001, reason: "shutdown", now: 1)
        #expect(m.receivedPing([1]) == .none)
    }

    @Test func serverInitiatedCloseWaitsForPeerThenTimesOut() {
        var m = M(now: 0)
        #expect(m.initiateClose(code: 1001, reason: "server shutting down", now: 10)
                == .sendClose(code: 1001, reason: "server shutting down", thenCloseTCP: false))
        var lastPing = 0.0
        #expect(m.tick(now: 12, timeouts: timeouts, lastPingAt: &lastPing) == .none)
        #expect(m.tick(now: 13.5, timeouts: timeouts, lastPingAt: &lastPing) == .closeTCP)
        #expect(m.closeCode == 1001)
    }

    @Test func peerAnswersOurClose() {
        var m = M(now: 0)
        _ = m.initiateClose(code: 4004, reason: "rate limit exceeded", now: 0)
        #expect(m.receivedClose(WebSocketClosePayload(code: .init(code: 4004))) == .closeTCP)
        #expect(m.state == .closed)
    }

    @Test func pingsAndDeadPeers() {
        var m = M(now: 0)
        var lastPing = 0.0
        #expect(m.tick(now: 5, timeouts: timeouts, lastPingAt: &lastPing) == .none)
        #expect(m.tick(now: 10, timeouts: timeouts, lastPingAt: &lastPing) == .sendPing(Array("wsctl".utf8)))
        #expect(m.tick(now: 12, timeouts: timeouts, lastPingAt: &lastPing) == .none)  // waiting for the pong
        #expect(m.tick(now: 15, timeouts: timeouts, lastPingAt: &lastPing) == .closeTCP)
        #expect(m.closeCode == 1006)
    }

    @Test func pongKeepsTheConnectionAlive() {
        var m = M(now: 0)
        var lastPing = 0.0
        _ = m.tick(now: 10, timeouts: timeouts, lastPingAt: &lastPing)
        m.receivedPong(now: 11)
        #expect(m.tick(now: 16, timeouts: timeouts, lastPingAt: &lastPing) == .none)
        #expect(m.tick(now: 20, timeouts: timeouts, lastPingAt: &lastPing) == .sendPing(Array("wsctl".utf8)))
    }

    @Test func idleConnectionsAreClosedWith1001() {
        var m = M(now: 0)
        var lastPing = 0.0
        let t = M.Timeouts(pingInterval: nil, pongTimeout: 5, idleTimeout: 30, closeTimeout: 3)
        m.receivedBytes(now: 20)
        #expect(m.tick(now: 49, timeouts: t, lastPingAt: &lastPing) == .none)
        #expect(m.tick(now: 50, timeouts: t, lastPingAt: &lastPing) == .sendClose(code: 1001, reason: "idle timeout", thenCloseTCP: false))
    }

    @Test func abortForSlowConsumers() {
        var m = M(now: 0)
        #expect(m.abort(code: 1008, reason: "slow consumer") == .sendCloseAndDrop(code: 1008, reason: "slow consumer"))
        #expect(m.abort(code: 1008, reason: "again") == .none)
    }

    @Test func droppedConnectionRecords1006() {
        var m = M(now: 0)
        m.connectionClosed()
        #expect(m.closeCode == 1006)
    }

    @Test func longReasonsAreCutToFitAControlFrame() {
        let reason = String(repeating: "é", count: 100)  // 200 bytes
        let cut = M.truncatedReason(reason)
        #expect(cut.utf8.count <= 123)
        #expect(cut.utf8.count == 122)  // whole two-byte characters only
        #expect(String(validating: Array(cut.utf8), as: UTF8.self) != nil)
    }
}
