/// A client's opening handshake that passed every rule of RFC 6455 §4.2.1, with what a server needs to
/// answer it.
///
/// The HTTP parsing itself (request line, header lines) belongs to whoever reads the bytes (NIOHTTP1 in
/// the server, the sniffer's reassembler); this type only judges the parsed parts, so it has no I/O.
public struct WebSocketUpgradeRequest: Hashable, Sendable {
    /// The `Sec-WebSocket-Key`, already checked to be base64 of 16 bytes.
    public var key: String
    /// `Sec-WebSocket-Protocol` elements in the client's order of preference, across all header lines.
    public var subprotocols: [String]
    /// `Sec-WebSocket-Extensions` offers in the client's order of preference, across all header lines.
    public var extensions: [WebSocketExtensionOffer]
    /// The `Origin` header, which browsers always send and servers may check (§4.2.1 item 7, §10.2).
    public var origin: String?
    /// The `Host` header, as sent.
    public var host: String
    /// The path of the request target (`/chat` for `/chat?room=1` or `ws://host/chat?room=1`); `/` if empty.
    public var path: String
    /// The query of the request target without the `?`, or nil if there is none.
    public var query: String?

    public init(
        key: String, subprotocols: [String] = [], extensions: [WebSocketExtensionOffer] = [],
        origin: String? = nil, host: String, path: String = "/", query: String? = nil
    ) {
        self.key = key
        self.subprotocols = subprotocols
        self.extensions = extensions
        self.origin = origin
        self.host = host
        self.path = path
        self.query = query
    }

    /// Checks a parsed HTTP request against RFC 6455 §4.2.1 and returns what it asks for.
    ///
    /// Rules are checked in this order and the first one broken is reported: method GET; HTTP/1.1 or
    /// later; a path or absolute URI without fragment as target; one `Host`; `Upgrade` naming `websocket`;
    /// `Connection` containing `upgrade`; one `Sec-WebSocket-Version` equal to 13; one valid
    /// `Sec-WebSocket-Key`; well-formed `Sec-WebSocket-Extensions` and `Sec-WebSocket-Protocol`. The version
    /// comes before the key so that an old client learns which version to use (426) rather than only that
    /// its key is wrong.
    ///
    /// - Parameters:
    ///   - method: the request method, compared case-sensitively as HTTP methods are (RFC 7230 §3.1.1).
    ///   - target: the request target as it appeared on the request line.
    ///   - version: the HTTP version as it appeared on the request line, such as `HTTP/1.1`.
    ///   - headers: header fields in order; names are case-insensitive and may repeat.
    public static func validate(
        method: String, target: String, version: String, headers: [(name: String, value: String)]
    ) throws(WebSocketHandshakeError) -> WebSocketUpgradeRequest {
        let fields = HandshakeHeaders(headers)

        guard method == "GET" else {
            throw .request(.methodNotGET, "method must be GET, got \(method)")
        }
        guard isHTTP11OrLater(version) else {
            throw .request(.unsupportedHTTPVersion, "HTTP version must be HTTP/1.1 or later, got \(version)")
        }
        guard let (path, query) = splitTarget(target) else {
            throw .request(
                .invalidTarget, "request target must be a path or a ws/wss/http/https URI without fragment, got \(target)")
        }

        let hosts = fields.values("Host")
        guard let host = hosts.first, !host.isEmpty else {
            throw .request(.missingHost, "missing Host header")
        }
        guard hosts.count == 1 else {
            throw .request(.duplicateHeader, "Host header appears \(hosts.count) times")
        }

        let upgrades = fields.listElements("Upgrade")
        guard !upgrades.isEmpty else {
            throw .request(.missingUpgrade, "missing Upgrade header")
        }
        guard upgrades.contains(where: { HTTPSyntax.equalsIgnoringCase($0, "websocket") }) else {
            throw .request(.upgradeNotWebSocket, "Upgrade header must name websocket, got \(upgrades.joined(separator: ", "))")
        }

        try fields.requireConnectionUpgrade(WebSocketHandshakeError.request)

        // §4.2.2 item 4 and §11.3.5: exactly one Sec-WebSocket-Version, and it must be 13.
        let webSocketVersion = try fields.single("Sec-WebSocket-Version", missing: .missingVersion, WebSocketHandshakeError.request)
        guard webSocketVersion == WebSocketHandshake.version else {
            throw .request(.unsupportedVersion, "Sec-WebSocket-Version must be 13, got \(webSocketVersion)")
        }

        // §4.2.1 item 5 and §11.3.1: exactly one key, base64 of 16 bytes.
        let key = try fields.single("Sec-WebSocket-Key", missing: .missingKey, WebSocketHandshakeError.request)
        guard let length = WebSocketHandshake.decodedKeyLength(key) else {
            throw .request(.invalidKey, "Sec-WebSocket-Key must be base64 of 16 bytes, got \(key), which is not base64")
        }
        guard length == 16 else {
            throw .request(.invalidKey, "Sec-WebSocket-Key must be base64 of 16 bytes, got \(length) bytes")
        }

        var extensions: [WebSocketExtensionOffer] = []
        let extensionLines = fields.values("Sec-WebSocket-Extensions")
        if !extensionLines.isEmpty {
            do throws(WebSocketExtensionHeaderError) {
                extensions = try WebSocketExtensionHeader.parse(extensionLines)
            } catch {
                throw .request(.invalidExtensions, "malformed Sec-WebSocket-Extensions: \(error.message)")
            }
        }

        // §4.1 item 10: each subprotocol is a token, and the list is 1#token.
        let subprotocols = fields.listElements("Sec-WebSocket-Protocol")
        if let bad = subprotocols.first(where: { !HTTPSyntax.isToken($0) }) {
            throw .request(.invalidSubprotocol, "Sec-WebSocket-Protocol element \(bad) is not a token")
        }

        return WebSocketUpgradeRequest(
            key: key, subprotocols: subprotocols, extensions: extensions, origin: fields.values("Origin").first,
            host: host, path: path, query: query)
    }

    /// The header fields of the `101 Switching Protocols` answer to this request (RFC 6455 §4.2.2 item 5):
    /// `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, and the chosen subprotocol and extensions if any.
    ///
    /// - Parameters:
    ///   - subprotocol: one of ``subprotocols`` (§4.2.2 item 5.4), or nil to select none. Choosing one the
    ///     client did not offer makes every conforming client fail the connection.
    ///   - extensions: the `Sec-WebSocket-Extensions` value for the extensions accepted, such as the one
    ///     the permessage-deflate negotiation produces, or nil for none.
    public func responseHeaders(subprotocol: String? = nil, extensions: String? = nil) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", WebSocketHandshake.acceptValue(forKey: key)),
        ]
        if let subprotocol { headers.append(("Sec-WebSocket-Protocol", subprotocol)) }
        if let extensions, !extensions.isEmpty { headers.append(("Sec-WebSocket-Extensions", extensions)) }
        return headers
    }

    /// `HTTP/1.1`, `HTTP/1.2`, `HTTP/2`, `HTTP/2.0`… (RFC 7230 §2.6: `HTTP/` DIGIT `.` DIGIT, case-sensitive).
    private static func isHTTP11OrLater(_ version: String) -> Bool {
        guard version.hasPrefix("HTTP/") else { return false }
        let numbers = version.dropFirst(5).split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(numbers.count), numbers.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) }),
            let major = Int(numbers[0])
        else { return false }
        let minor = numbers.count == 2 ? Int(numbers[1]) : 0
        guard let minor else { return false }
        return major > 1 || (major == 1 && minor >= 1)
    }

    /// Splits an origin-form (`/path?query`) or absolute-form (`ws://host/path?query`) target into path
    /// and query. Nil for `*`, authority-form, other schemes, and any fragment (§3: fragments "MUST NOT
    /// be used" in WebSocket URIs).
    private static func splitTarget(_ target: String) -> (path: String, query: String?)? {
        guard !target.isEmpty, !target.contains("#"), !target.contains(where: { $0 == " " || $0 == "\t" }) else {
            return nil
        }
        var pathAndQuery = Substring(target)
        if !target.hasPrefix("/") {
            guard let schemeEnd = target.firstRange(of: "://") else { return nil }
            let scheme = target[..<schemeEnd.lowerBound].lowercased()
            guard ["ws", "wss", "http", "https"].contains(scheme) else { return nil }
            let afterScheme = target[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
            guard authorityEnd > afterScheme.startIndex else { return nil }
            pathAndQuery = afterScheme[authorityEnd...]
        }
        let path: Substring, query: String?
        if let mark = pathAndQuery.firstIndex(of: "?") {
            path = pathAndQuery[..<mark]
            query = String(pathAndQuery[pathAndQuery.index(after: mark)...])
        } else {
            path = pathAndQuery
            query = nil
        }
        return (path.isEmpty ? "/" : String(path), query)
    }
}
