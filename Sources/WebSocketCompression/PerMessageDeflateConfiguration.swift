import WebSocketCodec

/// What one endpoint is willing to agree to for permessage-deflate, used to build a client's offer
/// (``clientOffer``) or to answer a client's offers as a server (``negotiate(offers:)``).
///
/// The defaults ask for nothing and allow everything: 32 KiB windows and context takeover both ways.
/// That gives the best compression, is what RFC 7692 assumes when a parameter is absent, and matches what
/// browsers offer (`permessage-deflate; client_max_window_bits`). It costs memory per connection, about
/// 256 KiB for a compressor (window 15, memory level 8) and 40 KiB for a decompressor; a server with many
/// connections can lower the window bits or turn off context takeover to trade ratio for memory.
public struct PerMessageDeflateConfiguration: Hashable, Sendable {
    /// The largest window the server compresses with, 8–15. Default 15.
    ///
    /// A client below 15 offers `server_max_window_bits` with it; a server uses the smaller of this and
    /// the client's `server_max_window_bits`, and announces it when below 15 or when the client asked.
    public var serverMaxWindowBits: Int
    /// The largest window the client may compress with, 8–15. Default 15.
    ///
    /// A client offers `client_max_window_bits` with it when below 15, and without a value otherwise; a
    /// server below 15 answers `client_max_window_bits` and declines offers that do not allow it to
    /// (§7.1.2.2: a server may limit the client only if the offer has the parameter), because the point
    /// of the setting is to bound the server's memory.
    public var clientMaxWindowBits: Int
    /// Whether the server resets its compressor after every message. Default false.
    ///
    /// A client that sets it offers `server_no_context_takeover`; a server that sets it answers with the
    /// parameter whether asked or not (§7.1.1.1 allows both).
    public var serverNoContextTakeover: Bool
    /// Whether the client resets its compressor after every message. Default false.
    ///
    /// A client that sets it offers `client_no_context_takeover`; a server that sets it answers with the
    /// parameter, which obliges the client (§7.1.1.2).
    public var clientNoContextTakeover: Bool

    /// - Precondition: both window sizes are in 8...15.
    public init(
        serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 15,
        serverNoContextTakeover: Bool = false, clientNoContextTakeover: Bool = false
    ) {
        precondition((8...15).contains(serverMaxWindowBits), "serverMaxWindowBits must be 8-15, got \(serverMaxWindowBits)")
        precondition((8...15).contains(clientMaxWindowBits), "clientMaxWindowBits must be 8-15, got \(clientMaxWindowBits)")
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
    }

    /// What a client with this configuration offers; send its ``PerMessageDeflateParameters/headerValue``
    /// in `Sec-WebSocket-Extensions` and keep it to check the answer with
    /// ``PerMessageDeflateParameters/validateResponse(_:)``.
    ///
    /// `client_max_window_bits` is always offered, with a value only below 15: a client can always compress
    /// with a smaller window, and offering it lets a server bound its memory (§7.1.2.2).
    public var clientOffer: PerMessageDeflateParameters {
        let serverBits = Self.clamped(serverMaxWindowBits)
        let clientBits = Self.clamped(clientMaxWindowBits)
        return PerMessageDeflateParameters(
            serverNoContextTakeover: serverNoContextTakeover,
            clientNoContextTakeover: clientNoContextTakeover,
            serverMaxWindowBits: serverBits < 15 ? serverBits : nil,
            clientMaxWindowBits: clientBits < 15 ? .value(clientBits) : .withoutValue)
    }

    /// Server side: the agreement for the first acceptable `permessage-deflate` offer, in the client's
    /// order of preference, or nil to run without compression.
    ///
    /// Other extensions in `offers` are skipped. An offer is declined, and the next one tried, when it
    /// has an unknown or repeated parameter or a bad value (§7.1), or when this configuration limits the
    /// client's window and the offer has no `client_max_window_bits` (§7.1.2.2). Send the result's
    /// ``PerMessageDeflateParameters/headerValue`` as the `Sec-WebSocket-Extensions` response; its
    /// ``PerMessageDeflateParameters/serverToClient`` settings are for the server's compressor and
    /// ``PerMessageDeflateParameters/clientToServer`` for its decompressor.
    public func negotiate(offers: [WebSocketExtensionOffer]) -> PerMessageDeflateParameters? {
        for element in offers where PerMessageDeflateParameters.sameName(element.name, PerMessageDeflateParameters.extensionName) {
            guard let offer = try? PerMessageDeflateParameters(element) else { continue }
            if let agreement = accept(offer) { return agreement }
        }
        return nil
    }

    private func accept(_ offer: PerMessageDeflateParameters) -> PerMessageDeflateParameters? {
        let ownServerBits = Self.clamped(serverMaxWindowBits)
        let ownClientBits = Self.clamped(clientMaxWindowBits)

        // §7.1.2.2: the response may carry client_max_window_bits only if the offer did, with a value no
        // larger than the offer's. An offered value is used even when we would allow more: the client has
        // promised not to exceed it, and a smaller window is less memory for our decompressor.
        let clientBits: PerMessageDeflateParameters.ClientMaxWindowBits?
        switch offer.clientMaxWindowBits {
        case nil:
            guard ownClientBits == 15 else { return nil }
            clientBits = nil
        case .withoutValue:
            clientBits = ownClientBits < 15 ? .value(ownClientBits) : nil
        case .value(let offered):
            clientBits = .value(min(offered, ownClientBits))
        }

        // §7.1.2.1: an offered server_max_window_bits is accepted by answering with the same or a smaller
        // value; the server may also announce a limit of its own when the offer has none.
        let serverBits = min(offer.serverMaxWindowBits ?? 15, ownServerBits)
        let announceServerBits = offer.serverMaxWindowBits != nil || serverBits < 15

        return PerMessageDeflateParameters(
            // §7.1.1.1: an offered server_no_context_takeover is accepted by echoing it; the server may add it.
            serverNoContextTakeover: offer.serverNoContextTakeover || serverNoContextTakeover,
            // §7.1.1.2: the client promised it already if it offered it; echoing it lets our decompressor
            // drop its window between messages.
            clientNoContextTakeover: offer.clientNoContextTakeover || clientNoContextTakeover,
            serverMaxWindowBits: announceServerBits ? serverBits : nil,
            clientMaxWindowBits: clientBits)
    }

    static func clamped(_ bits: Int) -> Int { min(max(bits, 8), 15) }
}
