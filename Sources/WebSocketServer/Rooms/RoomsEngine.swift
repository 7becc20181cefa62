#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WebSocketCodec

/// The chat-room protocol of `wsctl serve --mode rooms` (DESIGN.md, "The JSON message envelope"),
/// without I/O: the connection handler feeds it connects, disconnects and text messages, and sends
/// each returned `Delivery` as one text message to its recipients. Every envelope is encoded once,
/// however many clients receive it.
///
/// Not thread-safe: keep one engine per server behind a lock (`Mutex<RoomsEngine>`), and send the
/// deliveries after releasing it.
///
/// ## Messages
///
/// Every envelope the engine writes has a fresh `metadata.message_id` and `metadata.timestamp`;
/// a reply to a request also carries the request's `metadata.correlation_id` when it had one, and
/// so do the messages a request fans out (`message`, `typing_start`, `typing_stop`).
///
/// Server to a client, unprompted:
///
/// | type | when | payload |
/// |---|---|---|
/// | `connection_established` | on connect, to the new client | `{"client_id": id}` |
/// | `presence_update` | a member joined, left or disconnected; to the room's other members | `{"room", "client_id", "status": "joined" \| "left"}` |
///
/// Client requests and what they cause:
///
/// | request | payload | reply to the sender | to others |
/// |---|---|---|---|
/// | `auth` | `{"token"}` | `auth_response` `{"success": true}`, or `{"success": false, "message"}` | — |
/// | `join_room` | `{"room"}` | `room_joined` `{"room", "members": [ids in join order, the sender included]}` | `presence_update` `joined` to the other members |
/// | `leave_room` | `{"room"}` | `room_left` `{"room"}` (an application type) | `presence_update` `left` to the remaining members |
/// | `message` | `{"room", "content", …}` | the message itself, as every member gets it | `message` with the sender's payload unchanged and `metadata.client_id` = the sender, to every member |
/// | `typing_start`, `typing_stop` | `{"room", …}` | — | the same type, payload unchanged, `metadata.client_id` = the sender, to the other members |
/// | `ping` | anything | `pong` with the ping's payload, so a client can time round trips | — |
///
/// Joining a room twice answers `room_joined` again without a second `presence_update`.
///
/// Errors go to the sender only, as `error` `{"code", "message"}`, and never close the connection:
///
/// | code | cause |
/// |---|---|
/// | `invalid_envelope` | not JSON, or not a valid envelope (`WebSocketEnvelope.parse`); the payload adds `reason` (the envelope error code, such as `missing-payload-field`) and `path` (such as `payload.room`) when known |
/// | `unknown_type` | a type the server does not handle, including the server's own reply types |
/// | `invalid_payload` | `typing_start`/`typing_stop` without a non-empty string `room` |
/// | `not_in_room` | `message`, `typing_*` or `leave_room` for a room the sender has not joined |
/// | `too_many_rooms` | a join beyond `maxRoomsPerClient` |
/// | `auth_required` | a client connected as unauthenticated sent anything but `auth` or `ping` |
public struct RoomsEngine: Sendable {
    /// One encoded envelope and the clients to send it to.
    public struct Delivery: Hashable, Sendable {
        /// Client ids, in a stable order (join order for a room's members).
        public var recipients: [String]
        /// The envelope as JSON text, ready to send as one text message.
        public var text: String

        public init(recipients: [String], text: String) {
            self.recipients = recipients
            self.text = text
        }
    }

    /// The `code` values of `error` envelopes.
    public enum ErrorCode {
        public static let invalidEnvelope = "invalid_envelope"
        public static let unknownType = "unknown_type"
        public static let invalidPayload = "invalid_payload"
        public static let notInRoom = "not_in_room"
        public static let tooManyRooms = "too_many_rooms"
        public static let authRequired = "auth_required"
        /// For the connection handler: rooms mode reads text messages only.
        public static let binaryNotSupported = "binary_not_supported"
    }

    /// The reply to `leave_room`; not one of DESIGN.md's standard types, which have none for it.
    public static let roomLeftType = WebSocketEnvelopeType("room_left")

    /// Rooms one client may be in at once. Bounds the memory one client can make the server hold;
    /// 100 is more than a chat client shows and small next to a connection's buffers.
    public let maxRoomsPerClient: Int

    private let authenticate: @Sendable (String) -> Bool
    private let now: @Sendable () -> Date
    private let makeMessageID: @Sendable () -> UUID

    private struct Client {
        var authenticated: Bool
        /// Rooms in the order joined.
        var rooms: [String] = []
    }

    private struct Room {
        /// Members in the order joined.
        var members: [String] = []
        var memberSet: Set<String> = []
    }

    private var clients: [String: Client] = [:]
    private var rooms: [String: Room] = [:]

    /// - Parameters:
    ///   - authenticate: whether an `auth` message's token is good (`AuthPolicy.accepts(token:)`).
    ///   - maxRoomsPerClient: see the property.
    ///   - now: the clock for `metadata.timestamp`.
    ///   - makeMessageID: the generator for `metadata.message_id`.
    public init(
        authenticate: @escaping @Sendable (String) -> Bool = { _ in true },
        maxRoomsPerClient: Int = 100,
        now: @escaping @Sendable () -> Date = { Date() },
        makeMessageID: @escaping @Sendable () -> UUID = { UUID() }
    ) {
        self.authenticate = authenticate
        self.maxRoomsPerClient = maxRoomsPerClient
        self.now = now
        self.makeMessageID = makeMessageID
    }

    // MARK: - Reading the state

    /// Members of `room` in join order; empty for a room nobody is in.
    public func members(of room: String) -> [String] { rooms[room]?.members ?? [] }

    /// The rooms `clientID` is in, in join order.
    public func rooms(of clientID: String) -> [String] { clients[clientID]?.rooms ?? [] }

    public var connectedClientCount: Int { clients.count }
    public var roomCount: Int { rooms.count }

    // MARK: - Events

    /// A client connected: registers it and greets it with `connection_established`.
    /// - Parameter authenticated: false when the handshake did not authenticate the client and it must
    ///   send a good `auth` before it may join or post (`auth_required` otherwise). The server
    ///   authenticates at the upgrade, so its connections start authenticated.
    public mutating func connect(clientID: String, authenticated: Bool = true) -> [Delivery] {
        if clients[clientID] == nil {
            clients[clientID] = Client(authenticated: authenticated)
        }
        let greeting = make(.connectionEstablished, payload: ["client_id": .string(clientID)], correlationID: nil)
        return [Delivery(recipients: [clientID], text: greeting)]
    }

    /// A client went away: it leaves every room, and each room's remaining members get a
    /// `presence_update` with status `left`.
    public mutating func disconnect(clientID: String) -> [Delivery] {
        guard let client = clients.removeValue(forKey: clientID) else { return [] }
        var deliveries: [Delivery] = []
        for room in client.rooms {
            let remaining = removeMember(clientID, from: room)
            if !remaining.isEmpty {
                deliveries.append(Delivery(recipients: remaining, text: presence(room: room, clientID: clientID, status: "left")))
            }
        }
        return deliveries
    }

    /// A text message from a client. Returns nothing for a client that is not connected.
    public mutating func receive(clientID: String, text: String) -> [Delivery] {
        guard let client = clients[clientID] else { return [] }
        let envelope: WebSocketEnvelope
        do {
            envelope = try WebSocketEnvelope.parse(text)
        } catch {
            var payload: JSONObject = ["code": .string(ErrorCode.invalidEnvelope), "message": .string(error.message)]
            payload["reason"] = .string(error.code.rawValue)
            if let path = error.path { payload["path"] = .string(path) }
            let reply = make(.error, payload: .object(payload), correlationID: Self.correlationID(inInvalid: text, error))
            return [Delivery(recipients: [clientID], text: reply)]
        }
        let correlationID = envelope.correlationID
        func reply(_ type: WebSocketEnvelopeType, _ payload: JSONValue) -> [Delivery] {
            [Delivery(recipients: [clientID], text: make(type, payload: payload, correlationID: correlationID))]
        }
        func error(_ code: String, _ message: String) -> [Delivery] {
            reply(.error, ["code": .string(code), "message": .string(message)])
        }
        let type = envelope.envelopeType
        let gated: Set<WebSocketEnvelopeType> = [.joinRoom, .leaveRoom, .message, .typingStart, .typingStop]
        if !client.authenticated && gated.contains(type) {
            return error(ErrorCode.authRequired, "send an auth message with a valid token first")
        }
        // `parse` has checked the required members: `token` for auth, `room` for join/leave/message.
        let room = envelope.payload?["room"]?.stringValue ?? ""
        switch type {
        case .auth:
            let token = envelope.payload?["token"]?.stringValue ?? ""
            if authenticate(token) {
                clients[clientID]?.authenticated = true
                return reply(.authResponse, ["success": true])
            }
            return reply(.authResponse, ["success": false, "message": "invalid token"])

        case .joinRoom:
            if rooms[room]?.memberSet.contains(clientID) == true {
                return reply(.roomJoined, ["room": .string(room), "members": .array(members(of: room).map { .string($0) })])
            }
            guard client.rooms.count < maxRoomsPerClient else {
                return error(ErrorCode.tooManyRooms, "already in \(client.rooms.count) rooms, the most one client may join; leave one first")
            }
            let others = members(of: room)
            rooms[room, default: Room()].members.append(clientID)
            rooms[room, default: Room()].memberSet.insert(clientID)
            clients[clientID]?.rooms.append(room)
            var deliveries = reply(.roomJoined, ["room": .string(room), "members": .array(members(of: room).map { .string($0) })])
            if !others.isEmpty {
                deliveries.append(Delivery(recipients: others, text: presence(room: room, clientID: clientID, status: "joined")))
            }
            return deliveries

        case .leaveRoom:
            guard rooms[room]?.memberSet.contains(clientID) == true else {
                return error(ErrorCode.notInRoom, "not in room \"\(room)\"")
            }
            let remaining = removeMember(clientID, from: room)
            clients[clientID]?.rooms.removeAll { $0 == room }
            var deliveries = reply(Self.roomLeftType, ["room": .string(room)])
            if !remaining.isEmpty {
                deliveries.append(Delivery(recipients: remaining, text: presence(room: room, clientID: clientID, status: "left")))
            }
            return deliveries

        case .message:
            guard let entry = rooms[room], entry.memberSet.contains(clientID) else {
                return error(ErrorCode.notInRoom, "join room \"\(room)\" before sending messages to it")
            }
            let text = make(.message, payload: envelope.payload ?? [:], correlationID: correlationID, clientID: clientID)
            return [Delivery(recipients: entry.members, text: text)]

        case .typingStart, .typingStop:
            guard let name = envelope.payload?["room"]?.stringValue, !name.isEmpty else {
                return error(ErrorCode.invalidPayload, "\(type) requires payload.room, a non-empty string")
            }
            guard let entry = rooms[name], entry.memberSet.contains(clientID) else {
                return error(ErrorCode.notInRoom, "not in room \"\(name)\"")
            }
            let others = entry.members.filter { $0 != clientID }
            guard !others.isEmpty else { return [] }
            let text = make(type, payload: envelope.payload ?? [:], correlationID: correlationID, clientID: clientID)
            return [Delivery(recipients: others, text: text)]

        case .ping:
            return reply(.pong, envelope.payload ?? [:])

        default:
            let accepted = "auth, join_room, leave_room, message, typing_start, typing_stop, ping"
            let what = Self.serverTypes.contains(type) ? "is sent by the server, not accepted from clients" : "is not a type this server handles"
            return error(ErrorCode.unknownType, "\"\(envelope.type)\" \(what); send one of \(accepted)")
        }
    }

    /// An `error` envelope as text, for the connection handler's own errors (such as a binary
    /// message in rooms mode), stamped with the current time and a fresh id unless given.
    public static func errorEnvelope(
        code: String, message: String, correlationID: String? = nil, messageID: UUID = UUID(), timestamp: Date = Date()
    ) -> String {
        WebSocketEnvelope.make(
            type: .error, payload: ["code": .string(code), "message": .string(message)], correlationID: correlationID,
            messageID: messageID, timestamp: timestamp
        ).encoded()
    }

    // MARK: - Helpers

    private static let serverTypes: Set<WebSocketEnvelopeType> = [
        .authResponse, .connectionEstablished, .roomJoined, .presenceUpdate, .pong, .error, roomLeftType,
    ]

    private func make(
        _ type: WebSocketEnvelopeType, payload: JSONValue, correlationID: String?, clientID: String? = nil
    ) -> String {
        WebSocketEnvelope.make(
            type: type, payload: payload, correlationID: correlationID, clientID: clientID,
            messageID: makeMessageID(), timestamp: now()
        ).encoded()
    }

    private func presence(room: String, clientID: String, status: String) -> String {
        make(.presenceUpdate, payload: ["room": .string(room), "client_id": .string(clientID), "status": .string(status)], correlationID: nil)
    }

    /// Removes a member and returns the members left; a room left empty is forgotten.
    private mutating func removeMember(_ clientID: String, from room: String) -> [String] {
        guard var entry = rooms[room] else { return [] }
        entry.members.removeAll { $0 == clientID }
        entry.memberSet.remove(clientID)
        rooms[room] = entry.members.isEmpty ? nil : entry
        return entry.members
    }

    /// The `metadata.correlation_id` of text that is JSON but not a valid envelope, so that even an
    /// error reply can be paired with its request. Costs a second parse, on the error path only.
    private static func correlationID(inInvalid text: String, _ error: WebSocketEnvelopeError) -> String? {
        guard error.code != .notJSON, error.code != .notAnObject,
            let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        else { return nil }
        return value["metadata"]?["correlation_id"]?.stringValue
    }
}
