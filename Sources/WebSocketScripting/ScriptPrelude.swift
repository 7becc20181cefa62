/// Lua run in every script state before the user's script: the `ws` module, the metatables of
/// `conn`, `msg` and timer handles, and `print` routed to the log. `host` holds the host functions
/// (C closures that call `ScriptHost.dispatch`). It returns what the host keeps references to.
enum ScriptPrelude {
    static let source = #"""
local host = ...

local ws = {
    broadcast = host.broadcast,
    members = host.members,
    send_to = host.send_to,
    after = host.after,
    every = host.every,
    log = host.log,
    now = host.now,
    uuid = host.uuid,
    connections = host.connections,
    json = { encode = host.json_encode, decode = host.json_decode, null = host.json_null },
}

-- conn: a table { id = "c1" } whose methods live here. conn:set/get values live in a weak table
-- keyed by the conn, so they go away with it.
local Conn = {
    send = host.send,
    send_binary = host.send_binary,
    send_envelope = host.send_envelope,
    send_raw = host.send_raw,
    close = host.close,
    join = host.join,
    leave = host.leave,
    rooms = host.rooms,
}
Conn.__index = Conn
Conn.__tostring = function(c) return "conn " .. tostring(rawget(c, "id")) end
Conn.__name = "conn"
local stores = setmetatable({}, { __mode = "k" })
function Conn:set(key, value)
    local s = stores[self]
    if s == nil then s = {}; stores[self] = s end
    s[key] = value
end
function Conn:get(key)
    local s = stores[self]
    if s ~= nil then return s[key] end
    return nil
end

-- msg: { text, data, binary }; msg.envelope is parsed on first use.
local envelope_of = host.envelope
local Msg = {
    __index = function(m, key)
        if key == "envelope" then
            local text = rawget(m, "text")
            if text == nil then return nil end
            local e = envelope_of(text)
            if e ~= nil then rawset(m, "envelope", e) end
            return e
        end
        return nil
    end,
    __name = "msg",
}

local Timer = { cancel = host.timer_cancel }
Timer.__index = Timer
Timer.__name = "timer"

function print(...)
    local n = select("#", ...)
    local parts = { ... }
    for i = 1, n do parts[i] = tostring(parts[i]) end
    host.log("info", table.concat(parts, "\t", 1, n))
end

ws.encode_frame = host.encode_frame

_G.ws = ws
package = nil
return Conn, Msg, Timer, function(c) return stores[c] end, function(c, s) stores[c] = s end
"""#
}
