import CLua
import CLuaSandbox
import WebSocketCodec

/// Small helpers over the Lua C API for the script host. None of them raises a Lua error: the
/// host runs them either outside any Lua call or inside a host function with the memory limit
/// lifted (see lua_sandbox.h), so a Lua longjmp never unwinds a Swift frame.
enum Lua {
    static let registry = wsl_registry_index()

    static func pushString(_ L: OpaquePointer, _ s: String) {
        var s = s
        s.withUTF8 { u in _ = lua_pushlstring(L, u.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, u.count) }
    }

    static func pushBytes(_ L: OpaquePointer, _ bytes: UnsafeRawBufferPointer) {
        _ = lua_pushlstring(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    /// The bytes of a string (or number, which Lua converts in place) at `index`; valid while the
    /// value stays on the stack.
    static func bytes(_ L: OpaquePointer, _ index: Int32) -> UnsafeRawBufferPointer? {
        let t = lua_type(L, index)
        guard t == LUA_TSTRING || t == LUA_TNUMBER else { return nil }
        var length = 0
        guard let p = lua_tolstring(L, index, &length) else { return nil }
        return UnsafeRawBufferPointer(start: p, count: length)
    }

    static func string(_ L: OpaquePointer, _ index: Int32) -> String? {
        bytes(L, index).map { String(decoding: $0, as: UTF8.self) }
    }

    static func typeName(_ L: OpaquePointer, _ index: Int32) -> String {
        String(cString: lua_typename(L, lua_type(L, index)))
    }

    static func isNoneOrNil(_ L: OpaquePointer, _ index: Int32) -> Bool { lua_type(L, index) <= LUA_TNIL }

    static func integer(_ L: OpaquePointer, _ index: Int32) -> Int64? {
        var ok: Int32 = 0
        let v = lua_tointegerx(L, index, &ok)
        if ok != 0 { return Int64(v) }
        guard lua_type(L, index) == LUA_TNUMBER else { return nil }
        let d = lua_tonumberx(L, index, nil)
        guard d.isFinite, d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int64(d)
    }

    static func number(_ L: OpaquePointer, _ index: Int32) -> Double? {
        guard lua_type(L, index) == LUA_TNUMBER else { return nil }
        return lua_tonumberx(L, index, nil)
    }

    /// A Lua list of strings.
    static func pushList(_ L: OpaquePointer, _ items: [String]) {
        lua_createtable(L, Int32(clamping: items.count), 0)
        for (i, item) in items.enumerated() {
            pushString(L, item)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
    }

    static func unref(_ L: OpaquePointer, _ ref: Int32) {
        if ref != LUA_NOREF && ref != LUA_REFNIL { luaL_unref(L, registry, ref) }
    }

    static func pushRef(_ L: OpaquePointer, _ ref: Int32) {
        _ = lua_rawgeti(L, registry, lua_Integer(ref))
    }

    /// Pops the top value into the registry.
    static func ref(_ L: OpaquePointer) -> Int32 { luaL_ref(L, registry) }
}

/// Lua values to and from JSON (`ws.json`, envelopes). `ws.json.null` is a light userdata NULL.
enum LuaJSON {
    struct EncodeError: Error { var message: String }

    static let maxDepth = 128

    /// The JSON value of the Lua value at `index`. Tables whose keys are exactly 1...n (n > 0)
    /// are arrays; other tables are objects with their keys sorted (string keys, and numbers written
    /// as strings), so that output is the same from run to run. An empty table is `{}`.
    static func value(_ L: OpaquePointer, _ index: Int32, depth: Int = 0) throws(EncodeError) -> JSONValue {
        let index = lua_absindex(L, index)
        switch lua_type(L, index) {
        case LUA_TNIL: return .null
        case LUA_TBOOLEAN: return .bool(lua_toboolean(L, index) != 0)
        case LUA_TNUMBER:
            let d = lua_isinteger(L, index) != 0 ? Double(lua_tointegerx(L, index, nil)) : lua_tonumberx(L, index, nil)
            guard d.isFinite else { throw EncodeError(message: "cannot encode the number \(d) (JSON has no inf or nan)") }
            return .number(d)
        case LUA_TSTRING:
            let b = Lua.bytes(L, index)!
            if let bad = WebSocketUTF8Validator.firstInvalidIndex(b) {
                throw EncodeError(message: "string is not UTF-8 (byte \(bad)); JSON text must be")
            }
            return .string(String(decoding: b, as: UTF8.self))
        case LUA_TLIGHTUSERDATA where lua_touserdata(L, index) == nil:
            return .null
        case LUA_TTABLE:
            guard depth < maxDepth else { throw EncodeError(message: "tables nested more than \(maxDepth) deep (a cycle?)") }
            guard lua_checkstack(L, 4) != 0 else { throw EncodeError(message: "Lua stack exhausted") }
            let n = Int(lua_rawlen(L, index))
            var entries: [(key: String, number: Double?, value: JSONValue)] = []
            var isArray = n > 0
            lua_pushnil(L)
            while lua_next(L, index) != 0 {
                let key: String
                var number: Double? = nil
                switch lua_type(L, -2) {
                case LUA_TSTRING:
                    key = Lua.string(L, -2)!
                    isArray = false
                case LUA_TNUMBER:
                    let d = lua_tonumberx(L, -2, nil)
                    number = d
                    if lua_isinteger(L, -2) != 0 { key = String(lua_tointegerx(L, -2, nil)) } else { key = "\(d)" }
                    if !(d >= 1 && d <= Double(n) && d.rounded() == d) { isArray = false }
                default:
                    let kind = Lua.typeName(L, -2)
                    wsl_pop(L, 2)
                    throw EncodeError(message: "cannot encode a table with a \(kind) key")
                }
                let v: JSONValue
                do throws(EncodeError) { v = try value(L, -1, depth: depth + 1) } catch {
                    wsl_pop(L, 2)
                    throw error
                }
                entries.append((key, number, v))
                wsl_pop(L, 1)
            }
            if isArray && entries.count == n {
                var items = [JSONValue](repeating: .null, count: n)
                for e in entries { items[Int(e.number!) - 1] = e.value }
                return .array(items)
            }
            entries.sort { $0.key < $1.key }
            return .object(JSONObject(entries.map { ($0.key, $0.value) }))
        default:
            throw EncodeError(message: "cannot encode a \(Lua.typeName(L, index)) value")
        }
    }

    /// Pushes a JSON value as Lua: objects and arrays as tables, null as `ws.json.null`, integral
    /// numbers up to 2^53 as integers.
    static func push(_ L: OpaquePointer, _ value: JSONValue) {
        _ = lua_checkstack(L, 3)
        switch value {
        case .null: lua_pushlightuserdata(L, nil)
        case .bool(let b): lua_pushboolean(L, b ? 1 : 0)
        case .number(let d):
            if d.rounded() == d && abs(d) <= 9_007_199_254_740_992 { lua_pushinteger(L, lua_Integer(d)) } else { lua_pushnumber(L, d) }
        case .string(let s): Lua.pushString(L, s)
        case .array(let items):
            lua_createtable(L, Int32(clamping: items.count), 0)
            for (i, item) in items.enumerated() {
                push(L, item)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
        case .object(let object):
            lua_createtable(L, 0, Int32(clamping: object.count))
            for (key, member) in object {
                Lua.pushString(L, key)
                push(L, member)
                lua_rawset(L, -3)
            }
        }
    }
}
