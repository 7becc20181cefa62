/// Why a text message is not a valid envelope: which rule, where, and in words.
///
/// `code` is for programs (a struct of named values, so new rules can be added without breaking a
/// `switch`); `message` is for people and names the place: a byte offset with line and column for
/// text that is not JSON, a member path such as `metadata.timestamp` or `payload.room` otherwise.
public struct WebSocketEnvelopeError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// Not UTF-8, or not JSON text (RFC 8259).
        public static let notJSON = Code(rawValue: "not-json")
        /// JSON, but the top-level value is not an object.
        public static let notAnObject = Code(rawValue: "not-an-object")
        /// An object without a `type` member.
        public static let missingType = Code(rawValue: "missing-type")
        /// `type` is not a string, or is empty.
        public static let invalidType = Code(rawValue: "invalid-type")
        /// `payload` is present (and not null) but not an object.
        public static let invalidPayload = Code(rawValue: "invalid-payload")
        /// `metadata` is present (and not null) but not an object.
        public static let invalidMetadata = Code(rawValue: "invalid-metadata")
        /// `message_id`, `correlation_id` or `client_id` is present (and not null) but not a string.
        public static let invalidMetadataField = Code(rawValue: "invalid-metadata-field")
        /// `timestamp` is present (and not null) but not an ISO 8601 date-time string.
        public static let invalidTimestamp = Code(rawValue: "invalid-timestamp")
        /// A standard type without a payload member it requires (see `WebSocketEnvelopeType`).
        public static let missingPayloadField = Code(rawValue: "missing-payload-field")
        /// A payload member a standard type requires has the wrong kind of value, or is empty.
        public static let invalidPayloadField = Code(rawValue: "invalid-payload-field")

        public var description: String { rawValue }
    }

    public var code: Code
    /// The member at fault (`type`, `payload.room`, `metadata.timestamp`); nil for the text as a whole.
    public var path: String?
    /// For `notJSON`: the byte offset in the text where reading stopped, and its 1-based line and
    /// column (the column counts characters).
    public var offset: Int?
    public var line: Int?
    public var column: Int?
    /// The envelope's `type` when it could be read, so that a report can say which message was bad.
    public var type: String?
    /// The metadata ids that are strings, read whatever else is wrong (a bad `timestamp` or
    /// payload), so that a report can still name the message and pair a reply with its request.
    public var messageID: String?
    public var correlationID: String?
    public var clientID: String?
    /// What was wrong, in words, including where.
    public var message: String

    public init(
        _ code: Code, path: String? = nil, offset: Int? = nil, line: Int? = nil, column: Int? = nil,
        type: String? = nil, _ message: String
    ) {
        self.code = code
        self.path = path
        self.offset = offset
        self.line = line
        self.column = column
        self.type = type
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
