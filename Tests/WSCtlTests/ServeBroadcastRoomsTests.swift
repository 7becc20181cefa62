import Foundation
import Testing

@Suite("wsctl serve --mode broadcast with Python websockets", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeBroadcastTests {
    static let all = ["from 0", "from 1", "from 2", "from 3", "from 4"]

    @Test func everyClientGetsEveryMessage() throws {
        try withServer(["--mode", "broadcast"]) { server in
            let r = try Interop.websockets(server.url, "broadcast", ["clients": 5])
            let received = r["received"].array.map(\.strings)
            #expect(received.count == 5)
            for (i, messages) in received.enumerated() {
                #expect(messages == Self.all, "client \(i)")
            }
        }
    }

    @Test func noEchoSelfLeavesOutTheSender() throws {
        try withServer(["--mode", "broadcast", "--no-echo-self"]) { server in
            let r = try Interop.websockets(server.url, "broadcast", ["clients": 5, "no_echo_self": true])
            let received = r["received"].array.map(\.strings)
            #expect(received.count == 5)
            for (i, messages) in received.enumerated() {
                let fromOthers = Self.all.filter { $0 != "from \(i)" }
                #expect(messages == fromOthers, "client \(i)")
            }
        }
    }
}

/// The JSON envelope chat-room protocol (DESIGN.md), as a Python client sees it.
@Suite("wsctl serve --mode rooms with Python websockets", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeRoomsTests {
    func rooms(_ scenario: String) throws -> JSON {
        try withServer(["--mode", "rooms"]) { server in try Interop.websockets(server.url, scenario) }
    }

    @Test func connectionEstablishedCarriesTheClientID() throws {
        let r = try rooms("rooms_connect")
        #expect(r["hello"]["type"].string == "connection_established")
        let first = try #require(r["hello"]["payload"]["client_id"].string)
        let second = try #require(r["other_hello"]["payload"]["client_id"].string)
        #expect(!first.isEmpty)
        #expect(first != second)
        #expect(r["hello"]["metadata"]["message_id"].string != nil)
        #expect(r["hello"]["metadata"]["timestamp"].string != nil)
    }

    @Test func joinRoomAnswersRoomJoinedAndTellsTheOthers() throws {
        let r = try rooms("rooms_join")
        let a = try #require(r["a_id"].string), b = try #require(r["b_id"].string)
        #expect(r["a_join"]["type"].string == "room_joined")
        #expect(r["a_join"]["payload"]["room"].string == "r1")
        #expect(r["a_join"]["payload"]["members"].strings == [a])
        #expect(r["b_join"]["type"].string == "room_joined")
        #expect(r["b_join"]["payload"]["members"].strings == [a, b])
        #expect(r["b_join"]["metadata"]["correlation_id"].string == "join-b")
        let presence = r["a_after"].array
        #expect(presence.count == 1, "\(r["a_after"])")
        #expect(presence.first?["type"].string == "presence_update")
        #expect(presence.first?["payload"]["room"].string == "r1")
        #expect(presence.first?["payload"]["client_id"].string == b)
        #expect(presence.first?["payload"]["status"].string == "joined")
        #expect(r["b_after"].array.isEmpty, "the joiner gets no presence_update about itself: \(r["b_after"])")
    }

    @Test func messageGoesToTheRoomMembersOnly() throws {
        let r = try rooms("rooms_message")
        let sender = try #require(r["a_id"].string)
        for member in ["a", "b"] {
            let got = r[member].array
            #expect(got.count == 1, "\(member): \(r[member])")
            #expect(got.first?["type"].string == "message")
            #expect(got.first?["payload"]["room"].string == "r1")
            #expect(got.first?["payload"]["content"].string == "hi room")
            #expect(got.first?["metadata"]["client_id"].string == sender)
            #expect(got.first?["metadata"]["correlation_id"].string == "corr-msg")
        }
        #expect(r["c"].array.isEmpty, "a client in another room got \(r["c"])")
    }

    @Test func typingStartGoesToTheOtherMembers() throws {
        let r = try rooms("rooms_typing")
        let typist = try #require(r["a_id"].string)
        let got = r["b"].array
        #expect(got.count == 1, "\(r["b"])")
        #expect(got.first?["type"].string == "typing_start")
        #expect(got.first?["payload"]["room"].string == "r1")
        #expect(got.first?["metadata"]["client_id"].string == typist)
        #expect(r["a"].array.isEmpty, "the typist got \(r["a"])")
    }

    @Test func leaveRoomAnswersAndTellsTheRest() throws {
        let r = try rooms("rooms_leave")
        let leaver = try #require(r["b_id"].string)
        #expect(r["b_reply"]["type"].string == "room_left")
        #expect(r["b_reply"]["payload"]["room"].string == "r1")
        #expect(r["b_reply"]["metadata"]["correlation_id"].string == "corr-leave")
        let presence = r["a_after"].array
        #expect(presence.count == 1, "\(r["a_after"])")
        #expect(presence.first?["type"].string == "presence_update")
        #expect(presence.first?["payload"]["client_id"].string == leaver)
        #expect(presence.first?["payload"]["status"].string == "left")
        // After leaving, the room's messages no longer reach it.
        let echoTypes = r["a_echo"].array.map { $0["type"].string }
        #expect(echoTypes == ["message"])
        #expect(r["b_after"].array.isEmpty, "\(r["b_after"])")
    }

    @Test func pingIsAnsweredWithPongEchoingTheCorrelationID() throws {
        let r = try rooms("rooms_ping")
        #expect(r["reply"]["type"].string == "pong")
        #expect(r["reply"]["metadata"]["correlation_id"].string == "corr-ping-1")
        #expect(r["reply"]["payload"]["t"].int == 42)
    }

    @Test func malformedEnvelopeGetsAnErrorAndTheConnectionStaysOpen() throws {
        let r = try rooms("rooms_malformed")
        let replies = r["replies"].array
        #expect(replies.count == 2)
        for reply in replies {
            #expect(reply["type"].string == "error")
            #expect(reply["payload"]["code"].string == "invalid_envelope")
            #expect(!(reply["payload"]["message"].string ?? "").isEmpty)
        }
        #expect(replies.last?["payload"]["path"].string == "payload.room")
        #expect(replies.last?["metadata"]["correlation_id"].string == "corr-bad")
        #expect(r["after"]["type"].string == "pong")
        #expect(r["after"]["metadata"]["correlation_id"].string == "corr-after")
        #expect(r["closed_by_server"].bool == false)
    }
}
