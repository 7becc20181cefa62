-- Test script (Tests/WSCtlTests/ServeScriptTests.swift): the conn and ws API, one call per message.
-- A text message {"op": NAME, ...} runs ops[NAME] and is answered with its result as JSON (plus
-- "op"). Any other message is described back: text, binary, length and msg.envelope.
local null = ws.json.null

-- A value as an exact string: numbers with their Lua subtype, table keys sorted, list keys as #n.
local function shape(v)
    if v == null then return "null" end
    local t = type(v)
    if t == "number" then return math.type(v) .. ":" .. tostring(v) end
    if t == "string" then return "string:" .. v end
    if t == "boolean" then return tostring(v) end
    if t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b)
            if type(a) == type(b) then return a < b end
            return type(a) == "number"
        end)
        local parts = {}
        for _, k in ipairs(keys) do
            local name = math.type(k) and ("#" .. k) or tostring(k)
            parts[#parts + 1] = name .. "=" .. shape(v[k])
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    return t
end

local function orNull(v)
    if v == nil then return null end
    return v
end

local ops = {}

-- conn:set / conn:get
function ops.set(conn, a)
    conn:set(a.key, a.value)
    return { ok = true }
end

function ops.get(conn, a)
    return { value = orNull(conn:get(a.key)), shape = shape(conn:get(a.key)) }
end

function ops.unset(conn, a)
    conn:set(a.key, nil)
    return { value = orNull(conn:get(a.key)) }
end

function ops.same_table(conn)
    local t = { n = 1 }
    conn:set("table", t)
    t.n = 2
    return { same = conn:get("table") == t, n = conn:get("table").n }
end

-- Rooms
function ops.join(conn, a)
    return { result = conn:join(a.room), rooms = conn:rooms() }
end

function ops.leave(conn, a)
    return { result = conn:leave(a.room), rooms = conn:rooms() }
end

function ops.members(conn, a)
    return { members = ws.members(a.room), count = #ws.members(a.room) }
end

function ops.connections()
    return { connections = ws.connections() }
end

function ops.whoami(conn)
    return { id = conn.id, tostring = tostring(conn) }
end

-- Sending to others
function ops.send_to(conn, a)
    return { result = ws.send_to(a.id, a.text) }
end

function ops.broadcast(conn, a)
    local except = nil
    if a.except == "self" then except = conn elseif a.except ~= nil then except = a.except end
    return { count = ws.broadcast(a.text, a.room, except) }
end

function ops.send_binary(conn, a)
    conn:send_binary(a.bytes)
    return nil
end

function ops.send_envelope(conn, a)
    conn:send_envelope(a.type, a.payload, a.cid)
    return nil
end

-- ws.json
function ops.json(conn, a)
    local v, err = ws.json.decode(a.text)
    if v == nil then return { decode_error = err } end
    return { shape = shape(v), encoded = ws.json.encode(v) }
end

function ops.encode(conn, a)
    local cycle = {}
    cycle.self = cycle
    local cases = {
        ["function"] = function() end,
        cycle = cycle,
        nan = 0 / 0,
        inf = math.huge,
        bad_utf8 = "caf\xC3\x28",
        boolean_key = { [true] = 1 },
        mixed = { 1, 2, x = 3 },
        list = { "a", "b", { c = null } },
        empty = {},
        float = 0.1,
        big = 2 ^ 53,
        negative = -7,
        null = null,
        escapes = "quote \" backslash \\ newline \n tab \t bell \a é",
    }
    local out = {}
    for name, v in pairs(cases) do
        local ok, result = pcall(ws.json.encode, v)
        out[name] = ok and { ok = result } or { error = result }
    end
    local ok, err = pcall(ws.json.decode, {})
    out.decode_table = { error = err }
    return { results = out }
end

-- Time and ids
function ops.now()
    return { now = ws.now(), uuid1 = ws.uuid(), uuid2 = ws.uuid() }
end

-- Timers
function ops.after(conn)
    for _, ms in ipairs({ 60, 0, 40, 20 }) do
        ws.after(ms, function() conn:send("after " .. ms) end)
    end
    ws.after(30, function() conn:send("after 30 first") end)
    ws.after(30, function() conn:send("after 30 second") end)
    return { scheduled = 6 }
end

function ops.every(conn, a)
    local n = 0
    local handle
    handle = ws.every(a.ms, function()
        n = n + 1
        conn:send("tick " .. n)
        if n == a.times then
            local first = handle:cancel()
            local second = handle:cancel()
            conn:send("cancelled " .. tostring(first) .. " " .. tostring(second))
        end
    end)
    return { started = true }
end

function ops.every_forever(conn, a)
    local n = 0
    conn:set("ticker", ws.every(a.ms, function()
        n = n + 1
        conn:send("forever " .. n)
    end))
    return { started = true }
end

function ops.cancel(conn)
    local h = conn:get("ticker")
    return { first = h:cancel(), second = h:cancel() }
end

function ops.after_error()
    ws.after(0, function() error("after callback failed on purpose") end)
    return { scheduled = true }
end

function ops.every_error()
    local n = 0
    ws.every(10, function()
        n = n + 1
        error("every callback failed on purpose, call " .. n)
    end)
    return { scheduled = true }
end

-- Logging
function ops.log(conn, a)
    local ok, err = pcall(ws.log, a.level, a.text)
    return { ok = ok, error = orNull(err) }
end

function ops.print(conn, a)
    print(a.text, 1, nil, true, 2.5)
    return { ok = true }
end

-- Errors and closing
function ops.fail()
    local t = nil
    return t.missing
end

function ops.close(conn, a)
    conn:close(a.code, a.reason)
    return nil
end

function ops.bad_close(conn, a)
    local ok, err = pcall(conn.close, conn, a.code, a.reason)
    return { ok = ok, error = orNull(err) }
end

function on_open(conn)
    conn:send(ws.json.encode({ hello = conn.id }))
end

function on_message(conn, msg)
    local command = nil
    if msg.text ~= nil and msg.text:sub(1, 1) == "{" then command = ws.json.decode(msg.text) end
    if type(command) == "table" and command.op ~= nil then
        local op = ops[command.op]
        if op == nil then return conn:send(ws.json.encode({ error = "no op " .. tostring(command.op) })) end
        local result = op(conn, command)
        if result ~= nil then
            result.op = command.op
            conn:send(ws.json.encode(result))
        end
        return
    end
    local e = msg.envelope
    conn:send(ws.json.encode({
        text = orNull(msg.text),
        binary = msg.binary,
        length = #msg.data,
        envelope = orNull(e),
        envelope_type = type(e),
    }))
end

-- Runs while the connection is still in its rooms: tells the others, with the members it sees.
function on_close(conn, code, reason)
    for _, room in ipairs(conn:rooms()) do
        ws.broadcast(ws.json.encode({
            event = "closed", id = conn.id, code = code, reason = reason, room = room,
            members = ws.members(room), self_send = conn:send("gone"),
        }), room)
    end
end
