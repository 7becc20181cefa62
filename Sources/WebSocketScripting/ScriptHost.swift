import CLua
import CLuaSandbox
import Foundation
import Logging
import NIOCore
import Synchronization
import WebSocketCodec
import WebSocketServer

/// A script that cannot be loaded, or whose top level fails (the Lua message, with file:line).
public struct ScriptLoadError: Error, CustomStringConvertible {
    public var description: String
}

/// One Lua 5.4 state running a `serve --script` file, and everything the script can reach.
///
/// Threading: every method runs on `loop`, the script's event loop; all hooks and timers run there
/// one at a time. Connections on other loops reach it with `loop.execute` (their messages keep their
/// order), and what the script sends goes back to each connection's own loop.
public final class ScriptHost: ServerScript, @unchecked Sendable {
    public let loop: any EventLoop
    let path: String
    private let logger: Logger
    private let memoryLimit: Int
    private let budget: Int
    private let maxMessageSize: Int

    private var state: LuaScriptState
    /// The state being loaded (start-up, SIGHUP) while its top level runs.
    private var loading: LuaScriptState?
    /// Whether the loaded script defines on_message (otherwise messages get the --mode behaviour).
    private let handlesMessagesFlag = Atomic<Bool>(false)
    public var handlesMessages: Bool { handlesMessagesFlag.load(ordering: .relaxed) }

    private final class Peer {
        let serial: Int
        let id: String
        let handle: ScriptConnection
        var conn: Int32 = LUA_NOREF
        var rooms: [String] = []
        init(serial: Int, id: String, handle: ScriptConnection) {
            self.serial = serial
            self.id = id
            self.handle = handle
        }
    }

    private var peers: [Int: Peer] = [:]
    private var peersByID: [String: Peer] = [:]
    private var nextSerial = 1
    /// Members of each room, in join order.
    private var rooms: [String: [String]] = [:]

    private struct Timer {
        /// The state the function lives in.
        var owner: OpaquePointer
        var function: Int32
        var interval: TimeAmount
        var repeating: Bool
        var task: Scheduled<Void>?
    }
    private var timers: [Int: Timer] = [:]
    private var nextTimerID = 1
    static let maxTimers = 100_000

    /// Handlers on this loop that the current call wrote to; flushed when it returns.
    private var dirty: [ScriptConnection] = []
    private var depth = 0

    /// Where the hidden key of a conn table points (its peer serial). Any unique address will do.
    nonisolated(unsafe) private static let serialKey = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

    /// Loads `path` (its top level runs) on `loop`, which must be the current loop.
    /// - Parameters:
    ///   - memoryLimit: most bytes the Lua state may hold (`--script-memory`).
    ///   - instructionBudget: Lua instructions one hook or timer call may run (`--script-budget`).
    ///   - maxMessageSize: the server's message limit; larger sends are refused.
    public init(path: String, loop: any EventLoop, memoryLimit: Int, instructionBudget: Int, maxMessageSize: Int,
                logger: Logger) throws(ScriptLoadError) {
        self.path = path
        self.loop = loop
        self.logger = logger
        self.memoryLimit = memoryLimit
        self.budget = instructionBudget
        self.maxMessageSize = maxMessageSize
        state = LuaScriptState.placeholder
        state = try makeState()
        handlesMessagesFlag.store(state.hasOnMessage, ordering: .relaxed)
    }

    deinit { state.close() }

    // MARK: Loading

    private func makeState() throws(ScriptLoadError) -> LuaScriptState {
        let host = Unmanaged.passUnretained(self).toOpaque()
        guard let L = wsl_open(memoryLimit, host, scriptDispatch) else {
            throw ScriptLoadError(description: "cannot create a Lua state (out of memory?)")
        }
        var s = LuaScriptState(L: L)
        // The prelude, with the host functions as its argument.
        let prelude = ScriptPrelude.source
        var status = prelude.withCString { wsl_load_buffer(L, $0, strlen($0), "=prelude") }
        if status == LUA_OK {
            lua_createtable(L, 0, Int32(HostOp.allCases.count))
            for op in HostOp.allCases {
                wsl_push_host_function(L, op.rawValue)
                lua_setfield(L, -2, op.name)
            }
            lua_pushlightuserdata(L, nil)
            lua_setfield(L, -2, "json_null")
            status = wsl_pcall(L, 1, 5)
        }
        guard status == LUA_OK else {
            let message = Lua.string(L, -1) ?? "?"
            wsl_close(L)
            throw ScriptLoadError(description: "script prelude failed: \(message)")
        }
        s.storeSet = Lua.ref(L)
        s.storeGet = Lua.ref(L)
        s.timerMeta = Lua.ref(L)
        s.msgMeta = Lua.ref(L)
        s.connMeta = Lua.ref(L)
        status = wsl_load_file(L, path)
        if status == LUA_OK {
            wsl_set_budget(L, Int64(budget))
            loading = s
            status = wsl_pcall(L, 0, 0)
            loading = nil
        }
        if status != LUA_OK {
            let message = status == LUA_ERRMEM ? memoryMessage : firstLine(Lua.string(L, -1) ?? "?")
            cancelTimers(ownedBy: L)
            s.close()
            throw ScriptLoadError(description: "\(message)")
        }
        lua_settop(L, 0)
        s.hasOnMessage = lua_getglobal(L, "on_message") == LUA_TFUNCTION
        lua_settop(L, 0)
        return s
    }

    private var memoryMessage: String {
        "not enough memory: the script reached its limit of \(memoryLimit) bytes (--script-memory)"
    }

    /// Loads the file again (SIGHUP). On success the new script replaces the old one: connections
    /// stay open with their rooms and their conn:set values (those JSON can carry); the old
    /// script's timers are cancelled. On failure the old script keeps running.
    public func reload() {
        loop.assertInEventLoop()
        let fresh: LuaScriptState
        do {
            fresh = try makeState()
        } catch {
            logger.error("script reload failed; the previous script keeps running", metadata: ["script": "\(path)", "error": "\(error.description)"])
            return
        }
        let old = state
        cancelTimers(ownedBy: old.L)
        // Conn objects in the new state, with their stores carried over as JSON, value by value:
        // what is not plain data stays behind (see carriedEntries) without costing the rest.
        var carried = 0
        var dropped = 0
        for (_, peer) in peers {
            var entries: [(key: JSONValue, value: JSONValue)] = []
            Lua.pushRef(old.L, old.storeGet)
            Lua.pushRef(old.L, peer.conn)
            if wsl_pcall(old.L, 1, 1) == LUA_OK, lua_type(old.L, -1) == LUA_TTABLE {
                let found = carriedEntries(old.L, -1)
                entries = found.entries
                dropped += found.dropped
            }
            lua_settop(old.L, 0)
            peer.conn = makeConn(fresh.L, fresh, peer)
            if !entries.isEmpty {
                Lua.pushRef(fresh.L, fresh.storeSet)
                Lua.pushRef(fresh.L, peer.conn)
                lua_createtable(fresh.L, 0, Int32(clamping: entries.count))
                for (key, value) in entries {
                    LuaJSON.push(fresh.L, key)
                    LuaJSON.push(fresh.L, value)
                    lua_rawset(fresh.L, -3)
                }
                if wsl_pcall(fresh.L, 2, 0) == LUA_OK { carried += 1 }
                lua_settop(fresh.L, 0)
            }
        }
        state = fresh
        old.close()
        handlesMessagesFlag.store(fresh.hasOnMessage, ordering: .relaxed)
        logger.notice("script reloaded", metadata: [
            "script": "\(path)", "connections": "\(peers.count)", "stores carried": "\(carried)", "values not carried": "\(dropped)",
        ])
    }

    /// The entries of a conn:set store (the table at `index`) that can move to a new state, and how
    /// many cannot. Keys must be strings or numbers; values plain data (what ws.json.encode takes),
    /// with no table that has a metatable: a timer handle or a conn belongs to the old state (whose
    /// timers are cancelled) and would arrive as a bare table whose methods are gone.
    private func carriedEntries(_ L: OpaquePointer, _ index: Int32) -> (entries: [(key: JSONValue, value: JSONValue)], dropped: Int) {
        let index = lua_absindex(L, index)
        var entries: [(key: JSONValue, value: JSONValue)] = []
        var dropped = 0
        guard lua_checkstack(L, 4) != 0 else { return ([], 0) }
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            let key: JSONValue?
            switch lua_type(L, -2) {
            case LUA_TSTRING: key = .string(Lua.string(L, -2)!)
            case LUA_TNUMBER: key = .number(lua_tonumberx(L, -2, nil))
            default: key = nil
            }
            if let key, Self.isPlainData(L, -1, depth: 0), let value = try? LuaJSON.value(L, -1) {
                entries.append((key, value))
            } else {
                dropped += 1
            }
            wsl_pop(L, 1)
        }
        return (entries, dropped)
    }

    /// False for a table, at any depth, that has a metatable (or nesting past LuaJSON.maxDepth).
    private static func isPlainData(_ L: OpaquePointer, _ index: Int32, depth: Int) -> Bool {
        guard lua_type(L, index) == LUA_TTABLE else { return true }
        let index = lua_absindex(L, index)
        guard depth < LuaJSON.maxDepth, lua_checkstack(L, 4) != 0 else { return false }
        if lua_getmetatable(L, index) != 0 {
            wsl_pop(L, 1)
            return false
        }
        lua_pushnil(L)
        while lua_next(L, index) != 0 {
            if !isPlainData(L, -1, depth: depth + 1) {
                wsl_pop(L, 2)
                return false
            }
            wsl_pop(L, 1)
        }
        return true
    }

    private func makeConn(_ L: OpaquePointer, _ s: LuaScriptState, _ peer: Peer) -> Int32 {
        lua_createtable(L, 0, 2)
        Lua.pushString(L, peer.id)
        lua_setfield(L, -2, "id")
        lua_pushinteger(L, lua_Integer(peer.serial))
        lua_rawsetp(L, -2, UnsafeRawPointer(Self.serialKey))
        Lua.pushRef(L, s.connMeta)
        lua_setmetatable(L, -2)
        return Lua.ref(L)
    }

    // MARK: Events from connections (on this loop)

    public func opened(_ handle: ScriptConnection, request: ScriptRequest) {
        loop.assertInEventLoop()
        let peer = Peer(serial: nextSerial, id: handle.id, handle: handle)
        nextSerial += 1
        peers[peer.serial] = peer
        peersByID[peer.id] = peer
        let L = state.L
        peer.conn = makeConn(L, state, peer)
        guard lua_getglobal(L, "on_open") == LUA_TFUNCTION else {
            lua_settop(L, 0)
            return
        }
        Lua.pushRef(L, peer.conn)
        pushRequest(L, request)
        let ok = call(L, args: 2, results: 1, hook: "on_open", peer: peer)
        if ok, lua_type(L, -1) == LUA_TBOOLEAN, lua_toboolean(L, -1) == 0 {
            close(peer, code: 4001, reason: "refused by script")
        }
        lua_settop(L, 0)
        finishCall()
    }

    private func pushRequest(_ L: OpaquePointer, _ r: ScriptRequest) {
        lua_createtable(L, 0, 5)
        Lua.pushString(L, r.path)
        lua_setfield(L, -2, "path")
        lua_createtable(L, 0, 0)
        for (name, value) in Self.parseQuery(r.query) {
            Lua.pushString(L, value)
            lua_setfield(L, -2, name)
        }
        lua_setfield(L, -2, "query")
        var headers: [String: String] = [:]
        var order: [String] = []
        for (name, value) in r.headers {
            let key = name.lowercased()
            if let existing = headers[key] { headers[key] = existing + ", " + value } else {
                headers[key] = value
                order.append(key)
            }
        }
        lua_createtable(L, 0, Int32(clamping: order.count))
        for key in order {
            Lua.pushString(L, headers[key]!)
            lua_setfield(L, -2, key)
        }
        lua_setfield(L, -2, "headers")
        Lua.pushString(L, r.remote)
        lua_setfield(L, -2, "remote")
        if let sp = r.subprotocol {
            Lua.pushString(L, sp)
            lua_setfield(L, -2, "subprotocol")
        }
    }

    /// `a=1&b=x%20y` → [(a, 1), (b, x y)]: `+` is a space, %XX decoded; later duplicates win.
    static func parseQuery(_ query: String) -> [(String, String)] {
        func decode(_ s: Substring) -> String {
            var out: [UInt8] = []
            var bytes = Array(s.utf8)[...]
            while let b = bytes.popFirst() {
                if b == UInt8(ascii: "+") { out.append(0x20); continue }
                if b == UInt8(ascii: "%"), bytes.count >= 2,
                    let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
                {
                    out.append(v)
                    bytes = bytes.dropFirst(2)
                    continue
                }
                out.append(b)
            }
            return String(decoding: out, as: UTF8.self)
        }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// A message for on_message (the handler checked it: complete, valid, within limits).
    public func message(connectionID: String, binary: Bool, payload: UnsafeRawBufferPointer) {
        loop.assertInEventLoop()
        guard let peer = peersByID[connectionID] else { return }
        let L = state.L
        guard lua_getglobal(L, "on_message") == LUA_TFUNCTION else {
            lua_settop(L, 0)
            return
        }
        Lua.pushRef(L, peer.conn)
        lua_createtable(L, 0, 3)
        Lua.pushBytes(L, payload)
        if !binary {
            lua_pushvalue(L, -1)
            lua_setfield(L, -3, "text")
        }
        lua_setfield(L, -2, "data")
        lua_pushboolean(L, binary ? 1 : 0)
        lua_setfield(L, -2, "binary")
        Lua.pushRef(L, state.msgMeta)
        lua_setmetatable(L, -2)
        _ = call(L, args: 2, results: 0, hook: "on_message", peer: peer)
        lua_settop(L, 0)
        finishCall()
    }

    public func closed(connectionID: String, code: UInt16, reason: String) {
        loop.assertInEventLoop()
        guard let peer = peersByID.removeValue(forKey: connectionID) else { return }
        // on_close still sees the connection in its rooms (conn:rooms(), ws.members), so that it can
        // tell the others; sends to the closed connection itself are dropped.
        let L = state.L
        if lua_getglobal(L, "on_close") == LUA_TFUNCTION {
            Lua.pushRef(L, peer.conn)
            lua_pushinteger(L, lua_Integer(code))
            Lua.pushString(L, reason)
            _ = call(L, args: 3, results: 0, hook: "on_close", peer: nil)
        }
        lua_settop(L, 0)
        peers[peer.serial] = nil
        for room in peer.rooms { removeMember(peer.id, from: room) }
        peer.rooms = []
        Lua.unref(L, peer.conn)
        peer.conn = LUA_NOREF
        finishCall()
    }

    /// Runs a function under the budget. On an error: logged with file:line, and the connection
    /// the hook ran for (if any) is closed with 1011. Leaves the results on the stack when it succeeds.
    private func call(_ L: OpaquePointer, args: Int32, results: Int32, hook: String, peer: Peer?) -> Bool {
        wsl_set_budget(L, Int64(budget))
        depth += 1
        let status = wsl_pcall(L, args, results)
        depth -= 1
        if status == LUA_OK { return true }
        let full = Lua.string(L, -1) ?? "(no message)"
        let message = status == LUA_ERRMEM ? memoryMessage : firstLine(full)
        lua_settop(L, 0)
        var metadata: Logger.Metadata = ["script": "\(path)", "hook": "\(hook)", "error": "\(message)"]
        if let peer { metadata["conn"] = "\(peer.id)" }
        logger.error("script error", metadata: metadata)
        if status != LUA_ERRMEM, full.contains("\n") {
            logger.debug("script traceback", metadata: ["script": "\(path)", "traceback": "\(full)"])
        }
        wsl_gc_collect(L)
        if let peer { close(peer, code: 1011, reason: "script error") }
        return false
    }

    private func finishCall() {
        guard depth == 0, !dirty.isEmpty else { return }
        let written = dirty
        dirty.removeAll(keepingCapacity: true)
        for c in written { c.flush() }
    }

    private func firstLine(_ s: String) -> String {
        String(s.prefix { $0 != "\n" })
    }

    // MARK: Timers

    private func cancelTimers(ownedBy L: OpaquePointer) {
        for (id, t) in timers where t.owner == L {
            t.task?.cancel()
            timers[id] = nil
        }
    }

    /// The state `L` belongs to (the one loading, or the running one).
    private func current(_ L: OpaquePointer) -> LuaScriptState {
        if let loading, loading.L == L { return loading }
        return state
    }

    private func fire(_ id: Int) {
        guard var timer = timers[id], timer.owner == state.L else { return }
        let L = state.L
        Lua.pushRef(L, timer.function)
        let ok = call(L, args: 0, results: 0, hook: timer.repeating ? "ws.every" : "ws.after", peer: nil)
        lua_settop(L, 0)
        if timer.repeating && ok, timers[id] != nil {
            timer.task = schedule(id, after: timer.interval)
            timers[id] = timer
        } else {
            if timer.repeating && !ok {
                logger.warning("ws.every timer cancelled after an error", metadata: ["script": "\(path)"])
            }
            if let t = timers.removeValue(forKey: id) { Lua.unref(L, t.function) }
        }
        finishCall()
    }

    private func schedule(_ id: Int, after delay: TimeAmount) -> Scheduled<Void> {
        loop.scheduleTask(in: delay) { [self] in self.fire(id) }
    }

    // MARK: Sending

    /// A message to one peer; false when the connection is closing or gone.
    @discardableResult
    private func send(_ peer: Peer, opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) -> Bool {
        let c = peer.handle
        if c.isOnCurrentLoop {
            let ok = c.send(opcode: opcode, payload: payload)
            markWritten(c)
            return ok
        }
        let copy = [UInt8](payload)
        c.eventLoop.execute {
            copy.withUnsafeBytes { _ = c.send(opcode: opcode, payload: $0) }
            c.flush()
        }
        return true
    }

    private func sendRaw(_ peer: Peer, bytes: UnsafeRawBufferPointer) -> Bool {
        let c = peer.handle
        if c.isOnCurrentLoop {
            let ok = c.sendRaw(bytes)
            markWritten(c)
            return ok
        }
        let copy = [UInt8](bytes)
        c.eventLoop.execute {
            copy.withUnsafeBytes { _ = c.sendRaw($0) }
            c.flush()
        }
        return true
    }

    private func markWritten(_ c: ScriptConnection) {
        if c.markWritten() { dirty.append(c) }
    }

    private func close(_ peer: Peer, code: UInt16, reason: String) {
        let c = peer.handle
        if c.isOnCurrentLoop {
            c.close(code: code, reason: reason)
        } else {
            c.eventLoop.execute { c.close(code: code, reason: reason) }
        }
    }

    private func removeMember(_ id: String, from room: String) {
        guard var members = rooms[room] else { return }
        members.removeAll { $0 == id }
        rooms[room] = members.isEmpty ? nil : members
    }

    // MARK: Host functions (called from Lua through the trampoline)

    enum HostOp: Int32, CaseIterable {
        case send = 1, sendBinary, sendEnvelope, sendRaw, close, join, leave, rooms
        case broadcast, members, sendTo, after, every, log, jsonEncode, jsonDecode, now, uuid
        case envelope, timerCancel, connections, encodeFrame

        var name: String {
            switch self {
            case .send: "send"
            case .sendBinary: "send_binary"
            case .sendEnvelope: "send_envelope"
            case .sendRaw: "send_raw"
            case .close: "close"
            case .join: "join"
            case .leave: "leave"
            case .rooms: "rooms"
            case .broadcast: "broadcast"
            case .members: "members"
            case .sendTo: "send_to"
            case .after: "after"
            case .every: "every"
            case .log: "log"
            case .jsonEncode: "json_encode"
            case .jsonDecode: "json_decode"
            case .now: "now"
            case .uuid: "uuid"
            case .envelope: "envelope"
            case .timerCancel: "timer_cancel"
            case .connections: "connections"
            case .encodeFrame: "encode_frame"
            }
        }

        /// How errors name the function.
        var luaName: String {
            switch self {
            case .send, .sendBinary, .sendEnvelope, .sendRaw, .close, .join, .leave, .rooms: "conn:\(name)"
            case .jsonEncode: "ws.json.encode"
            case .jsonDecode: "ws.json.decode"
            case .timerCancel: "timer:cancel"
            default: "ws.\(name)"
            }
        }
    }

    /// Never raises: returns the result count, or -1 with a message pushed (the C side raises it).
    fileprivate func dispatch(_ L: OpaquePointer, _ raw: Int32) -> Int32 {
        guard let op = HostOp(rawValue: raw) else { return fail(L, "unknown host function \(raw)") }
        switch run(L, op) {
        case .success(let n): return n
        case .failure(let e): return fail(L, "\(op.luaName): \(e.message)")
        }
    }

    private struct HostError: Error { var message: String }

    private func fail(_ L: OpaquePointer, _ message: String) -> Int32 {
        Lua.pushString(L, message)
        return -1
    }

    private func peerArg(_ L: OpaquePointer, _ i: Int32) -> Result<Peer?, HostError> {
        guard lua_type(L, i) == LUA_TTABLE else {
            return .failure(HostError(message: "expected a conn (call it as conn:method(...)), got \(Lua.typeName(L, i))"))
        }
        _ = lua_rawgetp(L, i, UnsafeRawPointer(Self.serialKey))
        let serial = Lua.integer(L, -1)
        wsl_pop(L, 1)
        guard let serial else { return .failure(HostError(message: "expected a conn, got a table that is not one")) }
        return .success(peers[Int(serial)])
    }

    private func stringArg(_ L: OpaquePointer, _ i: Int32, _ what: String) -> Result<UnsafeRawBufferPointer, HostError> {
        guard let b = Lua.bytes(L, i) else {
            return .failure(HostError(message: "\(what) must be a string, got \(Lua.typeName(L, i))"))
        }
        return .success(b)
    }

    private func textArg(_ L: OpaquePointer, _ i: Int32, _ what: String) -> Result<UnsafeRawBufferPointer, HostError> {
        stringArg(L, i, what).flatMap { b in
            if let bad = WebSocketUTF8Validator.firstInvalidIndex(b) {
                return .failure(HostError(message: "\(what) is not valid UTF-8 (byte \(bad)); text messages must be (use send_binary, or send_raw to break the rules on purpose)"))
            }
            if b.count > maxMessageSize {
                return .failure(HostError(message: "\(what) is \(b.count) bytes, over --max-message-size (\(maxMessageSize))"))
            }
            return .success(b)
        }
    }

    private func roomArg(_ L: OpaquePointer, _ i: Int32) -> Result<String, HostError> {
        guard let b = Lua.bytes(L, i), b.count > 0, b.count <= 1024 else {
            return .failure(HostError(message: "room must be a non-empty string of at most 1024 bytes, got \(Lua.typeName(L, i))"))
        }
        return .success(String(decoding: b, as: UTF8.self))
    }

    private func run(_ L: OpaquePointer, _ op: HostOp) -> Result<Int32, HostError> {
        Result { () throws(HostError) -> Int32 in
            switch op {
            case .send, .sendBinary:
                let peer = try peerArg(L, 1).get()
                let payload = op == .send ? try textArg(L, 2, "text").get() : try stringArg(L, 2, "bytes").get()
                if op == .sendBinary && payload.count > maxMessageSize {
                    throw HostError(message: "bytes are \(payload.count) bytes, over --max-message-size (\(maxMessageSize))")
                }
                let ok = peer.map { send($0, opcode: op == .send ? .text : .binary, payload: payload) } ?? false
                lua_pushboolean(L, ok ? 1 : 0)
                return 1

            case .sendEnvelope:
                let peer = try peerArg(L, 1).get()
                guard let type = Lua.string(L, 2), !type.isEmpty else {
                    throw HostError(message: "type must be a non-empty string, got \(Lua.typeName(L, 2))")
                }
                var payload: JSONValue = [:]
                if !Lua.isNoneOrNil(L, 3) {
                    guard lua_type(L, 3) == LUA_TTABLE else { throw HostError(message: "payload must be a table, got \(Lua.typeName(L, 3))") }
                    do throws(LuaJSON.EncodeError) { payload = try LuaJSON.value(L, 3) } catch { throw HostError(message: "payload: \(error.message)") }
                    if case .array = payload { throw HostError(message: "payload must be a table with string keys (an object), not a list") }
                }
                var correlation: String? = nil
                if !Lua.isNoneOrNil(L, 4) {
                    guard let c = Lua.string(L, 4) else { throw HostError(message: "correlation_id must be a string, got \(Lua.typeName(L, 4))") }
                    correlation = c
                }
                let text = WebSocketEnvelope.make(type: WebSocketEnvelopeType(type), payload: payload, correlationID: correlation).encoded()
                var ok = false
                if let peer {
                    var t = text
                    ok = t.withUTF8 { send(peer, opcode: .text, payload: UnsafeRawBufferPointer($0)) }
                }
                lua_pushboolean(L, ok ? 1 : 0)
                return 1

            case .sendRaw:
                let peer = try peerArg(L, 1).get()
                let bytes = try stringArg(L, 2, "bytes").get()
                let ok = peer.map { sendRaw($0, bytes: bytes) } ?? false
                lua_pushboolean(L, ok ? 1 : 0)
                return 1

            case .close:
                let peer = try peerArg(L, 1).get()
                var code: UInt16 = 1000
                if !Lua.isNoneOrNil(L, 2) {
                    guard let c = Lua.integer(L, 2), let c16 = UInt16(exactly: c), WebSocketCloseCode(code: c16).isSendable else {
                        throw HostError(message: "code must be a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999), got \(Lua.string(L, 2) ?? Lua.typeName(L, 2))")
                    }
                    code = c16
                }
                var reason = ""
                if !Lua.isNoneOrNil(L, 3) {
                    guard let r = Lua.bytes(L, 3), WebSocketUTF8Validator.firstInvalidIndex(r) == nil, r.count <= 123 else {
                        throw HostError(message: "reason must be a UTF-8 string of at most 123 bytes")
                    }
                    reason = String(decoding: r, as: UTF8.self)
                }
                if let peer { close(peer, code: code, reason: reason) }
                return 0

            case .join:
                let peer = try peerArg(L, 1).get()
                let room = try roomArg(L, 2).get()
                guard let peer else {
                    lua_pushboolean(L, 0)
                    return 1
                }
                if !peer.rooms.contains(room) {
                    guard peer.rooms.count < 1000 else { throw HostError(message: "a connection may be in at most 1000 rooms") }
                    peer.rooms.append(room)
                    rooms[room, default: []].append(peer.id)
                }
                lua_pushboolean(L, 1)
                return 1

            case .leave:
                let peer = try peerArg(L, 1).get()
                let room = try roomArg(L, 2).get()
                var was = false
                if let peer, let i = peer.rooms.firstIndex(of: room) {
                    peer.rooms.remove(at: i)
                    removeMember(peer.id, from: room)
                    was = true
                }
                lua_pushboolean(L, was ? 1 : 0)
                return 1

            case .rooms:
                let peer = try peerArg(L, 1).get()
                Lua.pushList(L, peer?.rooms ?? [])
                return 1

            case .broadcast:
                let text = try textArg(L, 1, "text").get()
                var room: String? = nil
                if !Lua.isNoneOrNil(L, 2) { room = try roomArg(L, 2).get() }
                var except: String? = nil
                if !Lua.isNoneOrNil(L, 3) {
                    if lua_type(L, 3) == LUA_TTABLE {
                        except = try peerArg(L, 3).get()?.id
                    } else if let id = Lua.string(L, 3) {
                        except = id
                    } else {
                        throw HostError(message: "except must be a conn or a connection id, got \(Lua.typeName(L, 3))")
                    }
                }
                let targets: [Peer]
                if let room {
                    targets = (rooms[room] ?? []).compactMap { peersByID[$0] }
                } else {
                    targets = peers.keys.sorted().compactMap { peers[$0] }
                }
                var count = 0
                for p in targets where p.id != except {
                    if send(p, opcode: .text, payload: text) { count += 1 }
                }
                lua_pushinteger(L, lua_Integer(count))
                return 1

            case .members:
                let room = try roomArg(L, 1).get()
                Lua.pushList(L, rooms[room] ?? [])
                return 1

            case .connections:
                Lua.pushList(L, peers.keys.sorted().compactMap { peers[$0]?.id })
                return 1

            case .sendTo:
                guard let id = Lua.string(L, 1) else { throw HostError(message: "conn_id must be a string, got \(Lua.typeName(L, 1))") }
                let text = try textArg(L, 2, "text").get()
                let ok = peersByID[id].map { send($0, opcode: .text, payload: text) } ?? false
                lua_pushboolean(L, ok ? 1 : 0)
                return 1

            case .after, .every:
                guard let ms = Lua.number(L, 1), ms.isFinite, ms >= 0, ms <= 86_400_000 * 365 else {
                    throw HostError(message: "ms must be a number of milliseconds (0 or more), got \(Lua.string(L, 1) ?? Lua.typeName(L, 1))")
                }
                if op == .every && ms < 1 { throw HostError(message: "ms must be at least 1 for a repeating timer") }
                guard lua_type(L, 2) == LUA_TFUNCTION else { throw HostError(message: "fn must be a function, got \(Lua.typeName(L, 2))") }
                guard timers.count < Self.maxTimers else { throw HostError(message: "too many timers (\(Self.maxTimers) pending); cancel some") }
                lua_pushvalue(L, 2)
                let function = Lua.ref(L)
                let id = nextTimerID
                nextTimerID += 1
                let interval = TimeAmount.nanoseconds(Int64(ms * 1_000_000))
                timers[id] = Timer(owner: L, function: function, interval: interval, repeating: op == .every, task: schedule(id, after: interval))
                lua_createtable(L, 1, 0)
                lua_pushinteger(L, lua_Integer(id))
                lua_rawseti(L, -2, 1)
                Lua.pushRef(L, current(L).timerMeta)
                lua_setmetatable(L, -2)
                return 1

            case .timerCancel:
                guard lua_type(L, 1) == LUA_TTABLE else { throw HostError(message: "expected a timer handle (handle:cancel()), got \(Lua.typeName(L, 1))") }
                _ = lua_rawgeti(L, 1, 1)
                let id = Lua.integer(L, -1).map { Int($0) }
                wsl_pop(L, 1)
                var was = false
                if let id, let t = timers.removeValue(forKey: id) {
                    t.task?.cancel()
                    Lua.unref(L, t.function)
                    was = true
                }
                lua_pushboolean(L, was ? 1 : 0)
                return 1

            case .log:
                guard let name = Lua.string(L, 1) else { throw HostError(message: "level must be a string, got \(Lua.typeName(L, 1))") }
                let lower = name.lowercased()
                guard let level = lower == "warn" ? .warning : Logger.Level(rawValue: lower) else {
                    throw HostError(message: "level must be one of trace, debug, info, notice, warning, error, critical; got \"\(name)\"")
                }
                let message = Lua.string(L, 2) ?? (Lua.isNoneOrNil(L, 2) ? "" : "(\(Lua.typeName(L, 2)))")
                logger.log(level: level, "\(message)", metadata: ["script": "\(path)"])
                return 0

            case .jsonEncode:
                do throws(LuaJSON.EncodeError) {
                    let value = try LuaJSON.value(L, 1)
                    Lua.pushString(L, value.encoded())
                } catch { throw HostError(message: error.message) }
                return 1

            case .jsonDecode:
                guard let b = Lua.bytes(L, 1) else { throw HostError(message: "text must be a string, got \(Lua.typeName(L, 1))") }
                do throws(WebSocketEnvelopeError) {
                    LuaJSON.push(L, try JSONValue.parse(b))
                    return 1
                } catch {
                    lua_pushnil(L)
                    Lua.pushString(L, error.message)
                    return 2
                }

            case .envelope:
                guard let b = Lua.bytes(L, 1), let e = try? WebSocketEnvelope.parseIfEnvelope(b) else {
                    lua_pushnil(L)
                    return 1
                }
                LuaJSON.push(L, .object(e.jsonObject))
                return 1

            case .now:
                Lua.pushString(L, WebSocketEnvelopeMetadata.timestamp(for: Date()))
                return 1

            case .uuid:
                Lua.pushString(L, UUID().uuidString.lowercased())
                return 1

            case .encodeFrame:
                let opcode: WebSocketOpcode
                if let n = Lua.integer(L, 1), let b = UInt8(exactly: n), let o = WebSocketOpcode(rawValue: b) {
                    opcode = o
                } else if let s = Lua.string(L, 1), let o = WebSocketOpcode(parsing: s) {
                    opcode = o
                } else {
                    throw HostError(message: "opcode must be 0-15 or a name (text, binary, close, ping, pong, continuation)")
                }
                let payload = try stringArg(L, 2, "payload").get()
                let fin = Lua.isNoneOrNil(L, 3) ? true : lua_toboolean(L, 3) != 0
                var rsv: UInt8 = 0
                if !Lua.isNoneOrNil(L, 4) {
                    guard let r = Lua.integer(L, 4), (0...7).contains(r) else { throw HostError(message: "rsv must be 0-7 (4 = RSV1, 2 = RSV2, 1 = RSV3)") }
                    rsv = UInt8(r) << 4
                }
                let size = WebSocketFrameEncoder.headerLength(payloadLength: UInt64(payload.count), masked: false) + payload.count
                var out = [UInt8](repeating: 0, count: size)
                out.withUnsafeMutableBytes {
                    _ = WebSocketFrameEncoder.encode(fin: fin, reservedBits: rsv, opcode: opcode, payload: payload, into: $0)
                }
                out.withUnsafeBytes { Lua.pushBytes(L, $0) }
                return 1
            }
        }
    }
}

/// The Lua state of one loaded script and the references the host keeps into it.
struct LuaScriptState {
    let L: OpaquePointer
    var connMeta: Int32 = LUA_NOREF
    var msgMeta: Int32 = LUA_NOREF
    var timerMeta: Int32 = LUA_NOREF
    var storeGet: Int32 = LUA_NOREF
    var storeSet: Int32 = LUA_NOREF
    var hasOnMessage = false

    /// Stands in during ScriptHost.init before the first state exists; never used for Lua.
    nonisolated(unsafe) static let placeholder = LuaScriptState(L: OpaquePointer(bitPattern: 1)!)

    func close() {
        if L != Self.placeholder.L { wsl_close(L) }
    }
}

private let scriptDispatch: wsl_dispatch_fn = { host, L, op in
    let h = Unmanaged<ScriptHost>.fromOpaque(host!).takeUnretainedValue()
    return h.dispatch(L!, op)
}
