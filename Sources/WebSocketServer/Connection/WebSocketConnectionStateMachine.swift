import WebSocketCodec

/// The close handshake and liveness of one connection (RFC 6455 §5.5, §7), without I/O: each
/// event returns what the channel handler must do, so the rules are testable without sockets.
public struct WebSocketConnectionStateMachine: Sendable {
    public enum State: Equatable, Sendable {
        case open
        /// We sent a close and wait for the peer's (§7.1.2).
        case closeSent(code: UInt16)
        /// Both closes exchanged, or the connection failed: the TCP connection is to be closed.
        case closed
    }

    public enum Action: Equatable, Sendable {
        case none
        /// Send a pong with this payload (§5.5.2: the ping's application data).
        case sendPong([UInt8])
        /// Send a ping with this payload.
        case sendPing([UInt8])
        /// Send a close frame; when `thenCloseTCP` the TCP connection is closed after it is written.
        case sendClose(code: UInt16?, reason: String, thenCloseTCP: Bool)
        /// Close the TCP connection now (the close handshake is complete, or the peer is gone).
        case closeTCP
        /// Send a close frame behind the queued data, but close TCP after a short grace whether or
        /// not it got out: a peer whose queue is full may never read it.
        case sendCloseAndDrop(code: UInt16, reason: String)
    }

    public private(set) var state: State = .open
    /// The code the connection ended with, for the log and metrics (1006 when it just dropped).
    public private(set) var closeCode: UInt16?
    public private(set) var closeReason: String = ""
    /// When the last ping was sent and no pong has come since.
    public private(set) var awaitingPongSince: Double?
    public private(set) var lastActivity: Double

    public init(now: Double) { lastActivity = now }

    public var isOpen: Bool { state == .open }

    /// Any inbound bytes count as activity for the idle timeout.
    public mutating func receivedBytes(now: Double) { lastActivity = now }

    /// The peer broke a rule: fail the connection with the rule's close code (§7.1.7).
    public mutating func receivedViolation(_ v: WebSocketViolation) -> Action {
        guard state == .open else { return state == .closed ? .none : .closeTCP }
        state = .closed
        closeCode = v.closeCode.code
        closeReason = v.rule.rawValue
        return .sendClose(code: v.closeCode.code, reason: Self.truncatedReason(v.rule.rawValue), thenCloseTCP: true)
    }

    /// A close frame arrived (already validated by the assembler).
    public mutating func receivedClose(_ payload: WebSocketClosePayload) -> Action {
        switch state {
        case .open:
            // §5.5.1: answer with a close, echoing the code; the server then closes TCP first (§7.1.1).
            state = .closed
            closeCode = payload.code?.code ?? 1005
            closeReason = payload.reason
            return .sendClose(code: payload.code?.code, reason: "", thenCloseTCP: true)
        case .closeSent:
            state = .closed
            if closeCode == nil { closeCode = payload.code?.code ?? 1005 }
            return .closeTCP
        case .closed:
            return .none
        }
    }

    public mutating func receivedPing(_ payload: [UInt8]) -> Action {
        state == .open ? .sendPong(payload) : .none
    }

    public mutating func receivedPong(now: Double) {
        awaitingPongSince = nil
        lastActivity = now
    }

    /// The server starts the close (shutdown, policy, timeout). It waits for the peer's close
    /// until `closeTimeout` passes (see `tick`).
    public mutating func initiateClose(code: UInt16, reason: String, now: Double) -> Action {
        guard state == .open else { return .none }
        state = .closeSent(code: code)
        closeCode = code
        closeReason = reason
        closeSentAt = now
        return .sendClose(code: code, reason: Self.truncatedReason(reason), thenCloseTCP: false)
    }

    /// Close at once with a code the peer is not expected to answer (slow consumer: its queue is full).
    public mutating func abort(code: UInt16, reason: String) -> Action {
        guard state != .closed else { return .none }
        state = .closed
        closeCode = code
        closeReason = reason
        return .sendCloseAndDrop(code: code, reason: Self.truncatedReason(reason))
    }

    /// The TCP connection went away.
    public mutating func connectionClosed() {
        if state != .closed && closeCode == nil { closeCode = 1006; closeReason = "connection dropped" }
        state = .closed
    }

    @usableFromInline var closeSentAt: Double?

    public struct Timeouts: Sendable {
        public var pingInterval: Double?
        public var pongTimeout: Double
        public var idleTimeout: Double?
        public var closeTimeout: Double
        public init(pingInterval: Double?, pongTimeout: Double, idleTimeout: Double?, closeTimeout: Double) {
            self.pingInterval = pingInterval
            self.pongTimeout = pongTimeout
            self.idleTimeout = idleTimeout
            self.closeTimeout = closeTimeout
        }
    }

    /// Called periodically: pings, dead peers, idle connections and unanswered closes.
    public mutating func tick(now: Double, timeouts t: Timeouts, lastPingAt: inout Double) -> Action {
        switch state {
        case .closed:
            return .none
        case .closeSent:
            if let sent = closeSentAt, now - sent >= t.closeTimeout {
                state = .closed
                return .closeTCP
            }
            return .none
        case .open:
            if let since = awaitingPongSince, now - since >= t.pongTimeout {
                state = .closed
                closeCode = 1006
                closeReason = "no pong within \(t.pongTimeout)s"
                return .closeTCP
            }
            if let idle = t.idleTimeout, now - lastActivity >= idle {
                return initiateClose(code: 1001, reason: "idle timeout", now: now)
            }
            if let interval = t.pingInterval, awaitingPongSince == nil, now - lastPingAt >= interval {
                awaitingPongSince = now
                lastPingAt = now
                return .sendPing(Array("wsctl".utf8))
            }
            return .none
        }
    }

    /// Close reasons must fit a control frame: 125 bytes less the 2-byte code, cut on a character boundary.
    static func truncatedReason(_ reason: String) -> String {
        var bytes = Array(reason.utf8)
        guard bytes.count > 123 else { return reason }
        bytes = Array(bytes[0..<123])
        while let last = bytes.last, last & 0xC0 == 0x80 { bytes.removeLast() }
        if let last = bytes.last, last >= 0xC0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
