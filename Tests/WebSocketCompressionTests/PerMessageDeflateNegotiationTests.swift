import Testing
import WebSocketCodec
import WebSocketCompression

typealias DeflateParameters = PerMessageDeflateParameters

/// Parses one header element, trapping on malformed fixtures.
private func element(_ text: String) -> WebSocketExtensionOffer {
    let elements = try! WebSocketExtensionHeader.parse(text)
    precondition(elements.count == 1, "fixture \(text) must hold one element")
    return elements[0]
}

/// The negotiation error `body` throws, or nil if it returns. Any other error is recorded as a test failure.
private func negotiationError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> PerMessageDeflateNegotiationError? {
    do {
        try body()
        return nil
    } catch let error as PerMessageDeflateNegotiationError {
        return error
    } catch {
        Issue.record("expected a PerMessageDeflateNegotiationError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite("permessage-deflate negotiation")
struct PerMessageDeflateNegotiationTests {
    // MARK: Reading parameters (§7.1)

    @Test(
        "valid offers parse into parameters",
        arguments: [
            ("permessage-deflate", DeflateParameters()),
            ("permessage-deflate; client_max_window_bits", DeflateParameters(clientMaxWindowBits: .withoutValue)),
            ("permessage-deflate; client_max_window_bits=10", DeflateParameters(clientMaxWindowBits: .value(10))),
            ("permessage-deflate; server_max_window_bits=8", DeflateParameters(serverMaxWindowBits: 8)),
            ("permessage-deflate; server_max_window_bits=15", DeflateParameters(serverMaxWindowBits: 15)),
            ("permessage-deflate; server_max_window_bits=\"10\"", DeflateParameters(serverMaxWindowBits: 10)),
            ("permessage-deflate; server_no_context_takeover", DeflateParameters(serverNoContextTakeover: true)),
            ("permessage-deflate; client_no_context_takeover", DeflateParameters(clientNoContextTakeover: true)),
            (
                "permessage-deflate; client_max_window_bits=9; server_max_window_bits=12; client_no_context_takeover; server_no_context_takeover",
                DeflateParameters(
                    serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12,
                    clientMaxWindowBits: .value(9))
            ),
            ("PerMessage-Deflate; Server_No_Context_Takeover", DeflateParameters(serverNoContextTakeover: true)),
        ])
    func validOffer(text: String, expected: DeflateParameters) throws {
        #expect(try DeflateParameters(element(text)) == expected)
    }

    @Test(
        "invalid offers are declined with the §7.1 reason",
        arguments: [
            ("x-webkit-deflate-frame", PerMessageDeflateNegotiationError.Rule.otherExtension),
            ("permessage-deflate; foo", .unknownParameter),
            ("permessage-deflate; foo=1", .unknownParameter),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", .duplicateParameter),
            ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", .duplicateParameter),
            ("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", .duplicateParameter),
            ("permessage-deflate; client_max_window_bits; client_max_window_bits=10", .duplicateParameter),
            ("permessage-deflate; server_no_context_takeover; SERVER_NO_CONTEXT_TAKEOVER", .duplicateParameter),
            ("permessage-deflate; server_no_context_takeover=true", .invalidValue),
            ("permessage-deflate; client_no_context_takeover=1", .invalidValue),
            ("permessage-deflate; server_max_window_bits", .invalidValue),
            ("permessage-deflate; server_max_window_bits=7", .invalidValue),
            ("permessage-deflate; server_max_window_bits=16", .invalidValue),
            ("permessage-deflate; server_max_window_bits=08", .invalidValue),
            ("permessage-deflate; server_max_window_bits=+9", .invalidValue),
            ("permessage-deflate; server_max_window_bits=abc", .invalidValue),
            ("permessage-deflate; client_max_window_bits=0", .invalidValue),
            ("permessage-deflate; client_max_window_bits=1e1", .invalidValue),
            ("permessage-deflate; client_max_window_bits=99999999999999999999", .invalidValue),
        ])
    func invalidOffer(text: String, rule: PerMessageDeflateNegotiationError.Rule) {
        let error = negotiationError { _ = try DeflateParameters(element(text)) }
        #expect(error?.rule == rule)
    }

    @Test("parameters serialise in RFC order and parse back")
    func serialisation() throws {
        let all = DeflateParameters(
            serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10,
            clientMaxWindowBits: .value(12))
        #expect(
            all.headerValue
                == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        )
        #expect(try DeflateParameters(element(all.headerValue)) == all)
        #expect(DeflateParameters().headerValue == "permessage-deflate")
        #expect(DeflateParameters(clientMaxWindowBits: .withoutValue).headerValue == "permessage-deflate; client_max_window_bits")
    }

    @Test(
        "agreements become per-direction settings",
        arguments: [
            (DeflateParameters(), PerMessageDeflateDirection(), PerMessageDeflateDirection()),
            (
                DeflateParameters(serverNoContextTakeover: true, serverMaxWindowBits: 10),
                PerMessageDeflateDirection(windowBits: 10, noContextTakeover: true), PerMessageDeflateDirection()
            ),
            (
                DeflateParameters(clientNoContextTakeover: true, clientMaxWindowBits: .value(9)),
                PerMessageDeflateDirection(), PerMessageDeflateDirection(windowBits: 9, noContextTakeover: true)
            ),
            (DeflateParameters(clientMaxWindowBits: .withoutValue), PerMessageDeflateDirection(), PerMessageDeflateDirection()),
        ])
    func directions(parameters: DeflateParameters, serverToClient: PerMessageDeflateDirection, clientToServer: PerMessageDeflateDirection) {
        #expect(parameters.serverToClient == serverToClient)
        #expect(parameters.clientToServer == clientToServer)
    }

    // MARK: Client offer

    @Test(
        "a client's configuration becomes its offer",
        arguments: [
            (PerMessageDeflateConfiguration(), "permessage-deflate; client_max_window_bits"),
            (PerMessageDeflateConfiguration(clientMaxWindowBits: 12), "permessage-deflate; client_max_window_bits=12"),
            (
                PerMessageDeflateConfiguration(serverMaxWindowBits: 10),
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
            ),
            (
                PerMessageDeflateConfiguration(serverNoContextTakeover: true, clientNoContextTakeover: true),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
            ),
        ])
    func clientOffer(configuration: PerMessageDeflateConfiguration, expected: String) {
        #expect(configuration.clientOffer.headerValue == expected)
    }

    // MARK: Server side (§7.1.1.x, §7.1.2.x)

    @Test(
        "a server answers the first acceptable offer",
        arguments: [
            // (offers, server configuration, response or nil to decline)
            ("permessage-deflate", PerMessageDeflateConfiguration(), "permessage-deflate"),
            ("permessage-deflate; client_max_window_bits", PerMessageDeflateConfiguration(), "permessage-deflate"),
            // §7.1.2.2: an offered value is a promise; answering with it saves memory.
            (
                "permessage-deflate; client_max_window_bits=10", PerMessageDeflateConfiguration(),
                "permessage-deflate; client_max_window_bits=10"
            ),
            (
                "permessage-deflate; client_max_window_bits", PerMessageDeflateConfiguration(clientMaxWindowBits: 12),
                "permessage-deflate; client_max_window_bits=12"
            ),
            (
                "permessage-deflate; client_max_window_bits=10", PerMessageDeflateConfiguration(clientMaxWindowBits: 12),
                "permessage-deflate; client_max_window_bits=10"
            ),
            (
                "permessage-deflate; client_max_window_bits=14", PerMessageDeflateConfiguration(clientMaxWindowBits: 12),
                "permessage-deflate; client_max_window_bits=12"
            ),
            // §7.1.2.2: without the parameter in the offer the server cannot limit the client, so it declines.
            ("permessage-deflate", PerMessageDeflateConfiguration(clientMaxWindowBits: 12), nil),
            (
                "permessage-deflate, permessage-deflate; client_max_window_bits",
                PerMessageDeflateConfiguration(clientMaxWindowBits: 12), "permessage-deflate; client_max_window_bits=12"
            ),
            // §7.1.2.1: an offered server_max_window_bits is answered with the same or smaller value.
            (
                "permessage-deflate; server_max_window_bits=10", PerMessageDeflateConfiguration(),
                "permessage-deflate; server_max_window_bits=10"
            ),
            (
                "permessage-deflate; server_max_window_bits=8", PerMessageDeflateConfiguration(),
                "permessage-deflate; server_max_window_bits=8"
            ),
            (
                "permessage-deflate; server_max_window_bits=15", PerMessageDeflateConfiguration(),
                "permessage-deflate; server_max_window_bits=15"
            ),
            (
                "permessage-deflate; server_max_window_bits=13", PerMessageDeflateConfiguration(serverMaxWindowBits: 11),
                "permessage-deflate; server_max_window_bits=11"
            ),
            (
                "permessage-deflate; server_max_window_bits=9", PerMessageDeflateConfiguration(serverMaxWindowBits: 11),
                "permessage-deflate; server_max_window_bits=9"
            ),
            (
                "permessage-deflate", PerMessageDeflateConfiguration(serverMaxWindowBits: 11),
                "permessage-deflate; server_max_window_bits=11"
            ),
            // §7.1.1.1: server_no_context_takeover is echoed, and may be added.
            (
                "permessage-deflate; server_no_context_takeover", PerMessageDeflateConfiguration(),
                "permessage-deflate; server_no_context_takeover"
            ),
            (
                "permessage-deflate", PerMessageDeflateConfiguration(serverNoContextTakeover: true),
                "permessage-deflate; server_no_context_takeover"
            ),
            // §7.1.1.2: client_no_context_takeover is echoed, and may be imposed.
            (
                "permessage-deflate; client_no_context_takeover", PerMessageDeflateConfiguration(),
                "permessage-deflate; client_no_context_takeover"
            ),
            (
                "permessage-deflate", PerMessageDeflateConfiguration(clientNoContextTakeover: true),
                "permessage-deflate; client_no_context_takeover"
            ),
            // §7.1: offers with unknown or repeated parameters or bad values are declined; the next is tried.
            ("permessage-deflate; foo, permessage-deflate", PerMessageDeflateConfiguration(), "permessage-deflate"),
            (
                "permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits=9",
                PerMessageDeflateConfiguration(), "permessage-deflate; client_max_window_bits=9"
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover", PerMessageDeflateConfiguration(),
                nil
            ),
            ("permessage-deflate; server_max_window_bits", PerMessageDeflateConfiguration(), nil),
            ("permessage-deflate; client_no_context_takeover=yes", PerMessageDeflateConfiguration(), nil),
            // Other extensions are not ours to answer.
            (
                "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9", PerMessageDeflateConfiguration(),
                "permessage-deflate; client_max_window_bits=9"
            ),
            ("x-webkit-deflate-frame", PerMessageDeflateConfiguration(), nil),
        ] as [(String, PerMessageDeflateConfiguration, String?)])
    func serverNegotiation(offers: String, configuration: PerMessageDeflateConfiguration, expected: String?) throws {
        let agreement = configuration.negotiate(offers: try WebSocketExtensionHeader.parse(offers))
        #expect(agreement?.headerValue == expected)
    }

    @Test("what browsers offer is accepted with the server's limits")
    func browserOffer() throws {
        let offers = try WebSocketExtensionHeader.parse("permessage-deflate; client_max_window_bits")
        let agreement = try #require(
            PerMessageDeflateConfiguration(serverMaxWindowBits: 12, clientMaxWindowBits: 10).negotiate(offers: offers))
        #expect(agreement.headerValue == "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10")
        #expect(agreement.serverToClient == PerMessageDeflateDirection(windowBits: 12))
        #expect(agreement.clientToServer == PerMessageDeflateDirection(windowBits: 10))
    }

    // MARK: Client side (§7.1.1.x, §7.1.2.x)

    @Test(
        "a client accepts a response that answers its offer",
        arguments: [
            // (offer, response, agreement)
            ("permessage-deflate; client_max_window_bits", "permessage-deflate", "permessage-deflate"),
            (
                "permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=10",
                "permessage-deflate; client_max_window_bits=10"
            ),
            // §7.1.2.2: an offered value holds even if the server answers with more, or nothing.
            (
                "permessage-deflate; client_max_window_bits=10", "permessage-deflate",
                "permessage-deflate; client_max_window_bits=10"
            ),
            (
                "permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=12",
                "permessage-deflate; client_max_window_bits=10"
            ),
            (
                "permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=9",
                "permessage-deflate; client_max_window_bits=9"
            ),
            // §7.1.2.1: the same or a smaller server window, or any if none was offered.
            (
                "permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10",
                "permessage-deflate; server_max_window_bits=10"
            ),
            (
                "permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=9",
                "permessage-deflate; server_max_window_bits=9"
            ),
            ("permessage-deflate", "permessage-deflate; server_max_window_bits=9", "permessage-deflate; server_max_window_bits=9"),
            // §7.1.1.1: echoed, or added by the server.
            (
                "permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover",
                "permessage-deflate; server_no_context_takeover"
            ),
            ("permessage-deflate", "permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"),
            // §7.1.1.2: the client keeps its own promise whatever the server says.
            ("permessage-deflate; client_no_context_takeover", "permessage-deflate", "permessage-deflate; client_no_context_takeover"),
            ("permessage-deflate", "permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"),
        ])
    func clientAccepts(offer: String, response: String, expected: String) throws {
        let sent = try DeflateParameters(element(offer))
        #expect(try sent.validateResponse(element(response)).headerValue == expected)
    }

    @Test(
        "a client fails a response that does not answer its offer",
        arguments: [
            // §7.1.2.2: not offered, or without a value.
            ("permessage-deflate", "permessage-deflate; client_max_window_bits=10", PerMessageDeflateNegotiationError.Rule.unsupportedConfiguration),
            ("permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits", .invalidValue),
            // §7.1.2.1: missing, or larger than offered.
            ("permessage-deflate; server_max_window_bits=10", "permessage-deflate", .unsupportedConfiguration),
            ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=11", .unsupportedConfiguration),
            // §7.1.1.1: not echoed.
            ("permessage-deflate; server_no_context_takeover", "permessage-deflate", .unsupportedConfiguration),
            // §7.1: unknown, repeated, bad values.
            ("permessage-deflate", "permessage-deflate; foo", .unknownParameter),
            ("permessage-deflate", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", .duplicateParameter),
            ("permessage-deflate", "permessage-deflate; server_max_window_bits=7", .invalidValue),
            ("permessage-deflate", "permessage-deflate; server_no_context_takeover=x", .invalidValue),
            ("permessage-deflate", "x-webkit-deflate-frame", .otherExtension),
        ])
    func clientFails(offer: String, response: String, rule: PerMessageDeflateNegotiationError.Rule) throws {
        let sent = try DeflateParameters(element(offer))
        let error = negotiationError { _ = try sent.validateResponse(element(response)) }
        #expect(error?.rule == rule)
    }

    // MARK: End to end

    @Test(
        "client offer, server answer and client check agree, and messages flow both ways",
        arguments: [
            (PerMessageDeflateConfiguration(), PerMessageDeflateConfiguration()),
            (PerMessageDeflateConfiguration(serverMaxWindowBits: 9), PerMessageDeflateConfiguration(clientMaxWindowBits: 8)),
            (
                PerMessageDeflateConfiguration(clientMaxWindowBits: 11, clientNoContextTakeover: true),
                PerMessageDeflateConfiguration(serverMaxWindowBits: 10, serverNoContextTakeover: true)
            ),
        ])
    func endToEnd(client: PerMessageDeflateConfiguration, server: PerMessageDeflateConfiguration) throws {
        let offer = client.clientOffer
        let serverAgreement = try #require(server.negotiate(offers: try WebSocketExtensionHeader.parse(offer.headerValue)))
        let response = try #require(try WebSocketExtensionHeader.parse(serverAgreement.headerValue).first)
        let clientAgreement = try offer.validateResponse(response)
        #expect(clientAgreement.serverToClient == serverAgreement.serverToClient)
        #expect(clientAgreement.clientToServer == serverAgreement.clientToServer)

        let serverSends = PerMessageDeflateCompressor(serverAgreement.serverToClient)
        let clientReceives = PerMessageDeflateDecompressor(clientAgreement.serverToClient)
        let clientSends = PerMessageDeflateCompressor(clientAgreement.clientToServer)
        let serverReceives = PerMessageDeflateDecompressor(serverAgreement.clientToServer)
        for message in deflateSampleMessages() {
            #expect(try clientReceives.inflateMessage(serverSends.compress(message)) == message)
            #expect(try serverReceives.inflateMessage(clientSends.compress(message)) == message)
        }
    }
}
