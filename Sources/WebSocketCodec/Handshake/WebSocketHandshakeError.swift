/// An opening handshake that breaks a rule of RFC 6455 §4: which rule, what exactly was wrong, and, for a
/// request, what a server answers.
///
/// Found by ``WebSocketUpgradeRequest/validate(method:target:version:headers:)`` on the server side and
/// by ``WebSocketUpgradeResponse/validate(status:headers:sentKey:offeredSubprotocols:offeredExtensions:)``
/// on the client side (and by the sniffer, which plays both).
public struct WebSocketHandshakeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Rule: String, Hashable, Sendable, CaseIterable {
        /// The request method is not GET (§4.1 item 2, §4.2.1 item 1).
        case methodNotGET = "method-not-get"
        /// The request is not HTTP/1.1 or later (§4.1 item 2, §4.2.1 item 1).
        case unsupportedHTTPVersion = "unsupported-http-version"
        /// The request target is neither a path nor an absolute URI, or has a fragment (§3, §4.1 item 3).
        case invalidTarget = "invalid-target"
        /// No `Host` header (§4.2.1 item 2).
        case missingHost = "missing-host"
        /// A header that may appear only once appears more often (§11.3.1, §11.3.3, §11.3.5; RFC 7230 §5.4).
        case duplicateHeader = "duplicate-header"
        /// No `Upgrade` header (§4.1, §4.2.1 item 3).
        case missingUpgrade = "missing-upgrade"
        /// `Upgrade` does not name `websocket` (§4.1, §4.2.1 item 3).
        case upgradeNotWebSocket = "upgrade-not-websocket"
        /// No `Connection` header (§4.1, §4.2.1 item 4).
        case missingConnection = "missing-connection"
        /// `Connection` does not contain the token `upgrade` (§4.1, §4.2.1 item 4).
        case connectionWithoutUpgrade = "connection-without-upgrade"
        /// No `Sec-WebSocket-Version` header (§4.2.1 item 6). Answered with 426.
        case missingVersion = "missing-version"
        /// A `Sec-WebSocket-Version` other than 13 (§4.2.2 item 4). Answered with 426.
        case unsupportedVersion = "unsupported-version"
        /// No `Sec-WebSocket-Key` header (§4.2.1 item 5).
        case missingKey = "missing-key"
        /// A `Sec-WebSocket-Key` that is not base64 of 16 bytes (§4.1 item 7, §4.2.1 item 5).
        case invalidKey = "invalid-key"
        /// A `Sec-WebSocket-Protocol` element that is not a token (§4.1 item 10).
        case invalidSubprotocol = "invalid-subprotocol"
        /// A `Sec-WebSocket-Extensions` value that does not follow the grammar of §9.1.
        case invalidExtensions = "invalid-extensions"
        /// A response status other than 101 (§4.1, client step 1).
        case unexpectedStatus = "unexpected-status"
        /// No `Sec-WebSocket-Accept` header in the response (§4.1, client step 4).
        case missingAccept = "missing-accept"
        /// `Sec-WebSocket-Accept` is not derived from the key that was sent (§4.1, client step 4).
        case acceptMismatch = "accept-mismatch"
        /// The server selected an extension the client did not offer (§4.1, client step 5).
        case unofferedExtension = "unoffered-extension"
        /// The server selected a subprotocol the client did not offer (§4.1, client step 6).
        case unofferedSubprotocol = "unoffered-subprotocol"
        /// The server selected more than one subprotocol (§4.2.2 item 5.4: "a single value").
        case multipleSubprotocols = "multiple-subprotocols"

        /// The section of RFC 6455 that states the rule.
        public var section: String {
            switch self {
            case .methodNotGET, .unsupportedHTTPVersion, .missingHost, .missingUpgrade, .upgradeNotWebSocket,
                .missingConnection, .connectionWithoutUpgrade, .missingVersion, .missingKey:
                return "RFC 6455 §4.2.1"
            case .invalidTarget: return "RFC 6455 §3"
            case .duplicateHeader: return "RFC 6455 §11.3"
            case .unsupportedVersion: return "RFC 6455 §4.2.2"
            case .invalidKey, .invalidSubprotocol: return "RFC 6455 §4.1"
            case .invalidExtensions: return "RFC 6455 §9.1"
            case .unexpectedStatus, .missingAccept, .acceptMismatch, .unofferedExtension, .unofferedSubprotocol:
                return "RFC 6455 §4.1"
            case .multipleSubprotocols: return "RFC 6455 §4.2.2"
            }
        }
    }

    public var rule: Rule
    /// What exactly was wrong, in words, naming the header and the offending value.
    public var message: String
    /// The status a server answers a request breaking this rule with: 426 Upgrade Required when the
    /// version is missing or not 13 (RFC 6455 §4.2.2 item 4), so that the client can retry with a version
    /// from ``rejectionHeaders``; 400 Bad Request for everything else (§4.2.1). Nil for errors a client
    /// finds in a server's response, where there is nobody to answer.
    public var httpStatus: Int?

    public init(_ rule: Rule, httpStatus: Int?, _ message: String) {
        self.rule = rule
        self.httpStatus = httpStatus
        self.message = message
    }

    /// Headers to send with the rejection: `Sec-WebSocket-Version: 13` with a 426 (RFC 6455 §4.2.2
    /// item 4), none otherwise.
    public var rejectionHeaders: [(name: String, value: String)] {
        httpStatus == 426 ? [("Sec-WebSocket-Version", WebSocketHandshake.version)] : []
    }

    public var description: String {
        let status = httpStatus.map { "; answer \($0)" } ?? ""
        return "\(rule.rawValue): \(message) (\(rule.section)\(status))"
    }

    static func request(_ rule: Rule, _ message: String) -> WebSocketHandshakeError {
        let status = rule == .missingVersion || rule == .unsupportedVersion ? 426 : 400
        return WebSocketHandshakeError(rule, httpStatus: status, message)
    }

    static func response(_ rule: Rule, _ message: String) -> WebSocketHandshakeError {
        WebSocketHandshakeError(rule, httpStatus: nil, message)
    }
}
