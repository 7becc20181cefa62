/// A server's answer to an opening handshake that passed the client's checks of RFC 6455 §4.1, with what
/// the server selected.
public struct WebSocketUpgradeResponse: Hashable, Sendable {
    /// The subprotocol the server selected, one of those offered, or nil if it selected none.
    public var subprotocol: String?
    /// The extensions the server accepted, in the order it listed them (which is the order they apply,
    /// §9.1); each one's name was offered. Their parameters are for the extension itself to judge, as
    /// the permessage-deflate negotiation does.
    public var extensions: [WebSocketExtensionOffer]

    public init(subprotocol: String? = nil, extensions: [WebSocketExtensionOffer] = []) {
        self.subprotocol = subprotocol
        self.extensions = extensions
    }

    /// Checks a parsed HTTP response the way a client must (RFC 6455 §4.1, "the client MUST validate the
    /// server's response"), and returns what the server selected.
    ///
    /// Rules are checked in this order and the first one broken is reported: status 101; `Upgrade` equal
    /// to `websocket`; `Connection` containing `upgrade`; one `Sec-WebSocket-Accept` derived from
    /// `sentKey`; well-formed `Sec-WebSocket-Extensions` naming only offered extensions; at most one
    /// `Sec-WebSocket-Protocol`, one of those offered.
    ///
    /// - Parameters:
    ///   - status: the status code from the status line.
    ///   - headers: header fields in order; names are case-insensitive and may repeat.
    ///   - sentKey: the `Sec-WebSocket-Key` the client sent.
    ///   - offeredSubprotocols: the subprotocols the client offered; compared case-sensitively, as the
    ///     server must echo one of them.
    ///   - offeredExtensions: the extensions the client offered; only their names matter here, compared
    ///     case-insensitively.
    public static func validate(
        status: Int, headers: [(name: String, value: String)], sentKey: String,
        offeredSubprotocols: [String] = [], offeredExtensions: [WebSocketExtensionOffer] = []
    ) throws(WebSocketHandshakeError) -> WebSocketUpgradeResponse {
        let fields = HandshakeHeaders(headers)

        guard status == 101 else {
            throw .response(.unexpectedStatus, "expected status 101 Switching Protocols, got \(status)")
        }

        // Client step 2: the value must be "websocket" itself, not merely contain it.
        let upgrades = fields.listElements("Upgrade")
        guard !upgrades.isEmpty else {
            throw .response(.missingUpgrade, "missing Upgrade header")
        }
        guard upgrades.count == 1, HTTPSyntax.equalsIgnoringCase(upgrades[0], "websocket") else {
            throw .response(.upgradeNotWebSocket, "Upgrade header must be websocket, got \(upgrades.joined(separator: ", "))")
        }

        try fields.requireConnectionUpgrade(WebSocketHandshakeError.response)

        // Client step 4 and §11.3.3: one Sec-WebSocket-Accept, equal to what the key gives.
        let accept = try fields.single("Sec-WebSocket-Accept", missing: .missingAccept, WebSocketHandshakeError.response)
        let expected = WebSocketHandshake.acceptValue(forKey: sentKey)
        guard accept == expected else {
            throw .response(
                .acceptMismatch, "Sec-WebSocket-Accept is \(accept), expected \(expected) for key \(sentKey)")
        }

        // Client step 5: every accepted extension was offered.
        var extensions: [WebSocketExtensionOffer] = []
        let extensionLines = fields.values("Sec-WebSocket-Extensions")
        if !extensionLines.isEmpty {
            do throws(WebSocketExtensionHeaderError) {
                extensions = try WebSocketExtensionHeader.parse(extensionLines)
            } catch {
                throw .response(.invalidExtensions, "malformed Sec-WebSocket-Extensions: \(error.message)")
            }
        }
        for accepted in extensions
        where !offeredExtensions.contains(where: { HTTPSyntax.equalsIgnoringCase($0.name, accepted.name) }) {
            let offered = offeredExtensions.isEmpty ? "none" : offeredExtensions.map(\.name).joined(separator: ", ")
            throw .response(
                .unofferedExtension, "server selected extension \(accepted.name), which was not offered (offered: \(offered))")
        }

        // Client step 6: at most one subprotocol, and one that was offered.
        let protocolLines = fields.values("Sec-WebSocket-Protocol")
        var subprotocol: String?
        if !protocolLines.isEmpty {
            let selected = fields.listElements("Sec-WebSocket-Protocol")
            guard selected.count <= 1, protocolLines.count == 1 else {
                throw .response(
                    .multipleSubprotocols,
                    "server selected more than one subprotocol: \(protocolLines.joined(separator: ", "))")
            }
            let choice = selected.first ?? ""
            guard offeredSubprotocols.contains(choice) else {
                let offered = offeredSubprotocols.isEmpty ? "none" : offeredSubprotocols.joined(separator: ", ")
                throw .response(
                    .unofferedSubprotocol,
                    "server selected subprotocol \(choice.isEmpty ? "\"\"" : choice), which was not offered (offered: \(offered))")
            }
            subprotocol = choice
        }

        return WebSocketUpgradeResponse(subprotocol: subprotocol, extensions: extensions)
    }
}
