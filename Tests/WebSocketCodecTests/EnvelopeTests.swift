import Foundation
import Testing
@testable import WebSocketCodec

// Helpers here carry an `Envelope` prefix so they cannot collide with those of other suites in this target.

/// A text that must fail to parse, and how.
struct EnvelopeErrorCase: Sendable, CustomTestStringConvertible {
    let text: String
    let code: WebSocketEnvelopeError.Code
    let path: String?
    /// A piece of the message that pins down the rule (and the place).
    let says: String

    init(_ text: String, _ code: WebSocketEnvelopeError.Code, path: String? = nil, says: String) {
        self.text = text
        self.code = code
        self.path = path
        self.says = says
    }

    var testDescription: String { "\(code) \(text.prefix(60))" }
}

enum EnvelopeTest {
    /// The envelope error `body` throws; nil (and an issue, for any other error) when it throws none.
    static func error(_ body: () throws -> Void) -> WebSocketEnvelopeError? {
        do {
            try body()
            return nil
        } catch let error as WebSocketEnvelopeError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    static func readJSON(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        let result = Array(text.utf8).withUnsafeBytes { raw in
            Result { () throws(JSONSyntaxError) in try JSONReader.parse(raw) }
        }
        return try result.get()
    }

    static func date(_ text: String) -> Date? {
        guard case .success(let date) = EnvelopeTimestamp.parse(text) else { return nil }
        return date
    }

    /// Seconds since 1970 of a UTC date and time, computed independently with Foundation's calendar.
    static func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> Double {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = calendar.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s))!
        return date.timeIntervalSince1970
    }
}

@Suite("WebSocketEnvelope")
struct EnvelopeTests {
    static let full = """
        {"type": "message", "payload": {"room": "r1", "content": "hi", "z": 1, "a": [true, null, 2.5]},
         "metadata": {"message_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "timestamp": "2024-05-01T12:34:56.789Z",
                      "correlation_id": "c-42", "client_id": "alice", "trace": {"hop": 3}},
         "version": 2}
        """

    // MARK: Parsing

    @Test("a full envelope: every member where it belongs")
    func parseFull() throws {
        let envelope = try WebSocketEnvelope.parse(Self.full)
        #expect(envelope.type == "message")
        #expect(envelope.envelopeType == .message)
        #expect(envelope.payload?["room"] == "r1")
        #expect(envelope.payload?["content"]?.stringValue == "hi")
        #expect(envelope.payload?["a"]?[0] == true)
        #expect(envelope.payload?["a"]?[1]?.isNull == true)
        #expect(envelope.payload?["a"]?[2]?.doubleValue == 2.5)
        #expect(envelope.payload?["a"]?[3] == nil)
        #expect(envelope.payload?.objectValue?.keys == ["room", "content", "z", "a"])
        #expect(envelope.messageID == "0f8fad5b-d9cb-469f-a165-70867728950e")
        #expect(envelope.correlationID == "c-42")
        #expect(envelope.clientID == "alice")
        #expect(envelope.metadata?.timestamp == "2024-05-01T12:34:56.789Z")
        let seconds = try #require(envelope.metadata?.date?.timeIntervalSince1970)
        #expect(abs(seconds - (EnvelopeTest.utc(2024, 5, 1, 12, 34, 56) + 0.789)) < 1e-6)
        #expect(envelope.metadata?.additionalFields == ["trace": ["hop": 3]])
        #expect(envelope.additionalFields == ["version": 2])
    }

    @Test("the same envelope from String, [UInt8] and a raw buffer")
    func parseEntryPoints() throws {
        let fromText = try WebSocketEnvelope.parse(Self.full)
        let bytes = Array(Self.full.utf8)
        #expect(try WebSocketEnvelope.parse(bytes) == fromText)
        let (parsed, prefiltered) = try bytes.withUnsafeBytes { raw throws in
            (try WebSocketEnvelope.parse(raw), try WebSocketEnvelope.parseIfEnvelope(raw))
        }
        #expect(parsed == fromText)
        #expect(prefiltered == fromText)
        #expect(try WebSocketEnvelope.parseIfEnvelope(bytes) == fromText)
    }

    @Test("the minimal envelope is just a type; null members count as absent")
    func minimal() throws {
        let envelope = try WebSocketEnvelope.parse(#"{"type":"ping"}"#)
        #expect(envelope == WebSocketEnvelope(type: "ping"))
        #expect(envelope.payload == nil)
        #expect(envelope.metadata == nil)
        let nulls = try WebSocketEnvelope.parse(
            #"{"type":"pong","payload":null,"metadata":{"message_id":null,"timestamp":null,"correlation_id":null}}"#)
        #expect(nulls.payload == nil)
        #expect(nulls.metadata == WebSocketEnvelopeMetadata())
        #expect(nulls.encoded() == #"{"type":"pong","metadata":{}}"#)
    }

    @Test("application-defined types pass, with whatever payload they like")
    func applicationTypes() throws {
        let envelope = try WebSocketEnvelope.parse(#"{"type":"game.move","payload":{"x":1,"y":[2]}}"#)
        #expect(envelope.type == "game.move")
        #expect(!envelope.envelopeType.isStandard)
        #expect(envelope.envelopeType.requiredPayloadFields.isEmpty)
    }

    // MARK: Errors

    static let errorCases: [EnvelopeErrorCase] = [
        // Not JSON, with the place reading stopped.
        EnvelopeErrorCase("hello", .notJSON, says: "unexpected 'h', expected a value at byte 0 (line 1, column 1)"),
        EnvelopeErrorCase("", .notJSON, says: "unexpected end of input, expected a value at byte 0"),
        EnvelopeErrorCase(#"{"type": "message",}"#, .notJSON,
                          says: "unexpected '}', expected a string for an object key at byte 19 (line 1, column 20)"),
        EnvelopeErrorCase(#"{"type" "message"}"#, .notJSON, says: "expected ':' after the object key \"type\" at byte 8"),
        EnvelopeErrorCase(#"{"type": "message""#, .notJSON, says: "unexpected end of input, expected ',' or '}' in an object at byte 18"),
        EnvelopeErrorCase("{\n  \"type\": \"ping\",\n  \"payload\": {\"n\": 01}\n}", .notJSON,
                          says: "a number must not have a leading zero at byte 40 (line 3, column 21)"),
        EnvelopeErrorCase(#"{"type": "ping"} x"#, .notJSON, says: "unexpected 'x' after the JSON value at byte 17"),
        EnvelopeErrorCase(#"{'type': 'ping'}"#, .notJSON, says: "unexpected ''', expected a string for an object key at byte 1"),
        EnvelopeErrorCase("{\"type\": \"a\tb\"}", .notJSON, says: "control character U+0009 in a string must be escaped at byte 11"),
        EnvelopeErrorCase(#"{"type": "\ud800"}"#, .notJSON, says: "unpaired surrogate \\uD800 in a string at byte 10"),
        EnvelopeErrorCase(#"{"type": "\q"}"#, .notJSON, says: "invalid escape '\\' followed by 'q' at byte 10"),
        EnvelopeErrorCase(#"{"type": "ping", "n": NaN}"#, .notJSON, says: "unexpected 'N', expected a value at byte 22"),
        EnvelopeErrorCase(#"{"type": "ping", "n": 1e999}"#, .notJSON, says: "the number 1e999 is too large for a 64-bit float at byte 22"),
        EnvelopeErrorCase(#"{"type": "ping", "n": tru}"#, .notJSON, says: "in a literal, expected true"),
        EnvelopeErrorCase(#"{"type": "ping", "n": [1,]}"#, .notJSON, says: "unexpected ']', expected a value at byte 25"),
        // Columns count characters: κόσμε (with U+1F79) is 11 bytes but 5 characters.
        EnvelopeErrorCase("{\"type\": \"\u{3BA}\u{1F79}\u{3C3}\u{3BC}\u{3B5}\" ", .notJSON,
                          says: "expected ',' or '}' in an object at byte 23 (line 1, column 18)"),
        EnvelopeErrorCase(String(repeating: "[", count: 300), .notJSON, says: "nesting deeper than 256 levels at byte 256"),

        // JSON, but not an envelope.
        EnvelopeErrorCase("[1, 2]", .notAnObject, says: "the top-level JSON value is array, not an object"),
        EnvelopeErrorCase(#""message""#, .notAnObject, says: "is string \"message\", not an object"),
        EnvelopeErrorCase("42", .notAnObject, says: "is number 42, not an object"),
        EnvelopeErrorCase("{}", .missingType, path: "type", says: "the object has no \"type\" member"),
        EnvelopeErrorCase(#"{"kind": "message"}"#, .missingType, path: "type", says: "no \"type\" member"),
        EnvelopeErrorCase(#"{"type": 5}"#, .invalidType, path: "type", says: "type must be a non-empty string, got number 5"),
        EnvelopeErrorCase(#"{"type": ""}"#, .invalidType, path: "type", says: "got string \"\""),
        EnvelopeErrorCase(#"{"type": null}"#, .invalidType, path: "type", says: "got null"),
        EnvelopeErrorCase(#"{"type": ["message"]}"#, .invalidType, path: "type", says: "got array"),
        EnvelopeErrorCase(#"{"type": "x", "payload": [1]}"#, .invalidPayload, path: "payload", says: "payload must be an object, got array"),
        EnvelopeErrorCase(#"{"type": "x", "payload": "hi"}"#, .invalidPayload, path: "payload", says: "got string \"hi\""),
        EnvelopeErrorCase(#"{"type": "x", "metadata": 1}"#, .invalidMetadata, path: "metadata", says: "metadata must be an object, got number 1"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"message_id": 5}}"#, .invalidMetadataField, path: "metadata.message_id",
                          says: "metadata.message_id must be a string, got number 5"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"correlation_id": true}}"#, .invalidMetadataField,
                          path: "metadata.correlation_id", says: "metadata.correlation_id must be a string, got boolean true"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"client_id": {}}}"#, .invalidMetadataField, path: "metadata.client_id",
                          says: "got object"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"timestamp": 1714566896}}"#, .invalidTimestamp, path: "metadata.timestamp",
                          says: "metadata.timestamp must be an ISO 8601 date-time string, got number 1714566896"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"timestamp": "yesterday"}}"#, .invalidTimestamp, path: "metadata.timestamp",
                          says: "metadata.timestamp \"yesterday\" is not an ISO 8601 date-time: expected 4 digits for the year, found 'y'"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"timestamp": "2023-02-29T00:00:00Z"}}"#, .invalidTimestamp,
                          path: "metadata.timestamp", says: "day 29 is out of range 1–28"),
        EnvelopeErrorCase(#"{"type": "x", "metadata": {"timestamp": "2024-05-01"}}"#, .invalidTimestamp, path: "metadata.timestamp",
                          says: "expected 'T' and a time after the date, found the end"),

        // The payload members of the standard types.
        EnvelopeErrorCase(#"{"type": "join_room"}"#, .missingPayloadField, path: "payload.room",
                          says: "type \"join_room\" requires payload.room (a non-empty string), but there is no payload"),
        EnvelopeErrorCase(#"{"type": "join_room", "payload": {}}"#, .missingPayloadField, path: "payload.room",
                          says: "type \"join_room\" requires payload.room (a non-empty string)"),
        EnvelopeErrorCase(#"{"type": "join_room", "payload": {"room": null}}"#, .missingPayloadField, path: "payload.room",
                          says: "requires payload.room"),
        EnvelopeErrorCase(#"{"type": "join_room", "payload": {"room": 7}}"#, .invalidPayloadField, path: "payload.room",
                          says: "payload.room must be a non-empty string for type \"join_room\", got number 7"),
        EnvelopeErrorCase(#"{"type": "leave_room", "payload": {"room": ""}}"#, .invalidPayloadField, path: "payload.room",
                          says: "payload.room must not be empty for type \"leave_room\""),
        EnvelopeErrorCase(#"{"type": "room_joined", "payload": {"name": "r1"}}"#, .missingPayloadField, path: "payload.room",
                          says: "type \"room_joined\" requires payload.room"),
        EnvelopeErrorCase(#"{"type": "message", "payload": {"content": "hi"}}"#, .missingPayloadField, path: "payload.room",
                          says: "type \"message\" requires payload.room"),
        EnvelopeErrorCase(#"{"type": "message", "payload": {"room": "r1"}}"#, .missingPayloadField, path: "payload.content",
                          says: "type \"message\" requires payload.content (a string)"),
        EnvelopeErrorCase(#"{"type": "message", "payload": {"room": "r1", "content": {"text": "hi"}}}"#, .invalidPayloadField,
                          path: "payload.content", says: "payload.content must be a string for type \"message\", got object"),
        EnvelopeErrorCase(#"{"type": "auth", "payload": {}}"#, .missingPayloadField, path: "payload.token",
                          says: "type \"auth\" requires payload.token (a non-empty string)"),
        EnvelopeErrorCase(#"{"type": "auth", "payload": {"token": ""}}"#, .invalidPayloadField, path: "payload.token",
                          says: "payload.token must not be empty"),
    ]

    @Test("each rule, with its code, path and place", arguments: errorCases)
    func errors(_ c: EnvelopeErrorCase) throws {
        let textError = EnvelopeTest.error { _ = try WebSocketEnvelope.parse(c.text) }
        let error = try #require(textError, "\(c.text) parsed")
        #expect(error.code == c.code)
        #expect(error.path == c.path)
        #expect(error.message.contains(c.says), "\(error.message)")
        #expect(error.description == "\(c.code.rawValue): \(error.message)")
        if c.code == .notJSON {
            #expect(error.offset != nil && error.line != nil && error.column != nil)
        } else {
            #expect(error.offset == nil)
        }
        // Once the type is read, the error names it, so a report can say which message was bad.
        if [WebSocketEnvelopeError.Code.notJSON, .notAnObject, .missingType, .invalidType].contains(c.code) {
            #expect(error.type == nil)
        } else {
            #expect(error.type == (try EnvelopeTest.readJSON(c.text))["type"]?.stringValue)
        }
        // The same from bytes.
        let bytesError = EnvelopeTest.error { _ = try WebSocketEnvelope.parse(Array(c.text.utf8)) }
        #expect(bytesError == error)
    }

    @Test("an error keeps the metadata ids that are strings, whatever rule was broken")
    func errorsKeepTheIDs() throws {
        let ids = #""message_id": "m", "correlation_id": "c", "client_id": "k""#
        let cases: [(String, WebSocketEnvelopeError.Code, [String?])] = [
            (#"{"type": "q", "metadata": {\#(ids), "timestamp": "yesterday"}}"#, .invalidTimestamp, ["m", "c", "k"]),
            (#"{"type": "q", "payload": 3, "metadata": {\#(ids)}}"#, .invalidPayload, ["m", "c", "k"]),
            (#"{"type": "join_room", "payload": {}, "metadata": {\#(ids)}}"#, .missingPayloadField, ["m", "c", "k"]),
            // One id of the wrong kind: the others are still read.
            (#"{"type": "q", "metadata": {"message_id": 7, "correlation_id": "c"}}"#, .invalidMetadataField, [nil, "c", nil]),
            (#"{"type": "q", "metadata": "c"}"#, .invalidMetadata, [nil, nil, nil]),
            (#"{"type": 1, "metadata": {\#(ids)}}"#, .invalidType, [nil, nil, nil]),
        ]
        for (text, code, expected) in cases {
            let error = try #require(EnvelopeTest.error { _ = try WebSocketEnvelope.parse(text) }, "\(text) parsed")
            #expect(error.code == code, "\(text)")
            #expect([error.messageID, error.correlationID, error.clientID] == expected, "\(text)")
        }
    }

    @Test("bytes that are not UTF-8 are not JSON, with the place")
    func notUTF8() throws {
        let bytes = Array(#"{"type": "a"#.utf8) + [0xC0, 0x80] + Array(#""}"#.utf8)
        let bytesError = EnvelopeTest.error { _ = try WebSocketEnvelope.parse(bytes) }
        let error = try #require(bytesError, "parsed")
        #expect(error.code == .notJSON)
        #expect(error.offset == 11)
        #expect(error.message == "not JSON: not UTF-8: byte 0xC0 at byte 11 (line 1, column 12)")
        #expect(try WebSocketEnvelope.parseIfEnvelope(bytes) == nil)
        let truncated = Array(#"{"type": "é"#.utf8).dropLast()
        let truncatedError = EnvelopeTest.error { _ = try WebSocketEnvelope.parse(Array(truncated)) }
        let cut = try #require(truncatedError, "truncated text parsed")
        #expect(cut.message.contains("not UTF-8: a truncated character"))
    }

    @Test("standard types whose payload is free need none")
    func freeStandardTypes() throws {
        for type in ["auth_response", "connection_established", "typing_start", "typing_stop", "presence_update",
                     "ping", "pong", "error"] {
            let thrown = thrownError { _ = try WebSocketEnvelope.parse(#"{"type": "\#(type)"}"#) }
            #expect(thrown == nil, "\(type): \(String(describing: thrown))")
        }
        let thrown = thrownError {
            _ = try WebSocketEnvelope.parse(#"{"type": "message", "payload": {"room": "r1", "content": ""}}"#)
            _ = try WebSocketEnvelope.parse(#"{"type": "auth", "payload": {"token": "t"}}"#)
            _ = try WebSocketEnvelope.parse(#"{"type": "leave_room", "payload": {"room": "r"}}"#)
        }
        #expect(thrown == nil, "\(String(describing: thrown))")
    }

    @Test("validate() checks an envelope built by hand")
    func validateByHand() {
        let emptyType = EnvelopeTest.error { try WebSocketEnvelope(type: "").validate() }
        #expect(emptyType?.code == .invalidType)
        let arrayPayload = EnvelopeTest.error { try WebSocketEnvelope(type: "x", payload: [1, 2]).validate() }
        #expect(arrayPayload?.code == .invalidPayload)
        let noRoom = EnvelopeTest.error { try WebSocketEnvelope(type: "join_room", payload: [:]).validate() }
        #expect(noRoom?.code == .missingPayloadField)
        let badTime = WebSocketEnvelope(type: "x", metadata: WebSocketEnvelopeMetadata(timestamp: "2024-05-01T25:00:00Z"))
        let error = EnvelopeTest.error { try badTime.validate() }
        #expect(error?.code == .invalidTimestamp)
        #expect(error?.message.contains("hour 25 is out of range 0–23") == true)
        #expect(error?.type == "x")
        let thrown = thrownError { try WebSocketEnvelope(type: "join_room", payload: ["room": "r"]).validate() }
        #expect(thrown == nil, "\(String(describing: thrown))")
    }

    // MARK: Prefilter and parseIfEnvelope

    @Test("looksLikeEnvelope: '{' first and '}' last, JSON whitespace aside, nothing else")
    func prefilter() {
        for yes in ["{}", "  {\"type\":1}", "\n\t\r {\"type\":1} \r\n", "{ not JSON }", "{}}"] {
            #expect(WebSocketEnvelope.looksLikeEnvelope(yes), "\(yes)")
            #expect(WebSocketEnvelope.looksLikeEnvelope(Array(yes.utf8)), "\(yes)")
        }
        for no in ["", "   ", "hello {", "[{}]", "42", "\"{\"", "\u{FEFF}{}", "\u{0B}{}", "\u{A0}{}",
                   // Starts like an object and does not end like one: no parse needed to tell.
                   "{", " { ", "}", "{\"type\":\"tick\"} and more", "{\"type\":\"tick\"", "{}\u{0B}", "{}\u{A0}", "{} ."] {
            #expect(!WebSocketEnvelope.looksLikeEnvelope(no), "\(no)")
            #expect(!WebSocketEnvelope.looksLikeEnvelope(Array(no.utf8)), "\(no)")
        }
    }

    @Test("parseIfEnvelope: nil for text that is no envelope, an error for a bad one")
    func parseIfEnvelope() throws {
        for text in ["hello", "", "[1]", "42", "{", #"{"type": "ping""#, "{}", #"{"kind": "message"}"#, "{} {}",
                     #"{"payload": {"room": 1}}"#] {
            #expect(try WebSocketEnvelope.parseIfEnvelope(text) == nil, "\(text)")
        }
        let numberType = EnvelopeTest.error { _ = try WebSocketEnvelope.parseIfEnvelope(#"{"type": 5}"#) }
        #expect(numberType?.code == .invalidType)
        let nullType = EnvelopeTest.error { _ = try WebSocketEnvelope.parseIfEnvelope(#"{"type": null}"#) }
        #expect(nullType?.code == .invalidType)
        let noPayload = EnvelopeTest.error { _ = try WebSocketEnvelope.parseIfEnvelope(#"{"type": "join_room"}"#) }
        #expect(noPayload?.code == .missingPayloadField)
        #expect(try WebSocketEnvelope.parseIfEnvelope(#" {"type": "ping"} "#) == WebSocketEnvelope(type: "ping"))
    }

    // MARK: Building and writing

    @Test("make() with an injected id and clock gives exact text")
    func builderExact() throws {
        let id = try #require(UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301"))
        let time = Date(timeIntervalSince1970: 1_700_000_000.123)
        let envelope = WebSocketEnvelope.make(
            type: .joinRoom, payload: ["room": "r1"], correlationID: "c-1", clientID: "alice", messageID: id, timestamp: time)
        #expect(envelope.encoded() == """
            {"type":"join_room","payload":{"room":"r1"},"metadata":{"message_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",\
            "timestamp":"2023-11-14T22:13:20.123Z","correlation_id":"c-1","client_id":"alice"}}
            """)
        #expect(envelope.encodedBytes() == Array(envelope.encoded().utf8))
        #expect(try WebSocketEnvelope.parse(envelope.encoded()) == envelope)

        let bare = WebSocketEnvelope.make(type: .ping, messageID: id, timestamp: Date(timeIntervalSince1970: 0))
        #expect(bare.encoded() == """
            {"type":"ping","payload":{},"metadata":{"message_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",\
            "timestamp":"1970-01-01T00:00:00.000Z"}}
            """)
    }

    @Test("make() by default: a fresh lower-case UUID and the current time")
    func builderDefaults() throws {
        let before = Date()
        let a = WebSocketEnvelope.make(type: "chat.custom", payload: ["n": 1])
        let b = WebSocketEnvelope.make(type: "chat.custom", payload: ["n": 1])
        let id = try #require(a.messageID)
        #expect(UUID(uuidString: id) != nil)
        #expect(id == id.lowercased())
        #expect(a.messageID != b.messageID)
        let stamped = try #require(a.metadata?.date)
        #expect(abs(stamped.timeIntervalSince(before)) < 60)
        #expect(a.metadata?.timestamp?.hasSuffix("Z") == true)
        #expect(a.metadata?.timestamp?.count == 24)
        #expect(try WebSocketEnvelope.parse(a.encoded()) == a)
    }

    @Test("round trips keep every member, in order; the text is canonical after one pass")
    func roundTrip() throws {
        let envelope = try WebSocketEnvelope.parse(Self.full)
        let text = envelope.encoded()
        #expect(text == """
            {"type":"message","payload":{"room":"r1","content":"hi","z":1,"a":[true,null,2.5]},\
            "metadata":{"message_id":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":"2024-05-01T12:34:56.789Z",\
            "correlation_id":"c-42","client_id":"alice","trace":{"hop":3}},"version":2}
            """)
        let again = try WebSocketEnvelope.parse(text)
        #expect(again == envelope)
        #expect(again.encoded() == text)

        // Members out of the canonical order come back in it, with the unnamed ones after.
        let shuffled = #"{"extra":1,"metadata":{"x":0,"client_id":"c","message_id":"m"},"payload":{"b":1,"a":2},"type":"t"}"#
        #expect(try WebSocketEnvelope.parse(shuffled).encoded()
                == #"{"type":"t","payload":{"b":1,"a":2},"metadata":{"message_id":"m","client_id":"c","x":0},"extra":1}"#)
    }

    @Test("Codable: JSONDecoder applies the same rules, JSONEncoder writes what parse reads")
    func codable() throws {
        let envelope = try WebSocketEnvelope.parse(Self.full)
        let data = try JSONEncoder().encode(envelope)
        #expect(try WebSocketEnvelope.parse(Array(data)) == envelope)
        #expect(try JSONDecoder().decode(WebSocketEnvelope.self, from: Data(Self.full.utf8)) == envelope)
        let missingField = thrownError {
            try JSONDecoder().decode(WebSocketEnvelope.self, from: Data(#"{"type":"join_room","payload":{}}"#.utf8))
        }
        #expect(missingField is WebSocketEnvelopeError, "threw \(String(describing: missingField))")
        let badTimestamp = thrownError {
            try JSONDecoder().decode(WebSocketEnvelope.self, from: Data(#"{"type":"x","metadata":{"timestamp":"now"}}"#.utf8))
        }
        #expect(badTimestamp is WebSocketEnvelopeError, "threw \(String(describing: badTimestamp))")
        struct Wrapper: Codable, Equatable {
            var envelope: WebSocketEnvelope
            var type: WebSocketEnvelopeType
            var value: JSONValue
        }
        let wrapper = Wrapper(envelope: envelope, type: .presenceUpdate, value: ["k": [1, "two", nil, false]])
        #expect(try JSONDecoder().decode(Wrapper.self, from: JSONEncoder().encode(wrapper)) == wrapper)
    }

    // MARK: Types

    @Test("the thirteen standard types and their requirements")
    func standardTypes() {
        #expect(WebSocketEnvelopeType.standard.map(\.rawValue) == [
            "auth", "auth_response", "connection_established", "join_room", "leave_room", "room_joined", "message",
            "typing_start", "typing_stop", "presence_update", "ping", "pong", "error",
        ])
        let allStandard = WebSocketEnvelopeType.standard.allSatisfy { $0.isStandard }
        #expect(allStandard, "\(WebSocketEnvelopeType.standard)")
        #expect(WebSocketEnvelopeType("Message").isStandard == false)
        #expect(("join_room" as WebSocketEnvelopeType) == .joinRoom)
        #expect(WebSocketEnvelopeType.auth.requiredPayloadFields == ["token"])
        #expect(WebSocketEnvelopeType.joinRoom.requiredPayloadFields == ["room"])
        #expect(WebSocketEnvelopeType.leaveRoom.requiredPayloadFields == ["room"])
        #expect(WebSocketEnvelopeType.roomJoined.requiredPayloadFields == ["room"])
        #expect(WebSocketEnvelopeType.message.requiredPayloadFields == ["room", "content"])
        #expect(WebSocketEnvelopeType.typingStart.requiredPayloadFields == [])
        #expect(WebSocketEnvelopeType.error.description == "error")
    }

    // MARK: Timestamps

    @Test("timestamps peers write are read to the right instant")
    func timestampsAccepted() throws {
        let base = EnvelopeTest.utc(2024, 5, 1, 12, 34, 56)
        let cases: [(String, Double)] = [
            ("2024-05-01T12:34:56.789Z", base + 0.789),          // JavaScript toISOString()
            ("2024-05-01T12:34:56.789123+00:00", base + 0.789123), // Python isoformat(), aware
            ("2024-05-01T12:34:56.789123", base + 0.789123),      // Python isoformat(), naive: read as UTC
            ("2024-05-01T12:34:56Z", base),
            ("2024-05-01t12:34:56z", base),
            ("2024-05-01 12:34:56Z", base),
            ("2024-05-01T12:34:56,5Z", base + 0.5),
            ("2024-05-01T14:34:56+02:00", base),
            ("2024-05-01T14:34:56+0200", base),
            ("2024-05-01T14:34:56+02", base),
            ("2024-05-01T07:04:56-05:30", base),
            ("2024-05-01T12:34Z", base - 56),
            ("2016-12-31T23:59:60Z", EnvelopeTest.utc(2017, 1, 1)), // a leap second
            ("2000-02-29T00:00:00Z", EnvelopeTest.utc(2000, 2, 29)),
            ("1969-12-31T23:59:59.5Z", -0.5),
        ]
        for (text, expected) in cases {
            let date = try #require(EnvelopeTest.date(text), "\(text)")
            #expect(abs(date.timeIntervalSince1970 - expected) < 1e-6, "\(text)")
        }
    }

    @Test("timestamps that are not ISO 8601 date-times are refused, with the reason")
    func timestampsRefused() {
        let cases: [(String, String)] = [
            ("", "expected 4 digits for the year, found the end"),
            ("2024-5-01T00:00:00Z", "expected 2 digits for the month, found '-'"),
            ("2024-13-01T00:00:00Z", "month 13 is out of range 1–12"),
            ("2024-04-31T00:00:00Z", "day 31 is out of range 1–30"),
            ("1900-02-29T00:00:00Z", "day 29 is out of range 1–28"),
            ("2024-05-01", "expected 'T' and a time after the date, found the end"),
            ("2024-05-01X00:00:00Z", "expected 'T' and a time after the date, found 'X'"),
            ("20240501T123456Z", "expected '-' after the year, found '0'"),
            ("2024-05-01T24:00:00Z", "hour 24 is out of range 0–23"),
            ("2024-05-01T12:60:00Z", "minute 60 is out of range 0–59"),
            ("2024-05-01T12:00:61Z", "second 61 is out of range 0–60"),
            ("2024-05-01T12:00:00.Z", "expected digits after the decimal sign, found 'Z'"),
            ("2024-05-01T12:00:00+2400", "offset hour 24 is out of range 0–23"),
            ("2024-05-01T12:00:00+02:", "expected 2 digits for the offset minutes, found the end"),
            ("2024-05-01T12:00:00 UTC", "unexpected ' ' after the time; expected Z, ±hh:mm or nothing"),
            ("2024-05-01T12:00:00ZZ", "unexpected 'Z' after the time; expected Z, ±hh:mm or nothing"),
            ("1714566896", "expected '-' after the year, found '5'"),
        ]
        for (text, reason) in cases {
            guard case .failure(let failure) = EnvelopeTimestamp.parse(text) else {
                Issue.record("accepted \(text)")
                continue
            }
            #expect(failure.reason == reason, "\(text)")
        }
    }

    @Test("timestamps are written as toISOString() does, and read back to the millisecond")
    func timestampFormat() {
        #expect(WebSocketEnvelopeMetadata.timestamp(for: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(WebSocketEnvelopeMetadata.timestamp(for: Date(timeIntervalSince1970: -0.001)) == "1969-12-31T23:59:59.999Z")
        #expect(WebSocketEnvelopeMetadata.timestamp(for: Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(WebSocketEnvelopeMetadata.timestamp(for: Date(timeIntervalSince1970: 253_402_300_799.999))
                == "9999-12-31T23:59:59.999Z")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let ms = Int64.random(in: -2_000_000_000_000...4_000_000_000_000, using: &rng)
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let text = WebSocketEnvelopeMetadata.timestamp(for: date)
            let back = EnvelopeTest.date(text)
            let backMilliseconds = back.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
            #expect(backMilliseconds == ms, "\(text)")
        }
        // The civil-date arithmetic agrees with Foundation's calendar, day by day over 1600–2400.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for days in stride(from: Int64(-135_140), to: 157_000, by: 97) {
            let date = Date(timeIntervalSince1970: Double(days) * 86_400)
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let civil = EnvelopeTimestamp.civil(fromDays: days)
            let foundationDate = [parts.year, parts.month, parts.day].map { Int64($0!) }
            #expect([civil.year, civil.month, civil.day] == foundationDate)
            #expect(EnvelopeTimestamp.days(fromCivil: civil.year, civil.month, civil.day) == days)
        }
    }
}

// MARK: - JSON values

extension EnvelopeTests {
    @Suite("JSONValue")
    struct JSONValues {
        @Test("strict reading: what RFC 8259 allows, and only that")
        func strictness() throws {
            let accepted: [(String, JSONValue)] = [
                ("null", nil), ("true", true), ("false", false), ("0", 0), ("-0", 0), ("12", 12), ("-1.5e3", -1500),
                ("1E+2", 100), ("2.5e-1", 0.25), ("\"\"", ""), (#""a\"b\\c\/d\b\f\n\r\t""#, "a\"b\\c/d\u{8}\u{C}\n\r\t"),
                (#""\u00e9\u4e2d\ud83d\ude00""#, "é中😀"), ("\"κόσμε 😀\"", "κόσμε 😀"), (" \t\r\n[ ] ", []), ("{ }", [:]),
                (#"[1,[2,[3]],{"a":{"b":null}}]"#, [1, [2, [3]], ["a": ["b": nil]]]),
            ]
            for (text, value) in accepted {
                #expect(try EnvelopeTest.readJSON(text) == value, "\(text)")
                // Foundation agrees on the value (through JSONValue's Decodable conformance).
                #expect(try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) == value, "\(text)")
            }
            // A repeated key keeps its first place and its last value, as JSON.parse does.
            let repeated = try EnvelopeTest.readJSON(#"{"a":1,"b":2,"a":3}"#)
            #expect(repeated == ["a": 3, "b": 2])
            #expect(repeated.objectValue?.keys == ["a", "b"])
            let refused = ["", " ", "nul", "True", "01", "-", "1.", ".5", "1e", "+1", "0x10", "[1,]", "[,1]", "{,}",
                           #"{"a"}"#, #"{"a":}"#, #"{a:1}"#, "{'a':1}", #"{"a":1,}"#, "[1 2]", #""\x""#, #""\u12""#,
                           #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, "\"a\nb\"", "\"abc", "[1]]", "/*c*/1", "NaN",
                           "Infinity", "[1e400]"]
            for text in refused {
                let thrown = thrownError { try EnvelopeTest.readJSON(text) }
                #expect(thrown is JSONSyntaxError, "\(text): threw \(String(describing: thrown))")
            }
            let deepError = thrownError {
                _ = try EnvelopeTest.readJSON(String(repeating: "[", count: 256) + String(repeating: "]", count: 256))
            }
            #expect(deepError == nil, "\(String(describing: deepError))")
        }

        @Test("ordered objects: order kept for writing, ignored for equality")
        func orderedObject() {
            var object: JSONObject = ["b": 1, "a": 2]
            object["c"] = 3
            object["b"] = 4
            #expect(object.keys == ["b", "a", "c"])
            #expect(object.map(\.key) == ["b", "a", "c"])
            object["a"] = nil
            #expect(object.keys == ["b", "c"])
            #expect(object.count == 2)
            #expect(object == ["c": 3, "b": 4])
            #expect(object.hashValue == (["c": 3, "b": 4] as JSONObject).hashValue)
            #expect(JSONValue.object(object).encoded() == #"{"b":4,"c":3}"#)
            #expect(JSONObject().isEmpty)
        }

        @Test("accessors and subscripts")
        func accessors() {
            let value: JSONValue = ["s": "x", "n": 3, "f": 2.5, "b": true, "a": [1, 2], "o": ["k": nil]]
            #expect(value["s"]?.stringValue == "x")
            #expect(value["n"]?.intValue == 3)
            #expect(value["f"]?.intValue == nil)
            #expect(value["f"]?.doubleValue == 2.5)
            #expect(value["b"]?.boolValue == true)
            #expect(value["a"]?[1] == 2)
            #expect(value["a"]?[-1] == nil)
            #expect(value["a"]?.arrayValue?.count == 2)
            #expect(value["o"]?["k"]?.isNull == true)
            #expect(value["o"]?.objectValue?.keys == ["k"])
            #expect(value["missing"] == nil)
            #expect(value["s"]?["x"] == nil)
            #expect(value[0] == nil)
            #expect(JSONValue.number(1e300).intValue == nil)
            #expect(value.kindName == "object")
            #expect([JSONValue.null, true, 1, "", [], [:]].map(\.kindName) == ["null", "boolean", "number", "string", "array", "object"])
        }

        @Test("writing: compact, numbers in their shortest form, only the escapes JSON needs")
        func writing() {
            let cases: [(JSONValue, String)] = [
                (3, "3"), (-0.0, "0"), (0.1, "0.1"), (-2.5, "-2.5"), (1e-7, "1e-07"), (1.5e300, "1.5e+300"),
                (9_007_199_254_740_992, "9007199254740992"), (1e16, "1e+16"), (.number(.nan), "null"), (.number(.infinity), "null"),
                ("a\"b\\c/d", #""a\"b\\c/d""#), ("\n\r\t\u{8}\u{C}\u{0}\u{1F}", #""\n\r\t\b\f\u0000\u001F""#),
                ("κόσμε 😀 \u{7F}", "\"κόσμε 😀 \u{7F}\""), ([1, [true, nil], [:]], "[1,[true,null],{}]"),
                (["z": 1, "a": ["y": [], "b": ""]], #"{"z":1,"a":{"y":[],"b":""}}"#),
            ]
            for (value, text) in cases {
                #expect(value.encoded() == text)
                #expect(value.description == text)
                if let number = value.doubleValue, !number.isFinite { continue }
                #expect((try? EnvelopeTest.readJSON(text)) == value, "\(text)")
            }
        }
    }
}
