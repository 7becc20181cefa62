import Foundation
import Synchronization
import Testing
import WebSocketCodec

@testable import WebSocketServer

/// Message ids 00000000-0000-0000-0000-000000000001, …02, … in order, so every envelope is exact.
private final class SequentialIDs: Sendable {
    private let counter = Atomic<Int>(0)

    func next() -> UUID {
        let n = counter.add(1, ordering: .relaxed).newValue
        let digits = String(n)
        return UUID(uuidString: "00000000-0000-0000-0000-" + String(repeating: "0", count: 12 - digits.count) + digits)!
    }

    static func id(_ n: Int) -> String {
        let digits = String(n)
        return "00000000-0000-0000-0000-" + String(repeating: "0", count: 12 - digits.count) + digits
    }
}

/// 2024-05-01T12:34:56.789Z
private let fixedDate = Date(timeIntervalSince1970: 1_714_566_896.789)
private let fixedTimestamp = "2024-05-01T12:34:56.789Z"

private func makeEngine(
    authenticate: @escaping @Sendable (String) -> Bool = { _ in true }, maxRoomsPerClient: Int = 100
) -> RoomsEngine {
    let ids = SequentialIDs()
    return RoomsEngine(
        authenticate: authenticate, maxRoomsPerClient: maxRoomsPerClient, now: { fixedDate }, makeMessageID: { ids.next() })
}

/// One delivery, decoded, for checking.
private struct Received {
    var recipients: [String]
    var envelope: WebSocketEnvelope

    init(_ delivery: RoomsEngine.Delivery) throws {
        recipients = delivery.recipients
        envelope = try WebSocketEnvelope.parse(delivery.text)
    }

    var type: String { envelope.type }
    var payload: JSONValue { envelope.payload ?? .null }
}

private func decode(_ deliveries: [RoomsEngine.Delivery]) throws -> [Received] {
    try deliveries.map(Received.init)
}

/// An envelope as a client writes it.
private func request(_ type: String, _ payload: JSONValue? = nil, correlationID: String? = nil, extraMetadata: JSONObject = [:]) -> String {
    var object: JSONObject = ["type": .string(type)]
    if let payload { object["payload"] = payload }
    var metadata = extraMetadata
    if let correlationID { metadata["correlation_id"] = .string(correlationID) }
    if !metadata.isEmpty { object["metadata"] = .object(metadata) }
    return JSONValue.object(object).encoded()
}

@Suite struct RoomsTests {
    // MARK: Connect

    @Test func connectGreetsTheNewClientExactly() {
        var engine = makeEngine()
        let deliveries = engine.connect(clientID: "c1")
        #expect(deliveries == [
            RoomsEngine.Delivery(
                recipients: ["c1"],
                text: #"{"type":"connection_established","payload":{"client_id":"c1"},"metadata":{"message_id":"00000000-0000-0000-0000-000000000001","timestamp":"2024-05-01T12:34:56.789Z"}}"#)
        ])
        #expect(engine.connectedClientCount == 1)
    }

    @Test func eachEnvelopeGetsAFreshMessageID() throws {
        var engine = makeEngine()
        let first = try decode(engine.connect(clientID: "c1"))[0]
        let second = try decode(engine.connect(clientID: "c2"))[0]
        #expect(first.envelope.messageID == SequentialIDs.id(1))
        #expect(second.envelope.messageID == SequentialIDs.id(2))
        #expect(second.envelope.metadata?.timestamp == fixedTimestamp)
    }

    // MARK: Join

    @Test func joiningAnEmptyRoom() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let out = try decode(engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"], correlationID: "k1")))
        #expect(out.count == 1)
        #expect(out[0].recipients == ["c1"])
        #expect(out[0].type == "room_joined")
        #expect(out[0].payload == ["room": "r1", "members": ["c1"]])
        #expect(out[0].envelope.correlationID == "k1")
        #expect(engine.members(of: "r1") == ["c1"])
        #expect(engine.rooms(of: "c1") == ["r1"])
    }

    @Test func joiningTellsTheOtherMembers() throws {
        var engine = makeEngine()
        for id in ["c1", "c2", "c3"] { _ = engine.connect(clientID: id) }
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"]))
        _ = engine.receive(clientID: "c2", text: request("join_room", ["room": "r1"]))
        let out = try decode(engine.receive(clientID: "c3", text: request("join_room", ["room": "r1"], correlationID: "k3")))
        #expect(out.count == 2)
        #expect(out[0].recipients == ["c3"])
        #expect(out[0].type == "room_joined")
        #expect(out[0].payload == ["room": "r1", "members": ["c1", "c2", "c3"]])
        #expect(out[0].envelope.correlationID == "k3")
        #expect(out[1].recipients == ["c1", "c2"])
        #expect(out[1].type == "presence_update")
        #expect(out[1].payload == ["room": "r1", "client_id": "c3", "status": "joined"])
        // The presence update is not a reply to c1 or c2.
        #expect(out[1].envelope.correlationID == nil)
    }

    @Test func joiningTwiceAnswersAgainWithoutANewPresenceUpdate() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        _ = engine.connect(clientID: "c2")
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"]))
        _ = engine.receive(clientID: "c2", text: request("join_room", ["room": "r1"]))
        let out = try decode(engine.receive(clientID: "c2", text: request("join_room", ["room": "r1"])))
        #expect(out.count == 1)
        #expect(out[0].type == "room_joined")
        #expect(out[0].payload == ["room": "r1", "members": ["c1", "c2"]])
        #expect(engine.members(of: "r1") == ["c1", "c2"])
        #expect(engine.rooms(of: "c2") == ["r1"])
    }

    @Test func roomsPerClientAreBounded() throws {
        var engine = makeEngine(maxRoomsPerClient: 2)
        _ = engine.connect(clientID: "c1")
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "a"]))
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "b"]))
        let out = try decode(engine.receive(clientID: "c1", text: request("join_room", ["room": "c"], correlationID: "k")))
        #expect(out.count == 1)
        #expect(out[0].type == "error")
        #expect(out[0].payload["code"] == "too_many_rooms")
        #expect(out[0].envelope.correlationID == "k")
        #expect(engine.rooms(of: "c1") == ["a", "b"])
        #expect(engine.members(of: "c").isEmpty)
        // Leaving one makes room again.
        _ = engine.receive(clientID: "c1", text: request("leave_room", ["room": "a"]))
        #expect(try decode(engine.receive(clientID: "c1", text: request("join_room", ["room": "c"])))[0].type == "room_joined")
    }

    // MARK: Messages

    @Test func messageGoesToEveryMemberIncludingTheSenderAsOneDelivery() throws {
        var engine = makeEngine()
        for id in ["c1", "c2", "c3", "c4"] { _ = engine.connect(clientID: id) }
        for id in ["c1", "c2", "c3"] { _ = engine.receive(clientID: id, text: request("join_room", ["room": "r1"])) }
        _ = engine.receive(clientID: "c4", text: request("join_room", ["room": "r2"]))
        let before = try decode(engine.connect(clientID: "probe"))[0].envelope.messageID
        let text = request(
            "message", ["room": "r1", "content": "hi", "extra": 1], correlationID: "abc",
            extraMetadata: ["client_id": "spoofed", "message_id": "client-chosen", "timestamp": "2000-01-01T00:00:00Z"])
        let deliveries = engine.receive(clientID: "c2", text: text)
        #expect(deliveries.count == 1)
        let out = try decode(deliveries)[0]
        #expect(out.recipients == ["c1", "c2", "c3"])
        #expect(out.type == "message")
        #expect(out.payload == ["room": "r1", "content": "hi", "extra": 1])
        // The server says who sent it, and stamps it itself.
        #expect(out.envelope.clientID == "c2")
        #expect(out.envelope.correlationID == "abc")
        #expect(out.envelope.messageID != "client-chosen")
        #expect(out.envelope.messageID == SequentialIDs.id(Int(before!.suffix(12))! + 1))
        #expect(out.envelope.metadata?.timestamp == fixedTimestamp)
    }

    @Test func messageWithoutCorrelationIDHasNone() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"]))
        let out = try decode(engine.receive(clientID: "c1", text: request("message", ["room": "r1", "content": ""])))
        #expect(out[0].envelope.correlationID == nil)
        #expect(out[0].recipients == ["c1"])
    }

    @Test func messageToARoomTheSenderIsNotInIsAnError() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        _ = engine.connect(clientID: "c2")
        _ = engine.receive(clientID: "c2", text: request("join_room", ["room": "r1"]))
        for room in ["r1", "nowhere"] {
            let out = try decode(engine.receive(clientID: "c1", text: request("message", ["room": .string(room), "content": "x"], correlationID: "m1")))
            #expect(out.count == 1)
            #expect(out[0].recipients == ["c1"])
            #expect(out[0].type == "error")
            #expect(out[0].payload["code"] == "not_in_room")
            #expect(out[0].payload["message"]?.stringValue?.contains(room) == true)
            #expect(out[0].envelope.correlationID == "m1")
        }
    }

    // MARK: Typing

    @Test(arguments: ["typing_start", "typing_stop"])
    func typingGoesToTheOtherMembers(type: String) throws {
        var engine = makeEngine()
        for id in ["c1", "c2", "c3"] { _ = engine.connect(clientID: id) }
        for id in ["c1", "c2", "c3"] { _ = engine.receive(clientID: id, text: request("join_room", ["room": "r1"])) }
        let out = try decode(engine.receive(clientID: "c2", text: request(type, ["room": "r1"], correlationID: "t")))
        #expect(out.count == 1)
        #expect(out[0].recipients == ["c1", "c3"])
        #expect(out[0].type == type)
        #expect(out[0].payload == ["room": "r1"])
        #expect(out[0].envelope.clientID == "c2")
    }

    @Test func typingAloneInARoomSendsNothing() {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"]))
        #expect(engine.receive(clientID: "c1", text: request("typing_start", ["room": "r1"])).isEmpty)
    }

    @Test func typingErrors() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let notMember = try decode(engine.receive(clientID: "c1", text: request("typing_start", ["room": "r1"])))
        #expect(notMember.map(\.type) == ["error"])
        #expect(notMember[0].payload["code"] == "not_in_room")
        for payload: JSONValue? in [nil, [:], ["room": ""], ["room": 5]] {
            let out = try decode(engine.receive(clientID: "c1", text: request("typing_stop", payload, correlationID: "p")))
            #expect(out.map(\.type) == ["error"])
            #expect(out[0].payload["code"] == "invalid_payload")
            #expect(out[0].envelope.correlationID == "p")
        }
    }

    // MARK: Leave and disconnect

    @Test func leavingConfirmsAndTellsTheRest() throws {
        var engine = makeEngine()
        for id in ["c1", "c2", "c3"] { _ = engine.connect(clientID: id) }
        for id in ["c1", "c2", "c3"] { _ = engine.receive(clientID: id, text: request("join_room", ["room": "r1"])) }
        let out = try decode(engine.receive(clientID: "c2", text: request("leave_room", ["room": "r1"], correlationID: "l")))
        #expect(out.count == 2)
        #expect(out[0].recipients == ["c2"])
        #expect(out[0].type == "room_left")
        #expect(out[0].payload == ["room": "r1"])
        #expect(out[0].envelope.correlationID == "l")
        #expect(out[1].recipients == ["c1", "c3"])
        #expect(out[1].type == "presence_update")
        #expect(out[1].payload == ["room": "r1", "client_id": "c2", "status": "left"])
        #expect(engine.members(of: "r1") == ["c1", "c3"])
        #expect(engine.rooms(of: "c2").isEmpty)
        // A message after leaving is refused.
        let after = try decode(engine.receive(clientID: "c2", text: request("message", ["room": "r1", "content": "x"])))
        #expect(after[0].payload["code"] == "not_in_room")
    }

    @Test func lastOneOutForgetsTheRoom() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"]))
        #expect(engine.roomCount == 1)
        let out = try decode(engine.receive(clientID: "c1", text: request("leave_room", ["room": "r1"])))
        #expect(out.map(\.type) == ["room_left"])
        #expect(engine.roomCount == 0)
    }

    @Test func leavingARoomNotJoinedIsAnError() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let out = try decode(engine.receive(clientID: "c1", text: request("leave_room", ["room": "r9"])))
        #expect(out.map(\.type) == ["error"])
        #expect(out[0].payload["code"] == "not_in_room")
    }

    @Test func disconnectTellsEveryRoomsRemainingMembers() throws {
        var engine = makeEngine()
        for id in ["c1", "c2", "c3"] { _ = engine.connect(clientID: id) }
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "a"]))
        _ = engine.receive(clientID: "c2", text: request("join_room", ["room": "a"]))
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "b"]))
        _ = engine.receive(clientID: "c3", text: request("join_room", ["room": "b"]))
        _ = engine.receive(clientID: "c2", text: request("join_room", ["room": "b"]))
        _ = engine.receive(clientID: "c1", text: request("join_room", ["room": "solo"]))
        let out = try decode(engine.disconnect(clientID: "c1"))
        #expect(out.count == 2)
        #expect(out[0].recipients == ["c2"])
        #expect(out[0].payload == ["room": "a", "client_id": "c1", "status": "left"])
        #expect(out[1].recipients == ["c3", "c2"])
        #expect(out[1].payload == ["room": "b", "client_id": "c1", "status": "left"])
        let allPresence = out.allSatisfy { $0.type == "presence_update" }
        #expect(allPresence, "\(out.map(\.type))")
        #expect(engine.members(of: "a") == ["c2"])
        #expect(engine.members(of: "solo").isEmpty)
        #expect(engine.roomCount == 2)
        #expect(engine.connectedClientCount == 2)
        // Gone: further input from it is ignored, a second disconnect says nothing.
        #expect(engine.receive(clientID: "c1", text: request("ping")).isEmpty)
        #expect(engine.disconnect(clientID: "c1").isEmpty)
    }

    @Test func unknownClientsAreIgnored() {
        var engine = makeEngine()
        #expect(engine.receive(clientID: "ghost", text: request("ping")).isEmpty)
        #expect(engine.disconnect(clientID: "ghost").isEmpty)
    }

    // MARK: Ping, unknown and malformed

    @Test func pingIsAnsweredWithPongAndTheSamePayload() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let out = try decode(engine.receive(clientID: "c1", text: request("ping", ["sent_at": 12345], correlationID: "p1")))
        #expect(out.count == 1)
        #expect(out[0].recipients == ["c1"])
        #expect(out[0].type == "pong")
        #expect(out[0].payload == ["sent_at": 12345])
        #expect(out[0].envelope.correlationID == "p1")
        let bare = try decode(engine.receive(clientID: "c1", text: #"{"type":"ping"}"#))
        #expect(bare[0].type == "pong")
        #expect(bare[0].envelope.correlationID == nil)
    }

    @Test(arguments: ["dance", "pong", "room_joined", "presence_update", "error", "connection_established"])
    func unhandledTypesGetUnknownType(type: String) throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let out = try decode(engine.receive(clientID: "c1", text: request(type, ["room": "r"], correlationID: "u")))
        #expect(out.count == 1)
        #expect(out[0].recipients == ["c1"])
        #expect(out[0].type == "error")
        #expect(out[0].payload["code"] == "unknown_type")
        #expect(out[0].payload["message"]?.stringValue?.contains(type) == true)
        #expect(out[0].envelope.correlationID == "u")
    }

    @Test(arguments: [
        ("not json", "not-json", nil as String?),
        ("", "not-json", nil),
        ("[1,2]", "not-an-object", nil),
        (#"{"payload":{}}"#, "missing-type", "type"),
        (#"{"type":""}"#, "invalid-type", "type"),
        (#"{"type":"message","payload":"hi"}"#, "invalid-payload", "payload"),
        (#"{"type":"join_room","payload":{}}"#, "missing-payload-field", "payload.room"),
        (#"{"type":"message","payload":{"room":"r1"}}"#, "missing-payload-field", "payload.content"),
        (#"{"type":"auth","payload":{"token":7}}"#, "invalid-payload-field", "payload.token"),
        (#"{"type":"ping","metadata":{"timestamp":"yesterday"}}"#, "invalid-timestamp", "metadata.timestamp"),
    ])
    func malformedEnvelopesGetAnErrorAndTheConnectionStays(text: String, reason: String, path: String?) throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let out = try decode(engine.receive(clientID: "c1", text: text))
        #expect(out.count == 1)
        #expect(out[0].recipients == ["c1"])
        #expect(out[0].type == "error")
        #expect(out[0].payload["code"] == "invalid_envelope")
        #expect(out[0].payload["reason"]?.stringValue == reason)
        #expect(out[0].payload["path"]?.stringValue == path)
        #expect(out[0].payload["message"]?.stringValue?.isEmpty == false)
        // Still connected and served.
        #expect(try decode(engine.receive(clientID: "c1", text: request("ping")))[0].type == "pong")
    }

    @Test func malformedEnvelopeStillCarriesItsCorrelationID() throws {
        var engine = makeEngine()
        _ = engine.connect(clientID: "c1")
        let text = #"{"type":"join_room","payload":{"room":""},"metadata":{"correlation_id":"k9"}}"#
        let out = try decode(engine.receive(clientID: "c1", text: text))
        #expect(out[0].payload["code"] == "invalid_envelope")
        #expect(out[0].payload["path"] == "payload.room")
        #expect(out[0].envelope.correlationID == "k9")
    }

    // MARK: Auth

    @Test func authAnswersWithTheTokenCheck() throws {
        var engine = makeEngine(authenticate: { $0 == "good" })
        _ = engine.connect(clientID: "c1")
        let good = try decode(engine.receive(clientID: "c1", text: request("auth", ["token": "good"], correlationID: "a1")))
        #expect(good.count == 1)
        #expect(good[0].recipients == ["c1"])
        #expect(good[0].type == "auth_response")
        #expect(good[0].payload["success"] == true)
        #expect(good[0].envelope.correlationID == "a1")
        let bad = try decode(engine.receive(clientID: "c1", text: request("auth", ["token": "bad"], correlationID: "a2")))
        #expect(bad[0].type == "auth_response")
        #expect(bad[0].payload["success"] == false)
        #expect(bad[0].envelope.correlationID == "a2")
    }

    @Test func unauthenticatedClientsMustAuthFirst() throws {
        var engine = makeEngine(authenticate: { $0 == "good" })
        _ = engine.connect(clientID: "c1", authenticated: false)
        for text in [
            request("join_room", ["room": "r1"]), request("leave_room", ["room": "r1"]),
            request("message", ["room": "r1", "content": "x"]), request("typing_start", ["room": "r1"]),
        ] {
            let out = try decode(engine.receive(clientID: "c1", text: text))
            #expect(out[0].payload["code"] == "auth_required", "\(text)")
        }
        #expect(engine.members(of: "r1").isEmpty)
        // ping works without auth; a failed auth changes nothing; a good one opens the door.
        #expect(try decode(engine.receive(clientID: "c1", text: request("ping")))[0].type == "pong")
        _ = engine.receive(clientID: "c1", text: request("auth", ["token": "bad"]))
        #expect(try decode(engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"])))[0].payload["code"] == "auth_required")
        _ = engine.receive(clientID: "c1", text: request("auth", ["token": "good"]))
        #expect(try decode(engine.receive(clientID: "c1", text: request("join_room", ["room": "r1"])))[0].type == "room_joined")
    }

    // MARK: Errors for the handler

    @Test func errorEnvelopeForTheHandler() {
        let text = RoomsEngine.errorEnvelope(
            code: "binary_not_supported", message: "text only", correlationID: "c",
            messageID: UUID(uuidString: SequentialIDs.id(7))!, timestamp: fixedDate)
        #expect(text == #"{"type":"error","payload":{"code":"binary_not_supported","message":"text only"},"metadata":{"message_id":"00000000-0000-0000-0000-000000000007","timestamp":"2024-05-01T12:34:56.789Z","correlation_id":"c"}}"#)
    }

    /// Every envelope the engine writes passes the codec's own validation.
    @Test func everythingWrittenIsAValidEnvelope() throws {
        var engine = makeEngine()
        var all: [RoomsEngine.Delivery] = []
        for id in ["c1", "c2"] { all += engine.connect(clientID: id) }
        for id in ["c1", "c2"] { all += engine.receive(clientID: id, text: request("join_room", ["room": "r"])) }
        all += engine.receive(clientID: "c1", text: request("message", ["room": "r", "content": "é \"quoted\" \n"]))
        all += engine.receive(clientID: "c1", text: request("typing_start", ["room": "r"]))
        all += engine.receive(clientID: "c1", text: "garbage")
        all += engine.receive(clientID: "c1", text: request("leave_room", ["room": "r"]))
        all += engine.disconnect(clientID: "c2")
        #expect(all.count == 10)
        for delivery in all {
            let envelope = try WebSocketEnvelope.parse(delivery.text)
            #expect(envelope.metadata?.messageID != nil)
            #expect(envelope.metadata?.timestamp == fixedTimestamp)
        }
    }
}
