import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// `wsctl serve --script`: the example scripts (Fixtures/scripts), test scripts for every part of the
// API (Fixtures/scripts/tests), the hostile scripts and SIGHUP reload, each against the real binary
// and driven by Python `websockets` (Tests/Interop/script_client.py, several connections per plan).

/// Script files and the plan-driven client.
enum Scripted {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/scripts")

    static func path(_ name: String) -> String { scripts.appendingPathComponent(name).path }

    /// A server running `script` (a path under Fixtures/scripts, or an absolute one).
    static func withScript<R>(_ script: String, _ flags: [String] = [], _ body: (ServeProcess) throws -> R) throws -> R {
        let file = script.hasPrefix("/") ? script : path(script)
        return try withServer(["--script", file] + flags, body)
    }

    static func startPlan(_ url: String, _ steps: [[String: Any]], deadline: Double = 40) throws -> ChildProcess {
        let data = try JSONSerialization.data(withJSONObject: ["steps": steps, "deadline": deadline], options: [.sortedKeys])
        return try Interop.start(Interop.python, [Interop.directory.appendingPathComponent("script_client.py").path, url,
                                                  String(decoding: data, as: UTF8.self)])
    }

    /// Runs a plan to its end; fails the test with the client's account if a step failed.
    static func plan(_ url: String, _ steps: [[String: Any]], deadline: Double = 40) throws -> ScriptPlan {
        ScriptPlan(try Interop.finish(try startPlan(url, steps, deadline: deadline), "script_client.py", timeout: deadline + 5))
    }

    /// Waits for the client to reach `pause` step `label`, lets `action` act on the server, then lets
    /// the client go on.
    static func atPause(_ client: ChildProcess, _ label: String, _ action: () throws -> Void) throws {
        guard client.waitForStdout(containing: "PAUSE \(label)", timeout: 20) else {
            throw Interop.Failure(description: "the client never reached pause \(label); stdout: \(client.stdout) stderr: \(client.stderr)")
        }
        try action()
        client.writeStdin("go\n")
    }

    /// Polls the server's stderr until `count` lines contain `text` (bounded).
    static func waitForLog(_ server: ServeProcess, _ text: String, count: Int = 1, timeout: Double = 10) -> Bool {
        ChildProcess.wait(timeout: timeout) { logLines(server, containing: text).count >= count }
    }

    static func logLines(_ server: ServeProcess, containing text: String) -> [String] {
        server.stderr.split(separator: "\n").map(String.init).filter { $0.contains(text) }
    }

    static func json(_ text: String?) -> JSON {
        guard let text, let j = try? JSON(parsing: text) else { return JSON(nil) }
        return j
    }

    /// `2025-01-31T12:34:56.789Z`: what ws.now() and envelope timestamps write.
    static var isoTimestamp: Regex<AnyRegexOutput> { try! Regex(#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#) }
    static var uuidV4: Regex<AnyRegexOutput> { try! Regex(#"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"#) }

    // Closures stay out of #expect and #require in this file: with Swift 6.3.1 a closure inside one
    // of those macros can make a later closure of the same function run the macro's closure body
    // instead of its own (seen: `texts.filter { $0.hasPrefix("forever ") }` after
    // `#require(texts.firstIndex { $0.hasPrefix("{\"first\"") })` returned the "first" reply).
    static func isTimestamp(_ s: String?) -> Bool { s?.wholeMatch(of: isoTimestamp) != nil }
    static func isUUID(_ s: String?) -> Bool { s?.wholeMatch(of: uuidV4) != nil }

    static func date(_ iso: String?) -> Date? {
        guard let iso else { return nil }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: iso)
    }
}

/// Steps of a script_client.py plan (see that file); `c` names the connection.
enum ScriptStep {
    static func open(_ c: String, _ path: String = "/", headers: [[String]]? = nil, subprotocols: [String]? = nil,
                     compression: Bool = true) -> [String: Any] {
        var s: [String: Any] = ["open": c, "path": path, "compression": compression]
        if let headers { s["headers"] = headers }
        if let subprotocols { s["subprotocols"] = subprotocols }
        return s
    }
    static func send(_ c: String, _ text: String) -> [String: Any] { ["send": c, "text": text] }
    static func send(_ c: String, json: [String: Any]) -> [String: Any] { ["send": c, "json": json] }
    static func send(_ c: String, hex: String) -> [String: Any] { ["send": c, "hex": hex] }
    static func send(_ c: String, parts: [String]) -> [String: Any] { ["send": c, "parts": parts] }
    /// A command for Fixtures/scripts/tests/api.lua.
    static func op(_ c: String, _ name: String, _ args: [String: Any] = [:]) -> [String: Any] {
        var command = args
        command["op"] = name
        return ["send": c, "json": command]
    }
    static func recv(_ c: String, _ n: Int = 1, timeout: Double = 5) -> [String: Any] { ["recv": c, "n": n, "timeout": timeout] }
    static func recvUntil(_ c: String, prefix: String, timeout: Double = 5) -> [String: Any] {
        ["recv_until": c, "prefix": prefix, "timeout": timeout]
    }
    static func drain(_ c: String, quiet: Double = 0.3) -> [String: Any] { ["drain": c, "quiet": quiet] }
    static func waitClose(_ c: String, timeout: Double = 5) -> [String: Any] { ["wait_close": c, "timeout": timeout] }
    static func close(_ c: String, code: Int = 1000, reason: String = "") -> [String: Any] { ["close": c, "code": code, "reason": reason] }
    static func sleep(_ seconds: Double) -> [String: Any] { ["sleep": seconds] }
    static func pause(_ label: String) -> [String: Any] { ["pause": label] }
}

/// What a plan saw, per connection.
struct ScriptPlan {
    let json: JSON
    init(_ json: JSON) { self.json = json }

    subscript(_ c: String) -> JSON { json["conns"][c] }
    func messages(_ c: String) -> [JSON] { self[c]["messages"].array }
    /// The text of every message (binary ones as "<binary HEX>").
    func texts(_ c: String) -> [String] {
        messages(c).map { $0["type"].string == "text" ? ($0["text"].string ?? "") : "<binary \($0["hex"].string ?? "?")>" }
    }
    /// Every text message parsed as JSON (null where it is not JSON).
    func objects(_ c: String) -> [JSON] { texts(c).map { Scripted.json($0) } }
    func close(_ c: String) -> JSON { self[c]["close"] }
}

// MARK: - echo.lua

@Suite("serve --script echo.lua with Python websockets", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptEchoTests {
    @Test func textAndBinaryAreEchoedAsTheirType() throws {
        try Scripted.withScript("echo.lua") { server in
            let text = try Interop.websockets(server.url, "echo_text")
            #expect(text["received"]["type"].string == "text")
            #expect(text["received"]["text"].string == "hello, wörld ✓")
            let binary = try Interop.websockets(server.url, "echo_binary")
            #expect(binary["received"]["type"].string == "binary")
            #expect(binary["received"]["length"].int == 1024)
            #expect(binary["received"]["hex"].string == binary["sent_hex"].string)
        }
    }

    /// The default --max-message-size (16 MiB) through the script, with and without
    /// permessage-deflate: the payload crosses into Lua and back whole.
    @Test(arguments: [false, true])
    func sixteenMiBMessageIsEchoed(compression: Bool) throws {
        try Scripted.withScript("echo.lua") { server in
            let r = try Interop.websockets(server.url, "echo_large", ["size": 16 << 20, "compression": compression, "timeout": 25])
            #expect(r["extensions"].isNull == !compression)
            #expect(r["type"].string == "binary")
            #expect(r["length"].int == 16 << 20)
            #expect(r["equal"].bool == true)
        }
    }

    @Test(arguments: [false, true])
    func fragmentedMessagesReachTheScriptWhole(compression: Bool) throws {
        try Scripted.withScript("echo.lua") { server in
            let r = try Interop.websockets(server.url, "fragments", ["compression": compression])
            #expect(r["text"]["type"].string == "text")
            #expect(r["text"]["text"].string == "Fragmented wörld ✓")
            #expect(r["binary"]["type"].string == "binary")
            #expect(r["binary"]["hex"].string == "0001020304ff")
        }
    }

    @Test func compressionIsNegotiatedWithAScriptToo() throws {
        try Scripted.withScript("echo.lua") { server in
            let r = try Interop.websockets(server.url, "echo_text")
            #expect(r["extensions"].string?.hasPrefix("permessage-deflate") == true, "\(r["extensions"])")
        }
    }

    @Test func tenConcurrentClientsEachExchangeTwentyMessages() throws {
        try Scripted.withScript("echo.lua") { server in
            let r = try Interop.websockets(server.url, "concurrent", ["clients": 10, "messages": 20])
            #expect(r["errors"].array.isEmpty, "\(r["errors"])")
            #expect(r["clients_ok"].int == 10)
            #expect(r["echoed"].int == 200)
        }
    }
}

// MARK: - chat.lua

@Suite("serve --script chat.lua", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptChatTests {
    static func join(_ c: String, _ room: String, cid: String? = nil) -> [String: Any] {
        var e: [String: Any] = ["type": "join_room", "payload": ["room": room]]
        if let cid { e["metadata"] = ["correlation_id": cid] }
        return ScriptStep.send(c, json: e)
    }

    static func envelope(_ c: String, _ type: String, _ payload: [String: Any], cid: String? = nil) -> [String: Any] {
        var e: [String: Any] = ["type": type, "payload": payload]
        if let cid { e["metadata"] = ["correlation_id": cid] }
        return ScriptStep.send(c, json: e)
    }

    @Test func connectionEstablishedCarriesTheIDAndName() throws {
        try Scripted.withScript("chat.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", "/?name=ann"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"),
            ])
            let a = r.objects("a")[0], b = r.objects("b")[0]
            #expect(a["type"].string == "connection_established")
            let aID = try #require(a["payload"]["client_id"].string)
            let bID = try #require(b["payload"]["client_id"].string)
            #expect(aID != bID)
            #expect(a["payload"]["name"].string == "ann")
            #expect(b["payload"]["name"].string == bID, "no ?name=: the name is the id")
            #expect(Scripted.isTimestamp(a["metadata"]["timestamp"].string))
            #expect(Scripted.isUUID(a["metadata"]["message_id"].string))
        }
    }

    @Test func joiningAnswersWithMembersAndTellsTheOthers() throws {
        try Scripted.withScript("chat.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", "/?name=ann"), ScriptStep.recv("a"), Self.join("a", "r1"), ScriptStep.recv("a"),
                ScriptStep.open("b", "/?name=bob"), ScriptStep.recv("b"), Self.join("b", "r1", cid: "join-b"), ScriptStep.recv("b"),
                ScriptStep.drain("a"), ScriptStep.drain("b"),
            ])
            let aID = try #require(r.objects("a")[0]["payload"]["client_id"].string)
            let bID = try #require(r.objects("b")[0]["payload"]["client_id"].string)
            let aJoined = r.objects("a")[1], bJoined = r.objects("b")[1]
            #expect(aJoined["type"].string == "room_joined")
            #expect(aJoined["payload"]["room"].string == "r1")
            #expect(aJoined["payload"]["members"].strings == [aID])
            #expect(aJoined["metadata"]["correlation_id"].isNull)
            #expect(bJoined["type"].string == "room_joined")
            #expect(bJoined["payload"]["members"].strings == [aID, bID])
            #expect(bJoined["metadata"]["correlation_id"].string == "join-b")
            // a hears about b once; b hears nothing more.
            let presence = Array(r.objects("a").dropFirst(2))
            #expect(presence.count == 1, "\(r.texts("a"))")
            #expect(presence.first?["type"].string == "presence_update")
            #expect(presence.first?["payload"]["room"].string == "r1")
            #expect(presence.first?["payload"]["client_id"].string == bID)
            #expect(presence.first?["payload"]["name"].string == "bob")
            #expect(presence.first?["payload"]["status"].string == "joined")
            #expect(r.texts("b").count == 2, "\(r.texts("b"))")
        }
    }

    @Test func messagesFanOutToTheRoomsMembersOnly() throws {
        try Scripted.withScript("chat.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", "/?name=ann"), ScriptStep.recv("a"), Self.join("a", "r1"), ScriptStep.recv("a"),
                ScriptStep.open("b"), ScriptStep.recv("b"), Self.join("b", "r1"), ScriptStep.recv("b"),
                ScriptStep.open("c"), ScriptStep.recv("c"), Self.join("c", "r2"), ScriptStep.recv("c"),
                ScriptStep.drain("a"),
                Self.envelope("a", "message", ["room": "r1", "content": "hi room ✓"], cid: "m-1"),
                ScriptStep.drain("a"), ScriptStep.drain("b"), ScriptStep.drain("c"),
            ])
            let aID = try #require(r.objects("a")[0]["payload"]["client_id"].string)
            for c in ["a", "b"] {
                let m = try #require(r.objects(c).last)
                #expect(m["type"].string == "message", "\(c): \(r.texts(c))")
                #expect(m["payload"]["room"].string == "r1")
                #expect(m["payload"]["content"].string == "hi room ✓")
                #expect(m["payload"]["from"].string == aID)
                #expect(m["payload"]["name"].string == "ann")
                #expect(m["metadata"]["correlation_id"].string == "m-1")
                #expect(Scripted.isUUID(m["metadata"]["message_id"].string))
            }
            let types = ["a", "b", "c"].map { c in r.objects(c).map { $0["type"].string ?? "?" } }
            let messageCounts = types.map { $0.filter { $0 == "message" }.count }
            #expect(messageCounts[0] == 1, "\(types[0])")
            #expect(messageCounts[1] == 1, "\(types[1])")
            #expect(types[2] == ["connection_established", "room_joined"], "c is in r2 only")
        }
    }

    @Test func leavingAndDisconnectingTellTheOthers() throws {
        try Scripted.withScript("chat.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), Self.join("a", "r1"), ScriptStep.recv("a"),
                ScriptStep.open("b", "/?name=bob"), ScriptStep.recv("b"), Self.join("b", "r1"), ScriptStep.recv("b"),
                ScriptStep.open("c", "/?name=cy"), ScriptStep.recv("c"), Self.join("c", "r1"), ScriptStep.recv("c"),
                ScriptStep.drain("a"), ScriptStep.drain("b"),
                Self.envelope("b", "leave_room", ["room": "r1"], cid: "leave-1"), ScriptStep.recv("b"),
                Self.envelope("b", "leave_room", ["room": "r1"], cid: "leave-2"), ScriptStep.recv("b"),
                ScriptStep.drain("a"),
                ScriptStep.close("c"),
                ScriptStep.drain("a", quiet: 0.5), ScriptStep.drain("b"),
            ])
            let bID = try #require(r.objects("b")[0]["payload"]["client_id"].string)
            let cID = try #require(r.objects("c")[0]["payload"]["client_id"].string)
            let b = r.objects("b")
            #expect(b[b.count - 2]["type"].string == "room_left")
            #expect(b[b.count - 2]["payload"]["room"].string == "r1")
            #expect(b[b.count - 2]["metadata"]["correlation_id"].string == "leave-1")
            #expect(b.last?["type"].string == "error")
            #expect(b.last?["payload"]["code"].string == "not_in_room")
            #expect(b.last?["metadata"]["correlation_id"].string == "leave-2")
            // a: joined by b, joined by c, b left, c left (on_close still sees c in r1).
            let presence = r.objects("a").filter { $0["type"].string == "presence_update" }
            let seen = presence.map { "\($0["payload"]["client_id"].string ?? "?") \($0["payload"]["status"].string ?? "?")" }
            #expect(seen == ["\(bID) joined", "\(cID) joined", "\(bID) left", "\(cID) left"])
            #expect(presence.last?["payload"]["name"].string == "cy")
            let presenceRooms = Set(presence.map { $0["payload"]["room"].string ?? "?" })
            #expect(presenceRooms == ["r1"])
            // b left r1 before c went: it hears nothing of it.
            let bHeardLeft = r.texts("b").contains { $0.contains("\"status\":\"left\"") }
            #expect(!bHeardLeft, "\(r.texts("b"))")
        }
    }

    /// A "message" without a room breaks the envelope rules for that type (the codec validates the
    /// standard types), so msg.envelope is nil; chat.lua reads the raw JSON to answer
    /// invalid_envelope with the request's correlation id all the same.
    @Test func badRequestsGetErrorsWithTheirCorrelationID() throws {
        try Scripted.withScript("chat.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"),
                ScriptStep.send("a", "not json at all"), ScriptStep.recv("a"),
                Self.envelope("a", "dance", [:], cid: "e-1"), ScriptStep.recv("a"),
                Self.envelope("a", "message", ["content": "no room"], cid: "e-2"), ScriptStep.recv("a"),
                Self.envelope("a", "message", ["room": "r9", "content": "not joined"], cid: "e-3"), ScriptStep.recv("a"),
                Self.envelope("a", "set_name", ["name": ""], cid: "e-4"), ScriptStep.recv("a"),
                Self.envelope("a", "set_name", ["name": "zoe"], cid: "ok-1"), ScriptStep.recv("a"),
                Self.join("a", "r9"), ScriptStep.recv("a"),
                Self.envelope("a", "message", ["room": "r9", "content": "now"]), ScriptStep.recv("a"),
            ])
            let o = r.objects("a")
            let errors = o[1...5].map { "\($0["type"].string ?? "?") \($0["payload"]["code"].string ?? "?") \($0["metadata"]["correlation_id"].string ?? "-")" }
            #expect(errors == [
                "error invalid_envelope -", "error unknown_type e-1", "error invalid_envelope e-2",
                "error not_in_room e-3", "error invalid_payload e-4",
            ])
            #expect(o[2]["payload"]["message"].string == "unknown type dance")
            #expect(o[6]["type"].string == "name_set")
            #expect(o[6]["payload"]["name"].string == "zoe")
            #expect(o[6]["metadata"]["correlation_id"].string == "ok-1")
            #expect(o[8]["type"].string == "message")
            #expect(o[8]["payload"]["name"].string == "zoe")
            #expect(o[8]["payload"]["content"].string == "now")
            #expect(r.close("a").isNull, "errors do not close the connection")
        }
    }

    /// With two event loops the connections live on different threads from the script's: every
    /// member still gets the message once.
    @Test func fanOutWorksAcrossEventLoops() throws {
        try Scripted.withScript("chat.lua", ["--threads", "2"]) { server in
            var steps: [[String: Any]] = []
            for c in ["a", "b", "c", "d"] { steps += [ScriptStep.open(c), ScriptStep.recv(c), Self.join(c, "r1"), ScriptStep.recv(c)] }
            steps += ["a", "b", "c", "d"].map { ScriptStep.drain($0) }
            steps.append(Self.envelope("c", "message", ["room": "r1", "content": "to all"], cid: "x"))
            steps += ["a", "b", "c", "d"].map { ScriptStep.recvUntil($0, prefix: "{\"metadata\"") }
            let r = try Scripted.plan(server.url, steps)
            for c in ["a", "b", "c", "d"] {
                let m = r.objects(c).last
                #expect(m?["type"].string == "message", "\(c): \(r.texts(c))")
                #expect(m?["payload"]["content"].string == "to all")
            }
        }
    }
}

// MARK: - ticker.lua

@Suite("serve --script ticker.lua", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptTickerTests {
    @Test func ticksArriveWithoutAsking() throws {
        try Scripted.withScript("ticker.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.recv("a", 2, timeout: 4)])
            let ticks = r.objects("a")
            let first = try #require(ticks[0]["tick"].int), second = try #require(ticks[1]["tick"].int)
            #expect(second == first + 1)
            let t1 = try #require(Scripted.date(ticks[0]["time"].string)), t2 = try #require(Scripted.date(ticks[1]["time"].string))
            #expect(Scripted.isTimestamp(ticks[0]["time"].string) && Scripted.isTimestamp(ticks[1]["time"].string))
            let gap = t2.timeIntervalSince(t1)
            #expect(gap >= 0.95 && gap < 3, "ticks \(gap) s apart (TICK_MS is 1000)")
        }
    }

    @Test func everyNGivesAConnectionItsOwnRateAndReplacesTheOldTimer() throws {
        try Scripted.withScript("ticker.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"),
                ScriptStep.send("a", "every 5"), ScriptStep.recvUntil("a", prefix: "{\"error\""),
                ScriptStep.send("a", "every 100"), ScriptStep.recvUntil("a", prefix: "{\"every\":100,\"ok\":true}"),
                ScriptStep.recvUntil("a", prefix: "{\"every\":100,\"own_tick\":3}"),
                ScriptStep.send("a", "every 40"), ScriptStep.recvUntil("a", prefix: "{\"every\":40,\"ok\":true}"),
                ScriptStep.recvUntil("a", prefix: "{\"every\":40,\"own_tick\":4}"),
                ScriptStep.drain("a", quiet: 0.2),
                ScriptStep.open("b"), ScriptStep.drain("b", quiet: 0.3),
            ])
            let texts = r.texts("a")
            #expect(texts.contains("{\"error\":\"send: every <milliseconds, at least 10>\"}"))
            let own100 = r.objects("a").compactMap { $0["every"].int == 100 ? $0["own_tick"].int : nil }
            #expect(Array(own100.prefix(3)) == [1, 2, 3])
            // After the reply to "every 40", the 100 ms timer is gone and the new one counts from 1.
            let switched = try #require(texts.firstIndex(of: "{\"every\":40,\"ok\":true}"))
            let after = r.objects("a")[(switched + 1)...].filter { $0["own_tick"].int != nil }
            let rates = Set(after.map { $0["every"].int ?? 0 })
            let counts = Array(after.compactMap { $0["own_tick"].int }.prefix(4))
            #expect(rates == [40], "\(texts[switched...])")
            #expect(counts == [1, 2, 3, 4])
            // b asked for nothing: no own ticks for it.
            let bOwnTicks = r.texts("b").filter { $0.contains("own_tick") }
            #expect(bOwnTicks.isEmpty, "\(r.texts("b"))")
        }
    }

    /// on_close cancels the connection's timer: it runs without error and the server goes on ticking
    /// for the others. (That the timer then stops is checked with api.lua, whose timers report to
    /// another connection: `ServeScriptAPITests.aTimerCancelledInOnCloseStops`.)
    @Test func closingAConnectionWithItsOwnTimerIsClean() throws {
        try Scripted.withScript("ticker.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.open("b"),
                ScriptStep.send("a", "every 20"), ScriptStep.recvUntil("a", prefix: "{\"every\":20,\"own_tick\":2}"),
                ScriptStep.close("a"),
                ScriptStep.recvUntil("b", prefix: "{\"tick\"", timeout: 3), ScriptStep.recvUntil("b", prefix: "{\"tick\"", timeout: 3),
            ])
            #expect(r.close("a")["sent"].int == 1000)
            let bOwnTicks = r.texts("b").filter { $0.contains("own_tick") }
            #expect(bOwnTicks.isEmpty)
            #expect(Scripted.logLines(server, containing: "script error").isEmpty, "\(server.stderr)")
        }
    }
}

// MARK: - auth.lua

@Suite("serve --script auth.lua", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptAuthTests {
    @Test func noTokenClosesWith4001() throws {
        try Scripted.withScript("auth.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.waitClose("a")])
            #expect(r.close("a")["rcvd"].int == 4001)
            #expect(r.close("a")["rcvd_reason"].string == "authentication required")
            #expect(r.close("a")["by"].string == "server")
            #expect(r.messages("a").isEmpty)
        }
    }

    /// The script closes with 4002 itself and returns false: the refusal keeps its code.
    @Test func wrongTokenClosesWith4002() throws {
        try Scripted.withScript("auth.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", "/?token=nope"), ScriptStep.waitClose("a"),
                ScriptStep.open("b", headers: [["Authorization", "Bearer nope"]]), ScriptStep.waitClose("b"),
            ])
            for c in ["a", "b"] {
                #expect(r.close(c)["rcvd"].int == 4002, "\(c)")
                #expect(r.close(c)["rcvd_reason"].string == "authentication failed")
                #expect(r.messages(c).isEmpty)
            }
        }
    }

    @Test func queryTokenIsWelcomedAndNamed() throws {
        try Scripted.withScript("auth.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", "/?token=s3cret"), ScriptStep.recv("a"),
                ScriptStep.send("a", "hi there"), ScriptStep.recv("a"),
                ScriptStep.send("a", hex: "00ff10"), ScriptStep.recv("a"),
                ScriptStep.drain("a"),
            ])
            #expect(r.texts("a") == ["welcome alice", "alice: hi there", "<binary 00ff10>"])
            #expect(r.close("a").isNull)
        }
    }

    @Test(arguments: ["Bearer t0ken", "bearer   t0ken"])
    func bearerHeaderIsAccepted(header: String) throws {
        try Scripted.withScript("auth.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", headers: [["Authorization", header]]), ScriptStep.recv("a"),
                ScriptStep.send("a", "yo"), ScriptStep.recv("a"),
            ])
            #expect(r.texts("a") == ["welcome bob", "bob: yo"])
        }
    }
}

// MARK: - chaos.lua

@Suite("serve --script chaos.lua", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptChaosTests {
    /// Text that is not UTF-8: websockets fails the connection with 1007 (RFC 6455 §8.1).
    @Test func badUTF8MakesTheClientFailWith1007() throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.send("a", "!badutf8"), ScriptStep.waitClose("a")])
            #expect(r.close("a")["sent"].int == 1007, "\(r.close("a"))")
            #expect(r.close("a")["by"].string == "client")
            #expect(r.messages("a").isEmpty)
        }
    }

    /// RSV2 set with no extension that claims it: the client fails the connection with 1002.
    @Test func abortMakesTheClientFailWith1002() throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.send("a", "!abort"), ScriptStep.waitClose("a")])
            #expect(r.close("a")["sent"].int == 1002, "\(r.close("a"))")
            #expect(r.messages("a").isEmpty)
        }
    }

    @Test(arguments: [false, true])
    func fragmentArrivesReassembled(compression: Bool) throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", compression: compression), ScriptStep.send("a", "!fragment"), ScriptStep.recv("a"), ScriptStep.drain("a"),
            ])
            #expect(r.texts("a") == ["!fragment"])
            #expect(r.close("a").isNull)
        }
    }

    @Test(arguments: [("!close 4000", 4000), ("!close 4321", 4321), ("!close", 4000)])
    func closeUsesTheCodeAsked(command: String, code: Int) throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.send("a", command), ScriptStep.waitClose("a")])
            #expect(r.close("a")["rcvd"].int == code)
            #expect(r.close("a")["rcvd_reason"].string == "chaos")
            #expect(r.close("a")["by"].string == "server")
        }
    }

    /// "!delay 500" answers after half a second; "!dup" sent just after it is answered first.
    @Test func delayArrivesLateAndDupTwice() throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.send("a", "!delay 500"), ScriptStep.send("a", "!dup"), ScriptStep.recv("a", 3, timeout: 5), ScriptStep.drain("a"),
            ])
            #expect(r.texts("a") == ["!dup", "!dup", "!delay"])
            let sentAt = try #require(r["a"]["sent"][0]["t"].double)
            let delayedAt = try #require(r.messages("a")[2]["t"].double)
            #expect(delayedAt - sentAt >= 0.45, "arrived \(delayedAt - sentAt) s after it was sent")
        }
    }

    @Test func dropSendsNothingButTheConnectionStays() throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.send("a", "!drop"), ScriptStep.drain("a", quiet: 0.5), ScriptStep.send("a", "!dup"), ScriptStep.recv("a", 2),
            ])
            #expect(r.texts("a") == ["!dup", "!dup"])
        }
    }

    @Test func corruptChangesExactlyOneByte() throws {
        try Scripted.withScript("chaos.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.send("a", "!corrupt"), ScriptStep.recv("a"), ScriptStep.drain("a")])
            let got = try #require(r.texts("a").first)
            #expect(r.texts("a").count == 1)
            let a = Array("!corrupt".utf8), b = Array(got.utf8)
            #expect(b.count == a.count)
            let changed = zip(a, b).filter { $0 != $1 }.count
            #expect(changed == 1, "\(got)")
        }
    }

    /// Unasked, each message is echoed, dropped, delayed, duplicated or corrupted at random from a
    /// fixed seed: two fresh servers answer the same messages the same way, and every answer is a
    /// message sent or a one-byte variant of it.
    @Test func randomBehaviourRepeatsFromRunToRun() throws {
        let sent = (0..<30).map { String(format: "message %02d", $0) }
        func run() throws -> [String] {
            try Scripted.withScript("chaos.lua") { server in
                let r = try Scripted.plan(server.url, [ScriptStep.open("a")] + sent.map { ScriptStep.send("a", $0) } + [ScriptStep.drain("a", quiet: 2.5)])
                return r.texts("a")
            }
        }
        let first = try run(), second = try run()
        #expect(first.sorted() == second.sorted())
        #expect(first.count >= 15 && first.count <= 60, "\(first)")
        for m in first {
            let ok = sent.contains { s in
                s.utf8.count == m.utf8.count && zip(s.utf8, m.utf8).filter { $0 != $1 }.count <= 1
            }
            #expect(ok, "\(m) is neither a message sent nor one with one byte changed")
        }
        #expect(first != sent, "30 messages all echoed unchanged and in order: nothing chaotic happened")
    }
}

// MARK: - The API (Fixtures/scripts/tests/*.lua)

@Suite("serve --script API", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptAPITests {
    static let api = "tests/api.lua"

    @Test func requestTableHasPathQueryHeadersRemoteAndSubprotocol() throws {
        try Scripted.withScript("tests/request.lua", ["--subprotocol", "chat.v2", "--subprotocol", "chat.v1"]) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a", "/room/42?a=1&b=x%20y&c=a+b&d=%E2%9C%93&e=&flag&a=2&%6Bey=v%3D1",
                          headers: [["X-Mixed-Case", "Hello"], ["X-Dup", "one"], ["X-Dup", "two"]],
                          subprotocols: ["chat.v1", "other"]),
                ScriptStep.recv("a"),
            ])
            let q = try #require(r.objects("a").first)
            #expect(q["path"].string == "/room/42")
            #expect(q["query_type"].string == "table")
            #expect(q["query"].description == #"{"a":"2","b":"x y","c":"a b","d":"✓","e":"","flag":"","key":"v=1"}"#)
            #expect(q["headers"]["x-mixed-case"].string == "Hello")
            #expect(q["headers"]["x-dup"].string == "one, two")
            #expect(q["headers"]["host"].string == "127.0.0.1:\(server.port)")
            #expect(q["headers"]["upgrade"].string == "websocket")
            #expect(q["headers"]["sec-websocket-protocol"].string == "chat.v1, other")
            #expect(q["upper_case_header_names"].int == 0)
            #expect(q["remote"].string == r["a"]["local"].string, "the client's own address and port")
            #expect(q["remote"].string?.hasPrefix("127.0.0.1:") == true)
            #expect(q["subprotocol"].string == "chat.v1")
            #expect(r["a"]["subprotocol"].string == "chat.v1")
        }
    }

    @Test func requestWithoutQueryOrSubprotocol() throws {
        try Scripted.withScript("tests/request.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a", "/"), ScriptStep.recv("a")])
            let q = try #require(r.objects("a").first)
            #expect(q["path"].string == "/")
            #expect(q["query"].description == "{}")
            #expect(q["subprotocol"].isNull)
        }
    }

    @Test func connSetAndGetKeepValuesPerConnection() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"),
                ScriptStep.op("a", "set", ["key": "name", "value": "ann"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "set", ["key": "nested", "value": ["list": [1, "two", ["three": 3.5]], "flag": true]]), ScriptStep.recv("a"),
                ScriptStep.op("a", "get", ["key": "name"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "get", ["key": "nested"]), ScriptStep.recv("a"),
                ScriptStep.op("b", "get", ["key": "name"]), ScriptStep.recv("b"),
                ScriptStep.op("a", "unset", ["key": "name"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "get", ["key": "missing"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "same_table"), ScriptStep.recv("a"),
            ])
            let a = r.objects("a")
            #expect(a[3]["value"].string == "ann")
            #expect(a[4]["shape"].string == "{flag=true,list={#1=integer:1,#2=string:two,#3={three=float:3.5}}}")
            #expect(r.objects("b")[1]["value"].isNull, "b has its own store")
            #expect(r.objects("b")[1]["shape"].string == "nil")
            #expect(a[5]["op"].string == "unset")
            #expect(a[5]["value"].isNull)
            #expect(a[6]["shape"].string == "nil")
            #expect(a[7]["same"].bool == true, "conn:get returns the table stored, not a copy")
            #expect(a[7]["n"].int == 2)
        }
    }

    @Test func roomsJoinLeaveAndMembers() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"),
                ScriptStep.op("a", "join", ["room": "r1"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "join", ["room": "r1"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "join", ["room": "r2"]), ScriptStep.recv("a"),
                ScriptStep.op("b", "join", ["room": "r1"]), ScriptStep.recv("b"),
                ScriptStep.op("a", "members", ["room": "r1"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "leave", ["room": "r1"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "leave", ["room": "r1"]), ScriptStep.recv("a"),
                ScriptStep.op("b", "members", ["room": "r1"]), ScriptStep.recv("b"),
                ScriptStep.op("b", "members", ["room": "nobody-here"]), ScriptStep.recv("b"),
                ScriptStep.op("b", "join", ["room": ""]), ScriptStep.waitClose("b"),
            ])
            let a = r.objects("a"), b = r.objects("b")
            let aID = try #require(a[0]["hello"].string), bID = try #require(b[0]["hello"].string)
            #expect(a[1]["result"].bool == true)
            #expect(a[1]["rooms"].strings == ["r1"])
            #expect(a[2]["rooms"].strings == ["r1"], "joining twice does not list the room twice")
            #expect(a[3]["rooms"].strings == ["r1", "r2"])
            #expect(a[4]["members"].strings == [aID, bID], "members in join order")
            #expect(a[5]["result"].bool == true)
            #expect(a[5]["rooms"].strings == ["r2"])
            #expect(a[6]["result"].bool == false, "not in r1 any more")
            #expect(b[2]["members"].strings == [bID])
            #expect(b[3]["count"].int == 0)
            // An empty room name is an error in the hook: logged, and the connection gets 1011.
            #expect(r.close("b")["rcvd"].int == 1011)
            #expect(Scripted.waitForLog(server, "conn:join: room must be a non-empty string"))
        }
    }

    @Test func connectionsListsTheOpenOnesInOrder() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"),
                ScriptStep.op("a", "connections"), ScriptStep.recv("a"),
                ScriptStep.op("a", "whoami"), ScriptStep.recv("a"),
            ])
            let a = r.objects("a")
            #expect(a[0]["hello"].string == "c1")
            #expect(r.objects("b")[0]["hello"].string == "c2")
            #expect(a[1]["connections"].strings == ["c1", "c2"])
            #expect(a[2]["id"].string == "c1")
            #expect(a[2]["tostring"].string == "conn c1")
            // The first plan's connections have closed: only the new ones are listed.
            let later = try Scripted.plan(server.url, [ScriptStep.open("c"), ScriptStep.recv("c"), ScriptStep.op("c", "connections"), ScriptStep.recv("c")])
            #expect(later.objects("c")[1]["connections"].strings == ["c3"])
        }
    }

    @Test func sendToDeliversToThatConnectionOnly() throws {
        try Scripted.withScript(Self.api) { server in
            // Connection ids are c1, c2, c3 in the order the server accepted them.
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"), ScriptStep.open("c"), ScriptStep.recv("c"),
                ScriptStep.op("a", "send_to", ["id": "c2", "text": "psst ✓"]), ScriptStep.recv("a"), ScriptStep.recv("b"),
                ScriptStep.op("a", "send_to", ["id": "c99", "text": "nobody"]), ScriptStep.recv("a"),
                ScriptStep.drain("a"), ScriptStep.drain("b"), ScriptStep.drain("c"),
            ])
            #expect(r.objects("b")[0]["hello"].string == "c2")
            #expect(r.objects("a")[1]["result"].bool == true)
            #expect(r.texts("b").last == "psst ✓")
            #expect(r.objects("a")[2]["result"].bool == false, "an unknown id")
            #expect(r.texts("a").count == 3)
            #expect(r.texts("b").count == 2)
            #expect(r.texts("c").count == 1)
        }
    }

    @Test func broadcastToAllToARoomAndExcept() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"), ScriptStep.open("c"), ScriptStep.recv("c"),
                ScriptStep.op("a", "join", ["room": "r1"]), ScriptStep.recv("a"), ScriptStep.op("b", "join", ["room": "r1"]), ScriptStep.recv("b"),
                ScriptStep.op("a", "broadcast", ["text": "to everyone"]), ScriptStep.recvUntil("a", prefix: "{\"count\""),
                ScriptStep.op("a", "broadcast", ["text": "to r1", "room": "r1"]), ScriptStep.recvUntil("a", prefix: "{\"count\""),
                ScriptStep.op("a", "broadcast", ["text": "to r1 but me", "room": "r1", "except": "self"]), ScriptStep.recvUntil("a", prefix: "{\"count\""),
                ScriptStep.op("b", "broadcast", ["text": "to all but c3", "except": "c3"]), ScriptStep.recvUntil("b", prefix: "{\"count\""),
                ScriptStep.drain("a"), ScriptStep.drain("b"), ScriptStep.drain("c"),
            ])
            #expect(r.objects("c")[0]["hello"].string == "c3")
            let counts = (r.objects("a") + r.objects("b")).compactMap { $0["op"].string == "broadcast" ? $0["count"].int : nil }
            #expect(counts.sorted() == [1, 2, 2, 3])
            let heard = { (c: String) in r.texts(c).filter { $0.hasPrefix("to ") } }
            #expect(heard("a") == ["to everyone", "to r1", "to all but c3"])
            #expect(heard("b") == ["to everyone", "to r1", "to r1 but me", "to all but c3"])
            #expect(heard("c") == ["to everyone"])
        }
    }

    @Test func sendBinaryAndSendEnvelope() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"),
                ScriptStep.op("a", "send_binary", ["bytes": "héllo"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "send_envelope", ["type": "pong", "payload": ["x": 1, "list": [true]], "cid": "corr-7"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "send_envelope", ["type": "notice"]), ScriptStep.recv("a"),
            ])
            let hex = Data("héllo".utf8).map { String(format: "%02x", $0) }.joined()
            #expect(r.texts("a")[1] == "<binary \(hex)>")
            let e = r.objects("a")[2]
            #expect(e["type"].string == "pong")
            #expect(e["payload"].description == #"{"list":[true],"x":1}"#)
            #expect(e["metadata"]["correlation_id"].string == "corr-7")
            #expect(Scripted.isUUID(e["metadata"]["message_id"].string))
            #expect(Scripted.isTimestamp(e["metadata"]["timestamp"].string))
            let bare = r.objects("a")[3]
            #expect(bare["type"].string == "notice")
            #expect(bare["payload"].description == "{}")
            #expect(bare["metadata"]["correlation_id"].isNull)
        }
    }

    static let jsonCases: [(text: String, shape: String?, encoded: String)] = [
        (#"{"a":[1,2.5,null,"x\u00fc\ud83d\ude00"],"b":{"c":true,"d":[]},"e":1e300,"g":1.0}"#,
         "{a={#1=integer:1,#2=float:2.5,#3=null,#4=string:xü😀},b={c=true,d={}},e=float:1e+300,g=integer:1}",
         #"{"a":[1,2.5,null,"xü😀"],"b":{"c":true,"d":{}},"e":1e+300,"g":1}"#),
        (#"[[],[[1]],{"k":[{"z":"ω"}]}]"#, "{#1={},#2={#1={#1=integer:1}},#3={k={#1={z=string:ω}}}}", #"[{},[[1]],{"k":[{"z":"ω"}]}]"#),
        (#"{"b":1,"a":2,"C":false}"#, "{C=false,a=integer:2,b=integer:1}", #"{"C":false,"a":2,"b":1}"#),
        (#"[0,-3,123456789012,1.5e-7,-2.25]"#, "{#1=integer:0,#2=integer:-3,#3=integer:123456789012,#4=float:1.5e-07,#5=float:-2.25}",
         "[0,-3,123456789012,1.5e-07,-2.25]"),
        (#""just a string""#, "string:just a string", #""just a string""#),
        ("null", "null", "null"),
        ("true", "true", "true"),
        (#"{"esc":"line\nbreak \"q\" \\ \t \u0001 \/"}"#, nil, #"{"esc":"line\nbreak \"q\" \\ \t \u0001 /"}"#),
    ]

    @Test func jsonDecodeAndEncodeRoundTrip() throws {
        try Scripted.withScript(Self.api) { server in
            let steps = [ScriptStep.open("a"), ScriptStep.recv("a")] + Self.jsonCases.flatMap { [ScriptStep.op("a", "json", ["text": $0.text]), ScriptStep.recv("a")] }
            let r = try Scripted.plan(server.url, steps)
            let replies = Array(r.objects("a").dropFirst())
            #expect(replies.count == Self.jsonCases.count)
            for (c, reply) in zip(Self.jsonCases, replies) {
                #expect(reply["decode_error"].isNull, "\(c.text): \(reply)")
                if let shape = c.shape { #expect(reply["shape"].string == shape, "\(c.text)") }
                #expect(reply["encoded"].string == c.encoded, "\(c.text)")
            }
        }
    }

    @Test func jsonErrors() throws {
        try Scripted.withScript(Self.api) { server in
            let bad = ["{bad", "[1,2", "", "{\"a\":1} trailing", "{'single':1}"]
            let steps = [ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "encode"), ScriptStep.recv("a")]
                + bad.flatMap { [ScriptStep.op("a", "json", ["text": $0]), ScriptStep.recv("a")] }
            let r = try Scripted.plan(server.url, steps)
            let e = r.objects("a")[1]["results"]
            #expect(e["function"]["error"].string?.hasSuffix("ws.json.encode: cannot encode a function value") == true, "\(e["function"])")
            #expect(e["cycle"]["error"].string?.contains("nested more than 128 deep") == true, "\(e["cycle"])")
            #expect(e["nan"]["error"].string?.contains("JSON has no inf or nan") == true, "\(e["nan"])")
            #expect(e["inf"]["error"].string?.contains("cannot encode the number inf") == true, "\(e["inf"])")
            #expect(e["bad_utf8"]["error"].string?.contains("string is not UTF-8 (byte 4)") == true, "\(e["bad_utf8"])")
            #expect(e["boolean_key"]["error"].string?.contains("cannot encode a table with a boolean key") == true)
            #expect(e["decode_table"]["error"].string?.contains("ws.json.decode: text must be a string, got table") == true)
            #expect(e["mixed"]["ok"].string == #"{"1":1,"2":2,"x":3}"#)
            #expect(e["list"]["ok"].string == #"["a","b",{"c":null}]"#)
            #expect(e["empty"]["ok"].string == "{}")
            #expect(e["float"]["ok"].string == "0.1")
            #expect(e["big"]["ok"].string == "9007199254740992")
            #expect(e["negative"]["ok"].string == "-7")
            #expect(e["null"]["ok"].string == "null")
            #expect(e["escapes"]["ok"].string == #""quote \" backslash \\ newline \n tab \t bell \u0007 é""#)
            let decoded = Array(r.objects("a").dropFirst(2))
            #expect(decoded.count == bad.count)
            for (text, reply) in zip(bad, decoded) {
                #expect(reply["decode_error"].string?.hasPrefix("not JSON") == true, "\(text): \(reply)")
            }
            #expect(decoded[0]["decode_error"].string?.contains("at byte 1 (line 1, column 2)") == true, "\(decoded[0])")
        }
    }

    @Test func nowIsISO8601AndUUIDsAreFreshV4() throws {
        try Scripted.withScript(Self.api) { server in
            let before = Date()
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "now"), ScriptStep.recv("a")])
            let after = Date()
            let reply = r.objects("a")[1]
            let now = try #require(reply["now"].string)
            #expect(now.wholeMatch(of: Scripted.isoTimestamp) != nil, "\(now)")
            let date = try #require(Scripted.date(now))
            #expect(date.timeIntervalSince(before) > -1 && after.timeIntervalSince(date) > -1, "\(now) is not between \(before) and \(after)")
            let u1 = try #require(reply["uuid1"].string), u2 = try #require(reply["uuid2"].string)
            #expect(u1.wholeMatch(of: Scripted.uuidV4) != nil, "\(u1)")
            #expect(u2.wholeMatch(of: Scripted.uuidV4) != nil, "\(u2)")
            #expect(u1 != u2)
        }
    }

    @Test func afterFiresInDeadlineOrder() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "after"), ScriptStep.recv("a", 7), ScriptStep.drain("a")])
            #expect(Array(r.texts("a").dropFirst()) == [
                #"{"op":"after","scheduled":6}"#, "after 0", "after 20", "after 30 first", "after 30 second", "after 40", "after 60",
            ])
        }
    }

    @Test func everyRepeatsUntilCancelledFromItsOwnCallback() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "every", ["ms": 20, "times": 3]), ScriptStep.recv("a", 5), ScriptStep.drain("a", quiet: 0.4),
            ])
            #expect(Array(r.texts("a").dropFirst()) == [#"{"op":"every","started":true}"#, "tick 1", "tick 2", "tick 3", "cancelled true false"])
        }
    }

    @Test func cancelStopsARepeatingTimer() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "every_forever", ["ms": 20]),
                ScriptStep.recvUntil("a", prefix: "forever 3"), ScriptStep.op("a", "cancel"), ScriptStep.recvUntil("a", prefix: "{\"first\""),
                ScriptStep.drain("a", quiet: 0.4),
            ])
            let texts = r.texts("a")
            let replyIndex = texts.firstIndex { $0.hasPrefix("{\"first\"") }
            let reply = try #require(replyIndex)
            #expect(texts[reply] == #"{"first":true,"op":"cancel","second":false}"#)
            #expect(texts[(reply + 1)...].isEmpty, "ticks after cancel: \(texts[(reply + 1)...])")
            let ticks = texts.filter { $0.hasPrefix("forever ") }
            let expected = (1...max(ticks.count, 1)).map { "forever \($0)" }
            #expect(ticks == expected)
        }
    }

    /// api.lua's on_close cancels the "ticker" timer of the closing connection; the timer reports to
    /// the room, so the other member sees the ticks stop.
    @Test func aTimerCancelledInOnCloseStops() throws {
        let watcher = """
            function on_open(conn) conn:join("watch") end
            function on_message(conn, msg)
                local n = 0
                conn:set("timer", ws.every(20, function()
                    n = n + 1
                    ws.broadcast("tick " .. n .. " from " .. conn.id, "watch", conn)
                end))
            end
            function on_close(conn)
                ws.broadcast("cancel " .. tostring(conn:get("timer"):cancel()) .. " for " .. conn.id, "watch", conn)
            end
            """
        let file = try TempLuaScript(watcher)
        try Scripted.withScript(file.path) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.open("b"), ScriptStep.send("a", "start"), ScriptStep.recvUntil("b", prefix: "tick 3 from c1"),
                ScriptStep.close("a"), ScriptStep.recvUntil("b", prefix: "cancel "), ScriptStep.drain("b", quiet: 0.4),
            ])
            let texts = r.texts("b")
            #expect(texts.last == "cancel true for c1", "\(texts)")
            let ticks = texts.filter { $0.hasPrefix("tick ") }
            let expected = (1...max(ticks.count, 1)).map { "tick \($0) from c1" }
            #expect(ticks == expected)
        }
    }

    @Test func timerErrorsAreLoggedAndARepeatingTimerStops() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"),
                ScriptStep.op("a", "after_error"), ScriptStep.recv("a"),
                ScriptStep.op("a", "every_error"), ScriptStep.recv("a"),
                ScriptStep.sleep(0.3),
                ScriptStep.op("a", "whoami"), ScriptStep.recv("a"),
            ])
            #expect(r.close("a").isNull, "a timer error closes no connection")
            #expect(r.objects("a").last?["op"].string == "whoami")
            #expect(Scripted.waitForLog(server, "ws.every timer cancelled after an error"))
            let afterErrors = Scripted.logLines(server, containing: "after callback failed on purpose")
            #expect(afterErrors.count == 1)
            #expect(afterErrors.first?.contains("hook=ws.after") == true)
            #expect(afterErrors.first?.contains("tests/api.lua:") == true, "file:line: \(afterErrors)")
            #expect(Scripted.logLines(server, containing: "every callback failed on purpose, call 1").count == 1)
            #expect(Scripted.logLines(server, containing: "every callback failed on purpose, call 2").isEmpty)
            #expect(Scripted.logLines(server, containing: "ws.every timer cancelled after an error").count == 1)
        }
    }

    @Test func wsLogWritesAtTheLevelGiven() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"),
                ScriptStep.op("a", "log", ["level": "info", "text": "marker-info ✓"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "log", ["level": "warning", "text": "marker-warning"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "log", ["level": "WARN", "text": "marker-warn"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "log", ["level": "error", "text": "marker-error"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "log", ["level": "debug", "text": "marker-debug"]), ScriptStep.recv("a"),
                ScriptStep.op("a", "log", ["level": "loud", "text": "marker-loud"]), ScriptStep.recv("a"),
            ])
            let replies = Array(r.objects("a").dropFirst())
            let oks = replies.map { $0["ok"].bool }
            #expect(oks == [true, true, true, true, true, false])
            #expect(replies[5]["ok"].bool == false)
            #expect(replies[5]["error"].string?.contains("level must be one of trace, debug, info, notice, warning, error, critical; got \"loud\"") == true)
            #expect(Scripted.waitForLog(server, "marker-error"))
            let script = Scripted.path(Self.api)
            #expect(Scripted.logLines(server, containing: " info marker-info ✓ script=\(script)").count == 1, "\(server.stderr)")
            #expect(Scripted.logLines(server, containing: " warning marker-warning script=").count == 1)
            #expect(Scripted.logLines(server, containing: " warning marker-warn script=").count == 1)
            #expect(Scripted.logLines(server, containing: " error marker-error script=").count == 1)
            #expect(Scripted.logLines(server, containing: "marker-debug").isEmpty, "debug is below the default --log-level info")
            #expect(Scripted.logLines(server, containing: "marker-loud").isEmpty)
        }
    }

    @Test func debugLinesShowWithLogLevelDebug() throws {
        try Scripted.withScript(Self.api, ["--log-level", "debug"]) { server in
            _ = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "log", ["level": "debug", "text": "marker-debug"]), ScriptStep.recv("a")])
            #expect(Scripted.waitForLog(server, " debug marker-debug script="))
        }
    }

    @Test func printGoesToTheLogAtInfo() throws {
        try Scripted.withScript(Self.api) { server in
            _ = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.op("a", "print", ["text": "printed"]), ScriptStep.recv("a")])
            #expect(Scripted.waitForLog(server, " info printed\t1\tnil\ttrue\t2.5 script="), "\(server.stderr)")
        }
    }

    @Test func envelopeIsATableOnlyForAValidEnvelope() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"),
                ScriptStep.send("a", #"{"type":"message","payload":{"room":"r1","content":"hi"},"metadata":{"correlation_id":"c-9"}}"#), ScriptStep.recv("a"),
                ScriptStep.send("a", "plain words"), ScriptStep.recv("a"),
                ScriptStep.send("a", #"{"no_type":1}"#), ScriptStep.recv("a"),
                ScriptStep.send("a", #"{"type":5}"#), ScriptStep.recv("a"),
                ScriptStep.send("a", "[1,2]"), ScriptStep.recv("a"),
                ScriptStep.send("a", #"{"type":"message","payload":{"content":"no room"}}"#), ScriptStep.recv("a"),
                ScriptStep.send("a", hex: "7b2274797065223a2278227d"), ScriptStep.recv("a"),
                ScriptStep.send("a", parts: [#"{"type":"typing_start","#, #""payload":{"room":"r2"}}"#]), ScriptStep.recv("a"),
            ])
            let d = Array(r.objects("a").dropFirst())
            #expect(d[0]["envelope_type"].string == "table")
            #expect(d[0]["envelope"]["type"].string == "message")
            #expect(d[0]["envelope"]["payload"].description == #"{"content":"hi","room":"r1"}"#)
            #expect(d[0]["envelope"]["metadata"]["correlation_id"].string == "c-9")
            #expect(d[0]["binary"].bool == false)
            for i in 1...5 {
                #expect(d[i]["envelope_type"].string == "nil", "\(d[i])")
                #expect(d[i]["envelope"].isNull)
                #expect(d[i]["binary"].bool == false)
            }
            #expect(d[1]["text"].string == "plain words")
            #expect(d[1]["length"].int == 11)
            // Binary: msg.text is nil, so no envelope even when the bytes are one.
            #expect(d[6]["binary"].bool == true)
            #expect(d[6]["text"].isNull)
            #expect(d[6]["envelope_type"].string == "nil")
            #expect(d[6]["length"].int == 12)
            // Sent in two frames: the script sees one message, and its envelope.
            #expect(d[7]["envelope"]["type"].string == "typing_start")
            #expect(d[7]["envelope"]["payload"]["room"].string == "r2")
        }
    }

    @Test func onCloseSeesTheCodeReasonAndRoomsItIsLeaving() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"), ScriptStep.open("b"), ScriptStep.recv("b"),
                ScriptStep.op("a", "join", ["room": "r1"]), ScriptStep.recv("a"), ScriptStep.op("b", "join", ["room": "r1"]), ScriptStep.recv("b"),
                ScriptStep.close("a", code: 4321, reason: "bye bye"),
                ScriptStep.recvUntil("b", prefix: "{\"code\""),
                ScriptStep.op("b", "members", ["room": "r1"]), ScriptStep.recvUntil("b", prefix: "{\"count\""),
            ])
            let aID = try #require(r.objects("a")[0]["hello"].string), bID = try #require(r.objects("b")[0]["hello"].string)
            let closedEvent = r.objects("b").first { $0["event"].string == "closed" }
            let event = try #require(closedEvent)
            #expect(event["id"].string == aID)
            #expect(event["code"].int == 4321)
            #expect(event["reason"].string == "bye bye")
            #expect(event["room"].string == "r1")
            #expect(event["members"].strings == [aID, bID], "on_close runs while the connection is still in its rooms")
            #expect(event["self_send"].bool == false, "sending to the closing connection is dropped")
            #expect(r.objects("b").last?["members"].strings == [bID], "and it is out of them afterwards")
        }
    }

    @Test func connCloseSendsTheCodeAndReasonAndRejectsBadCodes() throws {
        try Scripted.withScript(Self.api) { server in
            let r = try Scripted.plan(server.url, [
                ScriptStep.open("a"), ScriptStep.recv("a"),
                ScriptStep.op("a", "bad_close", ["code": 1005]), ScriptStep.recv("a"),
                ScriptStep.op("a", "bad_close", ["code": 5000]), ScriptStep.recv("a"),
                ScriptStep.op("a", "bad_close", ["code": 4000, "reason": String(repeating: "x", count: 124)]), ScriptStep.recv("a"),
                ScriptStep.op("a", "close", ["code": 4444, "reason": "done ✓"]), ScriptStep.waitClose("a"),
                ScriptStep.open("b"), ScriptStep.recv("b"), ScriptStep.op("b", "close"), ScriptStep.waitClose("b"),
            ])
            let o = r.objects("a")
            #expect(o[1]["ok"].bool == false)
            #expect(o[1]["error"].string?.contains("code must be a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999), got 1005") == true, "\(o[1])")
            #expect(o[2]["error"].string?.contains("got 5000") == true)
            #expect(o[3]["error"].string?.contains("reason must be a UTF-8 string of at most 123 bytes") == true)
            #expect(r.close("a")["rcvd"].int == 4444)
            #expect(r.close("a")["rcvd_reason"].string == "done ✓")
            #expect(r.close("a")["by"].string == "server")
            #expect(r.close("b")["rcvd"].int == 1000, "conn:close() with no code")
        }
    }

    @Test(arguments: [
        ("refuse", 4001, "refused by script"),
        ("close", 4100, "closed by on_open"),
        ("closeonly", 4200, "closed, not refused"),
        ("error", 1011, "script error"),
    ])
    func onOpenCanRefuse(action: String, code: Int, reason: String) throws {
        try Scripted.withScript("tests/refuse.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a", "/?action=\(action)"), ScriptStep.waitClose("a")])
            #expect(r.close("a")["rcvd"].int == code)
            #expect(r.close("a")["rcvd_reason"].string == reason)
            #expect(r.messages("a").isEmpty)
            if action == "error" {
                #expect(Scripted.waitForLog(server, "tests/refuse.lua:16: on_open failed on purpose"), "\(server.stderr)")
                #expect(Scripted.logLines(server, containing: "hook=on_open").count == 1)
            }
        }
    }

    /// refuse.lua has no on_message: messages get the --mode behaviour (echo).
    @Test func acceptedConnectionWithoutOnMessageGetsTheModeBehaviour() throws {
        try Scripted.withScript("tests/refuse.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a", "/?action=accept"), ScriptStep.recv("a"), ScriptStep.send("a", "echo me"), ScriptStep.recv("a")])
            #expect(r.texts("a") == ["welcome c1", "echo me"])
        }
    }
}

/// A script in a temporary file, removed when the value goes away.
final class TempLuaScript {
    let url: URL
    var path: String { url.path }

    init(_ text: String, name: String = "script.lua") throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-script-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        url = dir.appendingPathComponent(name)
        try write(text)
    }

    /// Replaces the file's text (whole, through a rename, as an editor saves).
    func write(_ text: String) throws {
        try Data(text.utf8).write(to: url, options: .atomic)
    }

    deinit { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
}

// MARK: - Hostile scripts

@Suite("serve --script hostile scripts", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptHostileTests {
    /// `a` is open before `b` misbehaves; `b` must get 1011 while `a` and a newcomer `c` are served.
    static func survives(_ server: ServeProcess, trigger: String, offenders: Int = 1) throws -> ScriptPlan {
        var steps = [ScriptStep.open("a"), ScriptStep.send("a", "before"), ScriptStep.recv("a")]
        for i in 0..<offenders {
            steps += [ScriptStep.open("b\(i)"), ScriptStep.send("b\(i)", trigger), ScriptStep.waitClose("b\(i)", timeout: 20)]
        }
        steps += [ScriptStep.send("a", "still here"), ScriptStep.recv("a"), ScriptStep.open("c"), ScriptStep.send("c", "newcomer"), ScriptStep.recv("c")]
        return try Scripted.plan(server.url, steps)
    }

    static func expectSurvived(_ r: ScriptPlan, offenders: Int = 1) {
        for i in 0..<offenders {
            #expect(r.close("b\(i)")["rcvd"].int == 1011, "b\(i): \(r.close("b\(i)"))")
            #expect(r.close("b\(i)")["rcvd_reason"].string == "script error")
            #expect(r.messages("b\(i)").isEmpty)
        }
        #expect(r.texts("a") == ["before", "still here"])
        #expect(r.close("a").isNull)
        #expect(r.texts("c") == ["newcomer"])
    }

    @Test(arguments: [("loop", 4), ("pcall-loop", 8)])
    func infiniteLoopIsStoppedByTheBudget(trigger: String, line: Int) throws {
        try Scripted.withScript("hostile/loop.lua") { server in
            let r = try Self.survives(server, trigger: trigger)
            Self.expectSurvived(r)
            #expect(Scripted.waitForLog(server, "hostile/loop.lua:\(line): instruction budget exceeded (10000000 instructions per call)"),
                    "\(server.stderr)")
            #expect(Scripted.logLines(server, containing: "script error").first?.contains("hook=on_message") == true)
        }
    }

    @Test func smallerBudgetFromTheFlag() throws {
        try Scripted.withScript("hostile/loop.lua", ["--script-budget", "50000"]) { server in
            Self.expectSurvived(try Self.survives(server, trigger: "loop"))
            #expect(Scripted.waitForLog(server, "hostile/loop.lua:4: instruction budget exceeded (50000 instructions per call)"), "\(server.stderr)")
        }
    }

    @Test func runtimeErrorInAHook() throws {
        try Scripted.withScript("hostile/error.lua") { server in
            Self.expectSurvived(try Self.survives(server, trigger: "boom", offenders: 2), offenders: 2)
            #expect(Scripted.waitForLog(server, "hostile/error.lua:5: attempt to index a nil value (local 't')", count: 2), "\(server.stderr)")
        }
    }

    /// Twice in a row: the first failure gave its memory back, or the second (and the echoes) would fail.
    @Test(arguments: ["grow", "rep"])
    func unboundedAllocationIsStoppedByTheMemoryCap(trigger: String) throws {
        try Scripted.withScript("hostile/memory.lua") { server in
            Self.expectSurvived(try Self.survives(server, trigger: trigger, offenders: 2), offenders: 2)
            #expect(Scripted.waitForLog(server, "not enough memory: the script reached its limit of 67108864 bytes (--script-memory)", count: 2),
                    "\(server.stderr)")
        }
    }

    @Test func smallerMemoryCapFromTheFlag() throws {
        try Scripted.withScript("hostile/memory.lua", ["--script-memory", "2MiB"]) { server in
            Self.expectSurvived(try Self.survives(server, trigger: "grow"))
            #expect(Scripted.waitForLog(server, "its limit of 2097152 bytes (--script-memory)"), "\(server.stderr)")
        }
    }

    @Test func sandboxReachesNothingDangerous() throws {
        try Scripted.withScript("hostile/sandbox.lua") { server in
            let r = try Scripted.plan(server.url, [ScriptStep.open("a"), ScriptStep.send("a", "check"), ScriptStep.recv("a")])
            #expect(r.texts("a") == [#"{"bytecode_loaded":false,"reachable":{}}"#])
        }
    }

    /// A script that does not load: exit 2, the Lua message on stderr, no URL and no listening.
    @Test(arguments: [
        ("hostile/syntax.lua", "hostile/syntax.lua:4: ')' expected (to close '(' at line 3) near 'end'"),
        ("tests/toplevel-error.lua", "tests/toplevel-error.lua:3: cannot start: settings.mode is nil"),
        ("tests/toplevel-loop.lua", "tests/toplevel-loop.lua:4: instruction budget exceeded (10000000 instructions per call)"),
    ])
    func scriptThatDoesNotLoadStopsStartUp(script: String, message: String) throws {
        let path = Scripted.path(script)
        let child = try ChildProcess(executable: CLI.binary, arguments: ["serve", "--port", "0", "--script", path])
        let status = child.waitForExit(timeout: 20)
        if status == nil { child.stop(timeout: 2) }
        #expect(status == 2)
        #expect(child.stderr.contains("wsctl: --script \(path): \(Scripted.scripts.path)/\(message)"), "\(child.stderr)")
        #expect(child.stdout.isEmpty, "no URL: \(child.stdout)")
        #expect(!child.stderr.contains("listening"))
    }
}

// MARK: - SIGHUP reload

@Suite("serve --script SIGHUP reload", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeScriptReloadTests {
    static func version(_ v: String, ticker: Bool) -> String {
        """
        local VERSION = "\(v)"
        \(ticker ? "ws.every(30, function() ws.broadcast(VERSION .. \" tick\") end)" : "")
        function on_message(conn, msg)
            if msg.text == "remember" then
                conn:set("n", 42)
                conn:set("t", { list = { 1, "two" }, ok = true })
            end
            local t = conn:get("t")
            conn:send(VERSION .. " " .. msg.text .. " n=" .. tostring(conn:get("n")) .. " t=" .. (t and ws.json.encode(t) or "nil"))
        end
        """
    }

    static func hup(_ server: ServeProcess, waitFor text: String, count: Int) throws {
        kill(server.pid, SIGHUP)
        guard Scripted.waitForLog(server, text, count: count) else {
            throw Interop.Failure(description: "no \"\(text)\" in the log after SIGHUP: \(server.stderr)")
        }
    }

    @Test func reloadAppliesToOpenAndNewConnectionsKeepsValuesAndSurvivesABrokenEdit() throws {
        let file = try TempLuaScript(Self.version("v1", ticker: true), name: "reload.lua")
        try Scripted.withScript(file.path) { server in
            let client = try Scripted.startPlan(server.url, [
                ScriptStep.open("a"), ScriptStep.send("a", "remember"), ScriptStep.recvUntil("a", prefix: "v1 remember"),
                ScriptStep.recvUntil("a", prefix: "v1 tick"),
                ScriptStep.pause("edit"),
                ScriptStep.send("a", "after"), ScriptStep.recvUntil("a", prefix: "v2 after"), ScriptStep.drain("a", quiet: 0.3),
                ScriptStep.open("b"), ScriptStep.send("b", "new"), ScriptStep.recvUntil("b", prefix: "v2 new"), ScriptStep.drain("b", quiet: 0.2),
                ScriptStep.pause("break"),
                ScriptStep.send("a", "again"), ScriptStep.recvUntil("a", prefix: "v2 again"),
                ScriptStep.open("c"), ScriptStep.send("c", "third"), ScriptStep.recvUntil("c", prefix: "v2 third"),
            ])
            try Scripted.atPause(client, "edit") {
                try file.write(Self.version("v2", ticker: false))
                try Self.hup(server, waitFor: "script reloaded", count: 1)
            }
            try Scripted.atPause(client, "break") {
                try file.write("function on_message(conn, msg\n    conn:send('v3')\nend\n")
                try Self.hup(server, waitFor: "script reload failed", count: 1)
            }
            let r = ScriptPlan(try Interop.finish(client, "script_client.py", timeout: 45))
            let t = #"t={"list":[1,"two"],"ok":true}"#
            let a = r.texts("a").filter { !$0.hasSuffix(" tick") }
            #expect(a == ["v1 remember n=42 \(t)", "v2 after n=42 \(t)", "v2 again n=42 \(t)"], "conn:set values survive the reload")
            // The old script's timer went with it: no v1 tick after the first v2 reply.
            let texts = r.texts("a")
            let firstV2Index = texts.firstIndex { $0.hasPrefix("v2 ") }
            let firstV2 = try #require(firstV2Index)
            #expect(!texts[firstV2...].contains("v1 tick"), "\(texts)")
            #expect(r.texts("b") == ["v2 new n=nil t=nil"])
            #expect(r.texts("c") == ["v2 third n=nil t=nil"], "the broken edit left v2 running")
            let failure = Scripted.logLines(server, containing: "script reload failed")
            #expect(failure.count == 1)
            #expect(failure.first?.contains("reload.lua:2: ')' expected near 'conn'") == true, "\(failure)")
            #expect(Scripted.logLines(server, containing: "script reloaded").first?.contains("stores carried=1") == true)
        }
    }

    /// ticker.lua keeps its timer handle with conn:set. The reload cancels the old timers; the handle
    /// must not come back as a bare table whose :cancel() fails (the next "every N" and on_close
    /// would each raise and the first would close the connection with 1011).
    @Test func tickerKeepsWorkingAfterAReload() throws {
        let source = try String(contentsOfFile: Scripted.path("ticker.lua"), encoding: .utf8)
        let file = try TempLuaScript(source, name: "ticker.lua")
        try Scripted.withScript(file.path) { server in
            let client = try Scripted.startPlan(server.url, [
                ScriptStep.open("a"), ScriptStep.send("a", "every 30"), ScriptStep.recvUntil("a", prefix: "{\"every\":30,\"own_tick\":2}"),
                ScriptStep.pause("hup"),
                ScriptStep.send("a", "every 40"), ScriptStep.recvUntil("a", prefix: "{\"every\":40,\"ok\":true}"),
                ScriptStep.recvUntil("a", prefix: "{\"every\":40,\"own_tick\":2}"),
                ScriptStep.close("a"),
            ])
            try Scripted.atPause(client, "hup") { try Self.hup(server, waitFor: "script reloaded", count: 1) }
            let r = ScriptPlan(try Interop.finish(client, "script_client.py", timeout: 45))
            #expect(r.close("a")["rcvd"].int == 1000)
            #expect(r.close("a")["by"].string == "client")
            _ = Scripted.waitForLog(server, "close code=1000", timeout: 3)
            #expect(Scripted.logLines(server, containing: "script error").isEmpty, "\(server.stderr)")
            #expect(Scripted.logLines(server, containing: "script reloaded").first?.contains("values not carried=1") == true, "\(server.stderr)")
        }
    }

    /// A value that cannot be carried (a function) does not cost the others.
    @Test func plainValuesSurviveBesideOnesThatCannot() throws {
        let script = """
            function on_message(conn, msg)
                if msg.text == "remember" then
                    conn:set("name", "ann")
                    conn:set("list", { 1, 2, 3 })
                    conn:set("greet", function() return "hi" end)
                    conn:set("timer", ws.after(60000, function() end))
                end
                conn:send(tostring(conn:get("name")) .. " " .. type(conn:get("list")) .. " " .. type(conn:get("greet")) .. " " .. type(conn:get("timer")))
            end
            """
        let file = try TempLuaScript(script)
        try Scripted.withScript(file.path) { server in
            let client = try Scripted.startPlan(server.url, [
                ScriptStep.open("a"), ScriptStep.send("a", "remember"), ScriptStep.recv("a"), ScriptStep.pause("hup"), ScriptStep.send("a", "after"), ScriptStep.recv("a"),
            ])
            try Scripted.atPause(client, "hup") { try Self.hup(server, waitFor: "script reloaded", count: 1) }
            let r = ScriptPlan(try Interop.finish(client, "script_client.py", timeout: 45))
            #expect(r.texts("a") == ["ann table function table", "ann table nil nil"])
            #expect(Scripted.logLines(server, containing: "script reloaded").first?.contains("values not carried=2") == true, "\(server.stderr)")
        }
    }
}
