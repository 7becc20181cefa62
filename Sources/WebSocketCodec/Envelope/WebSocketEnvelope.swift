#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON message envelope of the chat-room protocol (DESIGN.md, "The JSON message envelope"):
///
///     {"type": "message", "payload": {"room": "r1", "content": "hi"},
///      "metadata": {"message_id": "…", "timestamp": "…", "correlation_id": "…", "client_id": "…"}}
///
/// Parsing checks the shape (an object with a non-empty string `type`; `payload` and `metadata`
/// objects when present; metadata ids strings; `timestamp` ISO 8601) and the payload members the
/// standard types require (see `WebSocketEnvelopeType`). Members the envelope does not name are kept,
/// in order, so an envelope read and written again loses nothing. A member that is `null` counts as
/// absent, since JavaScript peers write `null` for "not set".
public struct WebSocketEnvelope: Hashable, Sendable {
    /// The message type: a standard one (`WebSocketEnvelopeType`) or any string an application defines.
    public var type: String
    /// The message body; an object when present (`validate()` checks).
    public var payload: JSONValue?
    public var metadata: WebSocketEnvelopeMetadata?
    /// Top-level members other than `type`, `payload` and `metadata`, in order.
    public var additionalFields: JSONObject

    public init(
        type: String, payload: JSONValue? = nil, metadata: WebSocketEnvelopeMetadata? = nil,
        additionalFields: JSONObject = [:]
    ) {
        self.type = type
        self.payload = payload
        self.metadata = metadata
        self.additionalFields = additionalFields
    }

    public var envelopeType: WebSocketEnvelopeType { WebSocketEnvelopeType(type) }
    public var messageID: String? { metadata?.messageID }
    public var correlationID: String? { metadata?.correlationID }
    public var clientID: String? { metadata?.clientID }

    static let namedKeys: Set<String> = ["type", "payload", "metadata"]
}

// MARK: - Validation

extension WebSocketEnvelope {
    /// Checks the rules that the stored properties alone do not guarantee: `type` non-empty,
    /// `payload` an object, `metadata.timestamp` ISO 8601, and the payload members of the standard
    /// types. Parsing runs it; run it on an envelope built by hand before sending it.
    public func validate() throws(WebSocketEnvelopeError) {
        guard !type.isEmpty else {
            throw WebSocketEnvelopeError(.invalidType, path: "type", "type must be a non-empty string, got string \"\"")
        }
        if let payload, payload.objectValue == nil {
            throw WebSocketEnvelopeError(
                .invalidPayload, path: "payload", type: type, "payload must be an object, got \(payload.briefDescription)")
        }
        if let timestamp = metadata?.timestamp, case .failure(let failure) = EnvelopeTimestamp.parse(timestamp) {
            throw WebSocketEnvelopeError(
                .invalidTimestamp, path: "metadata.timestamp", type: type,
                "metadata.timestamp \"\(timestamp)\" is not an ISO 8601 date-time: \(failure.reason)")
        }
        for requirement in envelopeType.requirements {
            let path = "payload.\(requirement.name)"
            let kind = requirement.mayBeEmpty ? "a string" : "a non-empty string"
            guard let value = payload?[requirement.name], value != .null else {
                let context = payload == nil ? ", but there is no payload" : ""
                throw WebSocketEnvelopeError(
                    .missingPayloadField, path: path, type: type,
                    "type \"\(type)\" requires \(path) (\(kind))\(context)")
            }
            guard case .string(let string) = value else {
                throw WebSocketEnvelopeError(
                    .invalidPayloadField, path: path, type: type,
                    "\(path) must be \(kind) for type \"\(type)\", got \(value.briefDescription)")
            }
            if string.isEmpty && !requirement.mayBeEmpty {
                throw WebSocketEnvelopeError(
                    .invalidPayloadField, path: path, type: type, "\(path) must not be empty for type \"\(type)\"")
            }
        }
    }

    /// Reads an envelope from a parsed JSON value and validates it.
    public init(validating value: JSONValue) throws(WebSocketEnvelopeError) {
        guard case .object(let object) = value else {
            throw WebSocketEnvelopeError(.notAnObject, "the top-level JSON value is \(value.briefDescription), not an object")
        }
        guard let typeValue = object["type"] else {
            throw WebSocketEnvelopeError(.missingType, path: "type", "the object has no \"type\" member")
        }
        guard case .string(let type) = typeValue, !type.isEmpty else {
            throw WebSocketEnvelopeError(
                .invalidType, path: "type", "type must be a non-empty string, got \(typeValue.briefDescription)")
        }
        // Past this point an error carries the type and the metadata ids that are strings.
        func located(_ error: WebSocketEnvelopeError) -> WebSocketEnvelopeError {
            var located = error
            located.type = type
            if case .object(let fields)? = object["metadata"] {
                if case .string(let id)? = fields["message_id"] { located.messageID = id }
                if case .string(let id)? = fields["correlation_id"] { located.correlationID = id }
                if case .string(let id)? = fields["client_id"] { located.clientID = id }
            }
            return located
        }
        var payload: JSONValue?
        switch object["payload"] {
        case nil, .null?: payload = nil
        case .object?: payload = object["payload"]
        case let other?:
            throw located(WebSocketEnvelopeError(
                .invalidPayload, path: "payload", "payload must be an object, got \(other.briefDescription)"))
        }
        var metadata: WebSocketEnvelopeMetadata?
        switch object["metadata"] {
        case nil, .null?: metadata = nil
        case .object(let fields)?:
            do {
                metadata = try WebSocketEnvelopeMetadata(validating: fields)
            } catch {
                throw located(error)
            }
        case let other?:
            throw located(WebSocketEnvelopeError(
                .invalidMetadata, path: "metadata", "metadata must be an object, got \(other.briefDescription)"))
        }
        var additional = JSONObject()
        for (key, member) in object where !Self.namedKeys.contains(key) { additional[key] = member }
        self.init(type: type, payload: payload, metadata: metadata, additionalFields: additional)
        do {
            try validate()
        } catch {
            throw located(error)
        }
    }
}

// MARK: - Reading text

extension WebSocketEnvelope {
    /// Parses and validates a text message.
    public static func parse(_ text: String) throws(WebSocketEnvelopeError) -> WebSocketEnvelope {
        try WebSocketEnvelope(validating: withUTF8(text) { raw throws(WebSocketEnvelopeError) in
            try readJSON(raw, checkUTF8: false)
        })
    }

    /// Parses and validates the bytes of a text message; bytes that are not UTF-8 are `notJSON`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WebSocketEnvelopeError) -> WebSocketEnvelope {
        try WebSocketEnvelope(validating: readJSON(bytes, checkUTF8: true))
    }

    public static func parse(_ bytes: [UInt8]) throws(WebSocketEnvelopeError) -> WebSocketEnvelope {
        try withBytes(bytes) { raw throws(WebSocketEnvelopeError) in try parse(raw) }
    }

    /// Like `parse`, but for text that may not be an envelope at all: nil when it is not a JSON
    /// object or the object has no `type` member; an error when it has a `type` but breaks a rule.
    /// Cheap for most other text: `looksLikeEnvelope` turns it away before any parsing.
    public static func parseIfEnvelope(_ text: String) throws(WebSocketEnvelopeError) -> WebSocketEnvelope? {
        try withUTF8(text) { raw throws(WebSocketEnvelopeError) in try parseIfEnvelope(raw, checkUTF8: false) }
    }

    public static func parseIfEnvelope(_ bytes: UnsafeRawBufferPointer) throws(WebSocketEnvelopeError) -> WebSocketEnvelope? {
        try parseIfEnvelope(bytes, checkUTF8: true)
    }

    public static func parseIfEnvelope(_ bytes: [UInt8]) throws(WebSocketEnvelopeError) -> WebSocketEnvelope? {
        try withBytes(bytes) { raw throws(WebSocketEnvelopeError) in try parseIfEnvelope(raw, checkUTF8: true) }
    }

    /// A prefilter: true when the text, JSON whitespace aside, starts with `{` and ends with `}`,
    /// as every JSON object does. Every envelope passes; most other text (plain words, numbers,
    /// arrays) is turned away after a byte or two, and text that only starts like an object (a
    /// log line with JSON in it) after a byte or two from each end, before any parsing: a parse
    /// that fails costs about as much as one that succeeds.
    public static func looksLikeEnvelope(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var first = 0
        while first < bytes.count && isJSONWhitespace(bytes[first]) { first += 1 }
        guard first < bytes.count, bytes[first] == UInt8(ascii: "{") else { return false }
        var last = bytes.count - 1
        while last > first && isJSONWhitespace(bytes[last]) { last -= 1 }
        return last > first && bytes[last] == UInt8(ascii: "}")
    }

    public static func looksLikeEnvelope(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { looksLikeEnvelope($0) }
    }

    public static func looksLikeEnvelope(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { looksLikeEnvelope(UnsafeRawBufferPointer($0)) }
    }

    /// Space, tab, line feed and carriage return: the only whitespace JSON allows (RFC 8259 §2).
    private static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func parseIfEnvelope(
        _ bytes: UnsafeRawBufferPointer, checkUTF8: Bool
    ) throws(WebSocketEnvelopeError) -> WebSocketEnvelope? {
        guard looksLikeEnvelope(bytes),
            let value = try? readJSON(bytes, checkUTF8: checkUTF8),
            value["type"] != nil
        else { return nil }
        return try WebSocketEnvelope(validating: value)
    }

    /// The JSON value of the text, or a `notJSON` error that says where reading stopped.
    static func readJSON(_ bytes: UnsafeRawBufferPointer, checkUTF8: Bool) throws(WebSocketEnvelopeError) -> JSONValue {
        if checkUTF8, let bad = WebSocketUTF8Validator.firstInvalidIndex(bytes) {
            let what = bad < bytes.count ? "byte 0x\(String(bytes[bad], radix: 16, uppercase: true))" : "a truncated character"
            throw notJSON(bytes, at: bad, "not UTF-8: \(what)")
        }
        do {
            return try JSONReader.parse(bytes)
        } catch {
            throw notJSON(bytes, at: error.offset, error.reason)
        }
    }

    private static func notJSON(_ bytes: UnsafeRawBufferPointer, at offset: Int, _ reason: String) -> WebSocketEnvelopeError {
        var line = 1
        var column = 1
        for byte in bytes.prefix(offset) {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return WebSocketEnvelopeError(
            .notJSON, offset: offset, line: line, column: column,
            "not JSON: \(reason) at byte \(offset) (line \(line), column \(column))")
    }

    private static func withUTF8<R>(
        _ text: String, _ body: (UnsafeRawBufferPointer) throws(WebSocketEnvelopeError) -> R
    ) throws(WebSocketEnvelopeError) -> R {
        var text = text
        let result = text.withUTF8 { utf8 in
            Result { () throws(WebSocketEnvelopeError) in try body(UnsafeRawBufferPointer(utf8)) }
        }
        return try result.get()
    }

    private static func withBytes<R>(
        _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(WebSocketEnvelopeError) -> R
    ) throws(WebSocketEnvelopeError) -> R {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(WebSocketEnvelopeError) in try body(raw) }
        }
        return try result.get()
    }
}

// MARK: - Building and writing

extension WebSocketEnvelope {
    /// A new envelope to send: `metadata.message_id` is a fresh UUID (lower-case, as RFC 9562 §4
    /// writes them) and `metadata.timestamp` the current time, UTC with milliseconds. Pass
    /// `messageID` and `timestamp` to make the output exact (tests, replays).
    ///
    /// The payload defaults to an empty object rather than none, so that a peer reading
    /// `msg.payload.x` finds `undefined` instead of throwing. Per-type requirements are not checked
    /// here; `validate()` does that.
    public static func make(
        type: WebSocketEnvelopeType, payload: JSONValue = [:], correlationID: String? = nil, clientID: String? = nil,
        messageID: UUID = UUID(), timestamp: Date = Date()
    ) -> WebSocketEnvelope {
        WebSocketEnvelope(
            type: type.rawValue, payload: payload,
            metadata: WebSocketEnvelopeMetadata(
                messageID: messageID.uuidString.lowercased(),
                timestamp: WebSocketEnvelopeMetadata.timestamp(for: timestamp),
                correlationID: correlationID, clientID: clientID))
    }

    /// The envelope as a JSON object, members in a stable order: `type`, `payload`, `metadata` (its
    /// named members first), then any others in theirs.
    public var jsonObject: JSONObject {
        var object: JSONObject = ["type": .string(type)]
        if let payload { object["payload"] = payload }
        if let metadata { object["metadata"] = .object(metadata.jsonObject) }
        for (key, value) in additionalFields where !Self.namedKeys.contains(key) { object[key] = value }
        return object
    }

    /// Compact JSON text, ready to send as a text message.
    public func encoded() -> String { JSONValue.object(jsonObject).encoded() }

    /// The UTF-8 bytes of `encoded()`.
    public func encodedBytes() -> [UInt8] {
        var writer = JSONWriter()
        writer.write(.object(jsonObject))
        return writer.bytes
    }
}

extension WebSocketEnvelope: CustomStringConvertible {
    public var description: String { encoded() }
}

extension WebSocketEnvelope: Codable {
    /// Decodes with the same rules as `parse` (member order is the decoder's; `parse` keeps the text's).
    public init(from decoder: any Decoder) throws {
        try self.init(validating: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try jsonObject.encode(to: encoder)
    }
}
