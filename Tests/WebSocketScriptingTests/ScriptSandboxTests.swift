import CLua
import CLuaSandbox
import Foundation
import Testing
import WebSocketCodec
@testable import WebSocketScripting
import WebSocketServer

/// The Lua sandbox (C), the JSON bridge and the query parser of `--script`, without a server.
/// End-to-end behaviour is in WSCtlTests/ServeScriptTests.
@Suite("Script sandbox and helpers")
struct ScriptSandboxTests {
    /// A sandboxed state with no host functions (dispatch answers an error).
    final class State {
        let L: OpaquePointer
        init(memory: Int = 8 << 20, budget: Int64 = 1_000_000) {
            L = wsl_open(memory, nil, { _, L, _ in
                Lua.pushString(L!, "no host here")
                return -1
            })!
            wsl_set_budget(L, budget)
        }
        deinit { wsl_close(L) }

        /// Runs a chunk; nil on success, else the error message.
        func run(_ code: String) -> (status: Int32, message: String?) {
            var status = code.withCString { wsl_load_buffer(L, $0, strlen($0), "=test") }
            if status == LUA_OK { status = wsl_pcall(L, 0, 1) }
            let message = status == LUA_OK ? nil : (Lua.string(L, -1) ?? "?")
            return (status, message)
        }

        func result(_ code: String) -> String? {
            let r = run(code)
            defer { lua_settop(L, 0) }
            return r.status == LUA_OK ? Lua.string(L, -1) : "error: \(r.message!)"
        }
    }

    @Test func dangerousFunctionsAreNotReachable() {
        let s = State()
        let names = ["io", "os.execute", "os.exit", "os.getenv", "os.remove", "os.rename", "os.tmpname",
                     "require", "package", "debug", "dofile", "loadfile", "string.dump"]
        for name in names {
            #expect(s.result("return tostring(\(name))") == "nil", "\(name) is reachable")
        }
        // What stays: the pure libraries and the harmless parts of os.
        #expect(s.result("return type(string.format) .. type(table.concat) .. type(math.floor) .. type(utf8.char) .. type(coroutine.wrap) .. type(os.time) .. type(os.clock)")
                == "functionfunctionfunctionfunctionfunctionfunctionfunction")
    }

    @Test func loadReadsTextChunksOnly() {
        let s = State()
        #expect(s.result("return tostring(load('return 1 + 1')())") == "2")
        // A precompiled chunk starts with ESC "Lua": refused whatever mode the caller asks for.
        #expect(s.result("local f, e = load('\\27Lua', 'x', 'b'); return tostring(f) .. ' ' .. e")?.hasPrefix("nil attempt to load a binary chunk") == true)
        // An explicit nil environment still works as in stock Lua (the argument is passed through).
        #expect(s.result("local f = load('return x', 'c', 't', {x = 'env'}); return f()") == "env")
    }

    @Test func instructionBudgetStopsAnInfiniteLoop() {
        let s = State(budget: 100_000)
        let r = s.run("while true do end")
        #expect(r.status == LUA_ERRRUN)
        #expect(r.message?.hasPrefix("test:1: instruction budget exceeded (100000 instructions per call)") == true, "\(r.message ?? "")")
        #expect(wsl_budget_exhausted(s.L) == 1)
        lua_settop(s.L, 0)
        // The next call gets a fresh budget.
        #expect(s.result("local n = 0; for i = 1, 1000 do n = n + i end; return tostring(n)") == "500500")
        #expect(wsl_budget_exhausted(s.L) == 0)
    }

    @Test func catchingTheBudgetErrorDoesNotKeepAScriptRunning() {
        let s = State(budget: 100_000)
        let r = s.run("while true do pcall(function() while true do end end) end")
        #expect(r.status == LUA_ERRRUN)
        #expect(r.message?.contains("instruction budget exceeded") == true)
        lua_settop(s.L, 0)
        // Nor does hiding the loop in a coroutine.
        let c = s.run("local co = coroutine.wrap(function() while true do end end); while true do pcall(co) end")
        #expect(c.status == LUA_ERRRUN)
    }

    @Test func memoryCapStopsRunawayAllocation() {
        let s = State(memory: 4 << 20, budget: 0)
        let r = s.run("local t = {}; local i = 0; while true do i = i + 1; t[i] = string.rep('x', 100) .. i end")
        #expect(r.status == LUA_ERRMEM)
        lua_settop(s.L, 0)
        wsl_gc_collect(s.L)
        #expect(wsl_memory_used(s.L) < 1 << 20, "the table is garbage after the failed call")
        let big = s.run("return string.rep('y', 8 << 20)")
        #expect(big.status == LUA_ERRMEM)
        lua_settop(s.L, 0)
        #expect(s.result("return 'still works'") == "still works")
    }

    @Test func hostFunctionErrorsCarryTheCallersPosition() {
        let s = State()
        wsl_push_host_function(s.L, 1)
        lua_setglobal(s.L, "f")
        #expect(s.result("\nf()")?.hasPrefix("error: test:2: no host here") == true)
    }

    // MARK: JSON bridge

    @Test(arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"é ✓ \"q\""},"e":-2.5,"f":[]}"#,
        #"[1,2,3,[4,[5,{"x":null}]]]"#,
        #""just a string""#,
        #"1e300"#,
        #"{}"#,
    ])
    func jsonRoundTripsThroughLua(text: String) throws {
        let s = State()
        let value = try text.utf8CString.withUnsafeBytes { raw in
            try JSONValue.parse(UnsafeRawBufferPointer(rebasing: raw.dropLast()))
        }
        LuaJSON.push(s.L, value)
        let back = try LuaJSON.value(s.L, -1)
        // Objects come back with sorted keys; an empty array is an empty table, which encodes as {}.
        let expected = Self.sortedKeys(value, emptyArrayAsObject: true)
        #expect(back == expected, "\(back.encoded()) vs \(expected.encoded())")
    }

    static func sortedKeys(_ v: JSONValue, emptyArrayAsObject: Bool) -> JSONValue {
        switch v {
        case .array(let a) where a.isEmpty && emptyArrayAsObject: return .object(JSONObject())
        case .array(let a): return .array(a.map { sortedKeys($0, emptyArrayAsObject: emptyArrayAsObject) })
        case .object(let o):
            return .object(JSONObject(o.map { ($0.key, sortedKeys($0.value, emptyArrayAsObject: emptyArrayAsObject)) }.sorted { $0.0 < $1.0 }))
        default: return v
        }
    }

    @Test(arguments: [
        ("return function() end", "cannot encode a function value"),
        ("local t = {}; t.self = t; return t", "nested more than 128 deep"),
        ("return 0/0", "JSON has no inf or nan"),
        ("return 'caf\\xC3\\x28'", "not UTF-8"),
        ("return {[true] = 1}", "with a boolean key"),
    ])
    func jsonEncodingRefusesWhatJSONCannotHold(code: String, message: String) {
        let s = State()
        #expect(s.run(code).status == LUA_OK)
        do {
            _ = try LuaJSON.value(s.L, -1)
            Issue.record("encoded \(code)")
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test func sparseAndMixedTablesBecomeObjects() throws {
        let s = State()
        #expect(s.run("return {[1] = 'a', [3] = 'c'}").status == LUA_OK)
        #expect(try LuaJSON.value(s.L, -1).encoded() == #"{"1":"a","3":"c"}"#)
        lua_settop(s.L, 0)
        #expect(s.run("return {10, 20, x = 1}").status == LUA_OK)
        #expect(try LuaJSON.value(s.L, -1).encoded() == #"{"1":10,"2":20,"x":1}"#)
    }

    // MARK: Request helpers

    @Test func queryStringsAreDecoded() {
        let q = ScriptHost.parseQuery("a=1&b=x%20y&c=a+b&empty=&flag&d=%E2%9C%93&bad=%zz&a=2")
        let pairs = q.map { "\($0.0)=\($0.1)" }
        #expect(pairs == ["a=1", "b=x y", "c=a b", "empty=", "flag=", "d=✓", "bad=%zz", "a=2"])
        #expect(ScriptHost.parseQuery("").isEmpty)
    }
}
