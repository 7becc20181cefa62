import Testing
import WebSocketCodec

// The opening handshake (RFC 6455 §4) and the Sec-WebSocket-Extensions grammar (§9.1). Helpers here are
// private so they cannot collide with those of other suites in this target.

private typealias Headers = [(name: String, value: String)]

/// The client handshake of RFC 6455 §1.2.
private let exampleRequestHeaders: Headers = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Origin", "http://example.com"),
    ("Sec-WebSocket-Protocol", "chat, superchat"),
    ("Sec-WebSocket-Version", "13"),
]

/// The server handshake of RFC 6455 §1.3 / §1.2.
private let exampleResponseHeaders: Headers = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ("Sec-WebSocket-Protocol", "chat"),
]

private func replacing(_ headers: Headers, _ name: String, with value: String?) -> Headers {
    var result = headers.filter { $0.name.lowercased() != name.lowercased() }
    if let value { result.append((name, value)) }
    return result
}

private func adding(_ headers: Headers, _ name: String, _ value: String) -> Headers {
    headers + [(name, value)]
}

private func offer(_ name: String, _ parameters: [(String, String?)] = []) -> WebSocketExtensionOffer {
    WebSocketExtensionOffer(name: name, parameters: parameters.map { WebSocketExtensionOffer.Parameter($0.0, $0.1) })
}

/// The error `body` throws, or nil if it returns. Any other error is recorded as a test failure.
private func handshakeError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> WebSocketHandshakeError? {
    do {
        try body()
        return nil
    } catch let error as WebSocketHandshakeError {
        return error
    } catch {
        Issue.record("expected a WebSocketHandshakeError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The error `body` throws, or nil if it returns. Any other error is recorded as a test failure.
private func headerError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> WebSocketExtensionHeaderError? {
    do {
        try body()
        return nil
    } catch let error as WebSocketExtensionHeaderError {
        return error
    } catch {
        Issue.record("expected a WebSocketExtensionHeaderError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Returns fixed words, so the key it produces is known in advance.
private struct FixedWordsGenerator: RandomNumberGenerator {
    var words: [UInt64]
    mutating func next() -> UInt64 { words.removeFirst() }
}

@Suite("opening handshake")
struct HandshakeTests {
    // MARK: Keys (§1.3, §4.1, §4.2.2)

    @Test("§1.3: the example key's accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    func exampleAcceptValue() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(WebSocketHandshake.guid == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    }

    @Test("a key is 16 bytes from the generator, in order, base64-encoded")
    func keyFromGenerator() {
        var generator = FixedWordsGenerator(words: [0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908])
        let key = WebSocketHandshake.randomKey(using: &generator)
        #expect(key == "AAECAwQFBgcICQoLDA0ODw==")
        #expect(generator.words.isEmpty)
        #expect(WebSocketHandshake.isValidKey(key))
    }

    @Test("system keys are valid and differ")
    func systemKeys() {
        let keys = (0..<8).map { _ in WebSocketHandshake.randomKey() }
        #expect(keys.allSatisfy(WebSocketHandshake.isValidKey))
        #expect(Set(keys).count == keys.count)
    }

    @Test(
        "key validity: base64 that decodes to exactly 16 bytes",
        arguments: [
            ("dGhlIHNhbXBsZSBub25jZQ==", true),
            ("AAECAwQFBgcICQoLDA0ODw==", true),
            ("/////////////////////w==", true),
            ("dGhlIHNhbXBsZSBub25jZQ", false),  // padding missing
            ("dGhlIHNhbXBsZSBub25jZQ=", false),  // padding short
            ("AAAAAAAAAAAAAAAA", false),  // 12 bytes
            ("AAAAAAAAAAAAAAAAAAAAAAAA", false),  // 18 bytes
            ("dGhlIHNhbXBsZSBub25jZQ==AAAA", false),  // 19 bytes
            (" dGhlIHNhbXBsZSBub25jZQ==", false),
            ("dGhlIHNhbXBsZSBub25jZQ!=", false),
            ("dGhlIHNhbXBsZSBub2=jZQ==", false),  // padding in the middle
            ("dGhlIHNhbXBsZSBub25jZ===", false),
            ("", false),
        ])
    func keyValidity(key: String, valid: Bool) {
        #expect(WebSocketHandshake.isValidKey(key) == valid)
    }

    // MARK: Requests (§4.2.1)

    @Test("§1.2: the example request is valid")
    func exampleRequest() throws {
        let request = try WebSocketUpgradeRequest.validate(
            method: "GET", target: "/chat", version: "HTTP/1.1", headers: exampleRequestHeaders)
        #expect(request.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(request.subprotocols == ["chat", "superchat"])
        #expect(request.extensions == [])
        #expect(request.origin == "http://example.com")
        #expect(request.host == "server.example.com")
        #expect(request.path == "/chat")
        #expect(request.query == nil)
    }

    @Test("names are case-insensitive, lists may span lines, tokens may be mixed case")
    func tolerantRequest() throws {
        let headers: Headers = [
            ("host", "example.com:8080"),
            ("UPGRADE", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== "),
            ("Sec-WebSocket-Protocol", "chat"),
            ("sec-websocket-protocol", "superchat, , v2.chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ("Sec-WebSocket-Extensions", "x-test; mode=\"fast\""),
            ("SEC-WEBSOCKET-VERSION", "13"),
        ]
        let request = try WebSocketUpgradeRequest.validate(
            method: "GET", target: "ws://example.com:8080/room/1?user=ann&x=1", version: "HTTP/1.1", headers: headers)
        #expect(request.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(request.subprotocols == ["chat", "superchat", "v2.chat"])
        #expect(
            request.extensions == [
                WebSocketExtensionOffer(name: "permessage-deflate", parameters: [.init("client_max_window_bits")]),
                WebSocketExtensionOffer(name: "x-test", parameters: [.init("mode", "fast")]),
            ])
        #expect(request.origin == nil)
        #expect(request.host == "example.com:8080")
        #expect(request.path == "/room/1")
        #expect(request.query == "user=ann&x=1")
    }

    @Test(
        "request targets become path and query",
        arguments: [
            ("/", "/", nil),
            ("/chat?", "/chat", ""),
            ("/?a=b", "/", "a=b"),
            ("wss://example.com", "/", nil),
            ("http://example.com?x", "/", "x"),
            ("WS://example.com/a/b", "/a/b", nil),
        ] as [(String, String, String?)])
    func targets(target: String, path: String, query: String?) throws {
        let request = try WebSocketUpgradeRequest.validate(
            method: "GET", target: target, version: "HTTP/1.1", headers: exampleRequestHeaders)
        #expect(request.path == path)
        #expect(request.query == query)
    }

    @Test("later HTTP versions are accepted", arguments: ["HTTP/1.1", "HTTP/1.2", "HTTP/2", "HTTP/2.0", "HTTP/3.0"])
    func laterVersions(version: String) throws {
        _ = try WebSocketUpgradeRequest.validate(method: "GET", target: "/", version: version, headers: exampleRequestHeaders)
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        var label: String
        var method = "GET"
        var target = "/chat"
        var version = "HTTP/1.1"
        var headers: [(name: String, value: String)]
        var rule: WebSocketHandshakeError.Rule
        var status: Int = 400
        var message: String? = nil

        var testDescription: String { label }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(label: "POST", method: "POST", headers: exampleRequestHeaders, rule: .methodNotGET, message: "method must be GET, got POST"),
        BadRequest(label: "lower-case get", method: "get", headers: exampleRequestHeaders, rule: .methodNotGET),
        BadRequest(label: "HTTP/1.0", version: "HTTP/1.0", headers: exampleRequestHeaders, rule: .unsupportedHTTPVersion),
        BadRequest(label: "HTTP/1", version: "HTTP/1", headers: exampleRequestHeaders, rule: .unsupportedHTTPVersion),
        BadRequest(label: "HTTP/0.9", version: "HTTP/0.9", headers: exampleRequestHeaders, rule: .unsupportedHTTPVersion),
        BadRequest(label: "http/1.1", version: "http/1.1", headers: exampleRequestHeaders, rule: .unsupportedHTTPVersion),
        BadRequest(label: "HTTP/1.x", version: "HTTP/1.x", headers: exampleRequestHeaders, rule: .unsupportedHTTPVersion),
        BadRequest(label: "asterisk target", target: "*", headers: exampleRequestHeaders, rule: .invalidTarget),
        BadRequest(label: "relative target", target: "chat", headers: exampleRequestHeaders, rule: .invalidTarget),
        BadRequest(label: "fragment", target: "/chat#top", headers: exampleRequestHeaders, rule: .invalidTarget),
        BadRequest(label: "ftp target", target: "ftp://example.com/chat", headers: exampleRequestHeaders, rule: .invalidTarget),
        BadRequest(label: "no authority", target: "ws:///chat", headers: exampleRequestHeaders, rule: .invalidTarget),
        BadRequest(label: "empty target", target: "", headers: exampleRequestHeaders, rule: .invalidTarget),
        BadRequest(label: "no Host", headers: replacing(exampleRequestHeaders, "Host", with: nil), rule: .missingHost, message: "missing Host header"),
        BadRequest(label: "empty Host", headers: replacing(exampleRequestHeaders, "Host", with: " "), rule: .missingHost),
        BadRequest(label: "two Hosts", headers: adding(exampleRequestHeaders, "host", "evil.example"), rule: .duplicateHeader),
        BadRequest(label: "no Upgrade", headers: replacing(exampleRequestHeaders, "Upgrade", with: nil), rule: .missingUpgrade),
        BadRequest(label: "Upgrade h2c", headers: replacing(exampleRequestHeaders, "Upgrade", with: "h2c"), rule: .upgradeNotWebSocket),
        BadRequest(label: "Upgrade websockets", headers: replacing(exampleRequestHeaders, "Upgrade", with: "websockets"), rule: .upgradeNotWebSocket),
        BadRequest(label: "no Connection", headers: replacing(exampleRequestHeaders, "Connection", with: nil), rule: .missingConnection),
        BadRequest(
            label: "Connection keep-alive", headers: replacing(exampleRequestHeaders, "Connection", with: "keep-alive"),
            rule: .connectionWithoutUpgrade),
        BadRequest(
            label: "Connection upgraded (not the token)", headers: replacing(exampleRequestHeaders, "Connection", with: "upgraded, close"),
            rule: .connectionWithoutUpgrade),
        BadRequest(
            label: "no version", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Version", with: nil), rule: .missingVersion,
            status: 426, message: "missing Sec-WebSocket-Version header"),
        BadRequest(
            label: "version 8", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Version", with: "8"), rule: .unsupportedVersion,
            status: 426, message: "Sec-WebSocket-Version must be 13, got 8"),
        BadRequest(
            label: "version list", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Version", with: "13, 8"),
            rule: .unsupportedVersion, status: 426),
        BadRequest(label: "two versions", headers: adding(exampleRequestHeaders, "Sec-WebSocket-Version", "13"), rule: .duplicateHeader),
        BadRequest(
            label: "no key", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Key", with: nil), rule: .missingKey,
            message: "missing Sec-WebSocket-Key header"),
        BadRequest(
            label: "12-byte key", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Key", with: "AAAAAAAAAAAAAAAA"),
            rule: .invalidKey, message: "Sec-WebSocket-Key must be base64 of 16 bytes, got 12 bytes"),
        BadRequest(
            label: "key not base64", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Key", with: "not a key at all!!!!!!!!"),
            rule: .invalidKey),
        BadRequest(
            label: "empty key", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Key", with: ""), rule: .invalidKey,
            message: "got 0 bytes"),
        BadRequest(
            label: "two keys", headers: adding(exampleRequestHeaders, "Sec-WebSocket-Key", "AAECAwQFBgcICQoLDA0ODw=="),
            rule: .duplicateHeader),
        BadRequest(
            label: "dangling ';' in extensions", headers: adding(exampleRequestHeaders, "Sec-WebSocket-Extensions", "permessage-deflate;"),
            rule: .invalidExtensions),
        BadRequest(
            label: "quoted non-token in extensions",
            headers: adding(exampleRequestHeaders, "Sec-WebSocket-Extensions", "permessage-deflate; x=\"a b\""), rule: .invalidExtensions),
        BadRequest(
            label: "subprotocol with '/'", headers: replacing(exampleRequestHeaders, "Sec-WebSocket-Protocol", with: "chat, v1/chat"),
            rule: .invalidSubprotocol),
    ]

    @Test("every request rule is enforced", arguments: HandshakeTests.badRequests)
    func badRequest(_ bad: BadRequest) {
        let error = handshakeError {
            _ = try WebSocketUpgradeRequest.validate(method: bad.method, target: bad.target, version: bad.version, headers: bad.headers)
        }
        #expect(error?.rule == bad.rule)
        #expect(error?.httpStatus == bad.status)
        if let message = bad.message {
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
        }
        if bad.status == 426 {
            #expect(error?.rejectionHeaders.map(\.name) == ["Sec-WebSocket-Version"])
            #expect(error?.rejectionHeaders.map(\.value) == ["13"])
        } else {
            #expect(error?.rejectionHeaders.isEmpty == true)
        }
    }

    @Test("every request rule has a case in the table")
    func requestTableCoversRules() {
        let responseOnly: Set<WebSocketHandshakeError.Rule> = [
            .unexpectedStatus, .missingAccept, .acceptMismatch, .unofferedExtension, .unofferedSubprotocol, .multipleSubprotocols,
        ]
        let covered = Set(Self.badRequests.map(\.rule))
        #expect(covered == Set(WebSocketHandshakeError.Rule.allCases).subtracting(responseOnly))
    }

    // MARK: Server answer (§4.2.2)

    @Test("the 101 headers carry the accept value and the choices, and satisfy a client")
    func switchingProtocolsHeaders() throws {
        let request = try WebSocketUpgradeRequest.validate(
            method: "GET", target: "/chat", version: "HTTP/1.1",
            headers: adding(exampleRequestHeaders, "Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"))
        let headers = request.responseHeaders(subprotocol: "chat", extensions: "permessage-deflate; client_max_window_bits=10")
        #expect(headers.map(\.name) == ["Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"])
        #expect(headers.map(\.value) == ["websocket", "Upgrade", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "chat", "permessage-deflate; client_max_window_bits=10"])

        let response = try WebSocketUpgradeResponse.validate(
            status: 101, headers: headers, sentKey: request.key, offeredSubprotocols: request.subprotocols,
            offeredExtensions: request.extensions)
        #expect(response.subprotocol == "chat")
        #expect(response.extensions == [WebSocketExtensionOffer(name: "permessage-deflate", parameters: [.init("client_max_window_bits", "10")])])

        let plain = request.responseHeaders()
        #expect(plain.map(\.name) == ["Upgrade", "Connection", "Sec-WebSocket-Accept"])
    }

    // MARK: Responses (§4.1)

    @Test("§1.3: the example response is valid")
    func exampleResponse() throws {
        let response = try WebSocketUpgradeResponse.validate(
            status: 101, headers: exampleResponseHeaders, sentKey: "dGhlIHNhbXBsZSBub25jZQ==",
            offeredSubprotocols: ["chat", "superchat"])
        #expect(response.subprotocol == "chat")
        #expect(response.extensions == [])

        let noProtocol = try WebSocketUpgradeResponse.validate(
            status: 101, headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Protocol", with: nil),
            sentKey: "dGhlIHNhbXBsZSBub25jZQ==", offeredSubprotocols: ["chat"])
        #expect(noProtocol.subprotocol == nil)
    }

    struct BadResponse: Sendable, CustomTestStringConvertible {
        var label: String
        var status = 101
        var headers: [(name: String, value: String)]
        var rule: WebSocketHandshakeError.Rule
        var message: String? = nil

        var testDescription: String { label }
    }

    static let badResponses: [BadResponse] = [
        BadResponse(label: "status 200", status: 200, headers: exampleResponseHeaders, rule: .unexpectedStatus, message: "got 200"),
        BadResponse(label: "status 426", status: 426, headers: exampleResponseHeaders, rule: .unexpectedStatus),
        BadResponse(label: "no Upgrade", headers: replacing(exampleResponseHeaders, "Upgrade", with: nil), rule: .missingUpgrade),
        BadResponse(label: "Upgrade h2c", headers: replacing(exampleResponseHeaders, "Upgrade", with: "h2c"), rule: .upgradeNotWebSocket),
        BadResponse(
            label: "Upgrade list", headers: replacing(exampleResponseHeaders, "Upgrade", with: "websocket, h2c"), rule: .upgradeNotWebSocket),
        BadResponse(label: "no Connection", headers: replacing(exampleResponseHeaders, "Connection", with: nil), rule: .missingConnection),
        BadResponse(
            label: "Connection close", headers: replacing(exampleResponseHeaders, "Connection", with: "close"), rule: .connectionWithoutUpgrade),
        BadResponse(label: "no accept", headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Accept", with: nil), rule: .missingAccept),
        BadResponse(
            label: "wrong accept", headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Accept", with: "dGhlIHNhbXBsZSBub25jZQ=="),
            rule: .acceptMismatch, message: "expected s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        BadResponse(
            label: "two accepts", headers: adding(exampleResponseHeaders, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            rule: .duplicateHeader),
        BadResponse(
            label: "unoffered extension", headers: adding(exampleResponseHeaders, "Sec-WebSocket-Extensions", "x-webkit-deflate-frame"),
            rule: .unofferedExtension, message: "x-webkit-deflate-frame"),
        BadResponse(
            label: "malformed extensions", headers: adding(exampleResponseHeaders, "Sec-WebSocket-Extensions", "permessage-deflate; =1"),
            rule: .invalidExtensions),
        BadResponse(
            label: "unoffered subprotocol", headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Protocol", with: "mqtt"),
            rule: .unofferedSubprotocol, message: "mqtt"),
        BadResponse(
            label: "subprotocol in other case", headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Protocol", with: "Chat"),
            rule: .unofferedSubprotocol),
        BadResponse(
            label: "empty subprotocol", headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Protocol", with: ""),
            rule: .unofferedSubprotocol),
        BadResponse(
            label: "two subprotocols in a list", headers: replacing(exampleResponseHeaders, "Sec-WebSocket-Protocol", with: "chat, superchat"),
            rule: .multipleSubprotocols),
        BadResponse(
            label: "two subprotocol headers", headers: adding(exampleResponseHeaders, "Sec-WebSocket-Protocol", "chat"),
            rule: .multipleSubprotocols),
    ]

    @Test("every response rule is enforced", arguments: HandshakeTests.badResponses)
    func badResponse(_ bad: BadResponse) {
        let error = handshakeError {
            _ = try WebSocketUpgradeResponse.validate(
                status: bad.status, headers: bad.headers, sentKey: "dGhlIHNhbXBsZSBub25jZQ==",
                offeredSubprotocols: ["chat", "superchat"],
                offeredExtensions: [WebSocketExtensionOffer(name: "permessage-deflate")])
        }
        #expect(error?.rule == bad.rule)
        #expect(error != nil && error?.httpStatus == nil, "a client has nobody to answer")
        if let message = bad.message {
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
        }
    }

    @Test("a subprotocol when none was offered is refused")
    func subprotocolWithoutOffer() {
        let error = handshakeError {
            _ = try WebSocketUpgradeResponse.validate(status: 101, headers: exampleResponseHeaders, sentKey: "dGhlIHNhbXBsZSBub25jZQ==")
        }
        #expect(error?.rule == .unofferedSubprotocol)
        #expect(error?.description.contains("RFC 6455 §4.1") == true)
    }
}

extension HandshakeTests {
    @Suite("Sec-WebSocket-Extensions")
    struct ExtensionHeader {
        @Test(
            "well-formed values parse",
            arguments: [
                (["permessage-deflate"], [offer("permessage-deflate")]),
                (["permessage-deflate; client_max_window_bits"], [offer("permessage-deflate", [("client_max_window_bits", nil)])]),
                (["permessage-deflate;client_max_window_bits=10"], [offer("permessage-deflate", [("client_max_window_bits", "10")])]),
                (
                    ["  permessage-deflate ;  server_max_window_bits = 10 ;client_no_context_takeover , x-foo  "],
                    [
                        offer("permessage-deflate", [("server_max_window_bits", "10"), ("client_no_context_takeover", nil)]),
                        offer("x-foo"),
                    ]
                ),
                (["\tfoo;\tbar=baz\t"], [offer("foo", [("bar", "baz")])]),
                (["foo; bar=\"baz\""], [offer("foo", [("bar", "baz")])]),
                (["foo; bar=\"b\\az\""], [offer("foo", [("bar", "baz")])]),  // quoted-pair
                (["foo; bar=\"10\", foo"], [offer("foo", [("bar", "10")]), offer("foo")]),
                (["a, , b,"], [offer("a"), offer("b")]),  // empty elements are skipped
                (["a; x; x=1"], [offer("a", [("x", nil), ("x", "1")])]),  // duplicates are kept for the extension to judge
                (["a; x=1", "", "b"], [offer("a", [("x", "1")]), offer("b")]),  // several header lines
            ])
        func wellFormed(values: [String], expected: [WebSocketExtensionOffer]) throws {
            #expect(try WebSocketExtensionHeader.parse(values) == expected)
        }

        @Test(
            "malformed values are refused with the reason",
            arguments: [
                ("", WebSocketExtensionHeaderError.Rule.empty),
                (" , ,", .empty),
                (";", .expectedExtensionName),
                ("=x", .expectedExtensionName),
                ("a;", .expectedParameterName),
                ("a; =1", .expectedParameterName),
                ("a;; b", .expectedParameterName),
                ("a; b=", .expectedParameterValue),
                ("a; b=,c", .expectedParameterValue),
                ("a; b=\"c", .unterminatedQuotedString),
                ("a; b=\"c\\", .unterminatedQuotedString),
                ("a; b=\"c d\"", .quotedValueNotToken),
                ("a; b=\"\"", .quotedValueNotToken),
                ("a; b=\"c,d\"", .quotedValueNotToken),
                ("a b", .unexpectedCharacter),
                ("a; b=c d", .unexpectedCharacter),
                ("a; b=c=d", .unexpectedCharacter),
                ("a/b", .unexpectedCharacter),
                ("a; b=\"c\"d", .unexpectedCharacter),
            ])
        func malformed(value: String, rule: WebSocketExtensionHeaderError.Rule) {
            let error = headerError { _ = try WebSocketExtensionHeader.parse(value) }
            #expect(error?.rule == rule)
        }

        @Test("errors say where")
        func errorPosition() {
            let error = headerError { _ = try WebSocketExtensionHeader.parse("permessage-deflate; x=\"a b\"") }
            #expect(error?.offset == 22)
            #expect(error?.message == "quoted value of x is not a token once unquoted at byte 22 of \"permessage-deflate; x=\"a b\"\", found '\"'")
        }

        @Test("serialising writes what parsing reads, quoting what is not a token")
        func serialise() throws {
            let offers = [
                offer("permessage-deflate", [("client_no_context_takeover", nil), ("server_max_window_bits", "10")]),
                offer("x-foo"),
            ]
            let text = WebSocketExtensionHeader.serialize(offers)
            #expect(text == "permessage-deflate; client_no_context_takeover; server_max_window_bits=10, x-foo")
            #expect(try WebSocketExtensionHeader.parse(text) == offers)
            #expect(offer("a", [("b", "c \"d\"")]).description == "a; b=\"c \\\"d\\\"\"")
        }
    }
}
