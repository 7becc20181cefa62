/// The `type` of an envelope: one of the standard types of the chat-room protocol, or any string an
/// application defines.
///
/// A struct rather than an enum so that application types survive a parse unchanged, the way
/// `WebSocketOpcode` keeps reserved opcodes.
///
/// Payload members the standard types require, checked by `WebSocketEnvelope.validate()` (only
/// where the type makes no sense without them; every other member is left to the application):
///
/// | type | payload must have |
/// |---|---|
/// | `auth` | `token`: a non-empty string |
/// | `join_room`, `leave_room`, `room_joined` | `room`: a non-empty string |
/// | `message` | `room`: a non-empty string, and `content`: a string (may be empty) |
///
/// `auth_response`, `connection_established`, `typing_start`, `typing_stop`, `presence_update`,
/// `ping`, `pong` and `error` require nothing: their members vary between servers.
public struct WebSocketEnvelopeType: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public static let auth = WebSocketEnvelopeType("auth")
    public static let authResponse = WebSocketEnvelopeType("auth_response")
    public static let connectionEstablished = WebSocketEnvelopeType("connection_established")
    public static let joinRoom = WebSocketEnvelopeType("join_room")
    public static let leaveRoom = WebSocketEnvelopeType("leave_room")
    public static let roomJoined = WebSocketEnvelopeType("room_joined")
    public static let message = WebSocketEnvelopeType("message")
    public static let typingStart = WebSocketEnvelopeType("typing_start")
    public static let typingStop = WebSocketEnvelopeType("typing_stop")
    public static let presenceUpdate = WebSocketEnvelopeType("presence_update")
    public static let ping = WebSocketEnvelopeType("ping")
    public static let pong = WebSocketEnvelopeType("pong")
    public static let error = WebSocketEnvelopeType("error")

    /// The thirteen standard types, in the order DESIGN.md lists them.
    public static let standard: [WebSocketEnvelopeType] = [
        .auth, .authResponse, .connectionEstablished, .joinRoom, .leaveRoom, .roomJoined, .message,
        .typingStart, .typingStop, .presenceUpdate, .ping, .pong, .error,
    ]

    public var isStandard: Bool { Self.standard.contains(self) }

    /// The payload members this type requires, in the order they are checked (see the table above).
    public var requiredPayloadFields: [String] { requirements.map(\.name) }

    /// One required payload member: it must be a string, and non-empty unless `mayBeEmpty`.
    struct Requirement {
        var name: String
        var mayBeEmpty = false
    }

    var requirements: [Requirement] {
        switch self {
        case .auth: return [Requirement(name: "token")]
        case .joinRoom, .leaveRoom, .roomJoined: return [Requirement(name: "room")]
        case .message: return [Requirement(name: "room"), Requirement(name: "content", mayBeEmpty: true)]
        default: return []
        }
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
