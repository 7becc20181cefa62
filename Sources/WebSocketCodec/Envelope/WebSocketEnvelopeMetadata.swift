#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `metadata` object of an envelope. Every member is optional; members this type does not name
/// are kept in `additionalFields`, in their order, and written back after the named ones.
public struct WebSocketEnvelopeMetadata: Hashable, Sendable {
    /// `message_id`: the sender's id for this message (a UUID when wsctl builds it; any string is accepted).
    public var messageID: String?
    /// `timestamp`: when the message was sent, as the text that came (ISO 8601; see `date`).
    public var timestamp: String?
    /// `correlation_id`: shared by a request and its replies, so they can be paired.
    public var correlationID: String?
    /// `client_id`: which client the message is from or for.
    public var clientID: String?
    /// Every other member, in order.
    public var additionalFields: JSONObject

    public init(
        messageID: String? = nil, timestamp: String? = nil, correlationID: String? = nil, clientID: String? = nil,
        additionalFields: JSONObject = [:]
    ) {
        self.messageID = messageID
        self.timestamp = timestamp
        self.correlationID = correlationID
        self.clientID = clientID
        self.additionalFields = additionalFields
    }

    /// The instant `timestamp` names; nil when there is none or it is not ISO 8601. A timestamp
    /// without a UTC offset is read as UTC.
    public var date: Date? {
        guard let timestamp, case .success(let date) = EnvelopeTimestamp.parse(timestamp) else { return nil }
        return date
    }

    /// `date` as wsctl writes timestamps: UTC with milliseconds, `2024-05-01T12:34:56.789Z`, the form
    /// of JavaScript's `Date.prototype.toISOString()`.
    public static func timestamp(for date: Date) -> String { EnvelopeTimestamp.format(date) }

    static let namedKeys: Set<String> = ["message_id", "timestamp", "correlation_id", "client_id"]

    /// The metadata as a JSON object: the named members (those set) in the order the envelope
    /// description gives them, then the others.
    public var jsonObject: JSONObject {
        var object = JSONObject()
        if let messageID { object["message_id"] = .string(messageID) }
        if let timestamp { object["timestamp"] = .string(timestamp) }
        if let correlationID { object["correlation_id"] = .string(correlationID) }
        if let clientID { object["client_id"] = .string(clientID) }
        for (key, value) in additionalFields where !Self.namedKeys.contains(key) { object[key] = value }
        return object
    }

    /// Reads metadata from its JSON object. A named member that is null counts as absent; one of
    /// another kind than string is an error.
    public init(validating object: JSONObject) throws(WebSocketEnvelopeError) {
        func string(_ key: String, _ code: WebSocketEnvelopeError.Code) throws(WebSocketEnvelopeError) -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            case let other?:
                let what = code == .invalidTimestamp ? "an ISO 8601 date-time string" : "a string"
                throw WebSocketEnvelopeError(
                    code, path: "metadata.\(key)", "metadata.\(key) must be \(what), got \(other.briefDescription)")
            }
        }
        self.init(
            messageID: try string("message_id", .invalidMetadataField),
            timestamp: try string("timestamp", .invalidTimestamp),
            correlationID: try string("correlation_id", .invalidMetadataField),
            clientID: try string("client_id", .invalidMetadataField))
        for (key, value) in object where !Self.namedKeys.contains(key) { additionalFields[key] = value }
    }
}

extension WebSocketEnvelopeMetadata: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(validating: JSONObject(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try jsonObject.encode(to: encoder)
    }
}
