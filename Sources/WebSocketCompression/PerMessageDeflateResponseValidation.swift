import WebSocketCodec

extension PerMessageDeflateParameters {
    /// Client side: checks the server's `permessage-deflate` response against this offer and returns the
    /// agreement, or throws why the client must fail the connection (RFC 7692 §7.1).
    ///
    /// Beyond the syntax rules of ``init(_:)``:
    /// - `client_max_window_bits` in a response needs a value, and may appear only if offered (§7.1.2.2);
    /// - an offered `server_no_context_takeover` must be echoed (§7.1.1.1);
    /// - an offered `server_max_window_bits` must be answered with the same or a smaller value (§7.1.2.1).
    ///
    /// The agreement combines both sides: the client resets its context if either side asked
    /// (§7.1.1.2), and its window is the smaller of the response's `client_max_window_bits` and the value
    /// it offered, since an offered value is a promise that holds even when the server answers with more
    /// or nothing (§7.1.2.2).
    ///
    /// A sniffer that saw several offers can try each one; a conforming response answers at least one.
    public func validateResponse(_ response: WebSocketExtensionOffer) throws(PerMessageDeflateNegotiationError) -> PerMessageDeflateParameters {
        let answer = try PerMessageDeflateParameters(response)

        // §7.1.1.1: "A server accepts an extension negotiation offer that includes the
        // server_no_context_takeover extension parameter by including [it] in the corresponding response."
        if serverNoContextTakeover && !answer.serverNoContextTakeover {
            throw PerMessageDeflateNegotiationError(
                .unsupportedConfiguration, "server_no_context_takeover was offered but the response lacks it")
        }

        // §7.1.2.1: accepted "with the same or smaller value as the offer"; any value is fine if not offered.
        if let offered = serverMaxWindowBits {
            guard let answered = answer.serverMaxWindowBits else {
                throw PerMessageDeflateNegotiationError(
                    .unsupportedConfiguration, "server_max_window_bits=\(offered) was offered but the response lacks it")
            }
            guard answered <= offered else {
                throw PerMessageDeflateNegotiationError(
                    .unsupportedConfiguration,
                    "server_max_window_bits=\(answered) in the response exceeds the offered \(offered)")
            }
        }

        // §7.1.2.2: "If a received extension negotiation offer doesn't have the client_max_window_bits
        // extension parameter, the corresponding extension negotiation response to the offer MUST NOT
        // include" it; in a response it "has a decimal integer value".
        var clientBits: ClientMaxWindowBits? = nil
        switch answer.clientMaxWindowBits {
        case nil:
            if case .value(let offered) = clientMaxWindowBits { clientBits = .value(offered) }
        case .withoutValue:
            throw PerMessageDeflateNegotiationError(.invalidValue, "client_max_window_bits in a response needs a value 8-15")
        case .value(let answered):
            switch clientMaxWindowBits {
            case nil:
                throw PerMessageDeflateNegotiationError(
                    .unsupportedConfiguration, "client_max_window_bits=\(answered) in the response, but it was not offered")
            case .withoutValue:
                clientBits = .value(answered)
            case .value(let offered):
                clientBits = .value(min(answered, offered))
            }
        }

        return PerMessageDeflateParameters(
            serverNoContextTakeover: answer.serverNoContextTakeover,
            clientNoContextTakeover: clientNoContextTakeover || answer.clientNoContextTakeover,
            serverMaxWindowBits: answer.serverMaxWindowBits,
            clientMaxWindowBits: clientBits)
    }
}
