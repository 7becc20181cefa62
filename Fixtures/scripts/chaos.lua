-- chaos.lua: an echo server that misbehaves on purpose, to see how a client copes. Each message
-- is echoed, dropped, delayed, duplicated or corrupted, chosen at random with the weights below;
-- a client can also ask for one behaviour by sending "!drop", "!delay 500", "!dup", "!corrupt",
-- "!badutf8", "!fragment", "!close 4000" or "!abort".
--   wsctl serve --script Fixtures/scripts/chaos.lua
-- Seeded from CHAOS_SEED below (change it for another sequence; it is fixed so runs repeat).
local CHAOS_SEED = 6455
local weights = { echo = 50, drop = 10, delay = 15, dup = 10, corrupt = 15 }
math.randomseed(CHAOS_SEED)

local function pick()
    local total = 0
    for _, w in pairs(weights) do total = total + w end
    local r = math.random(total)
    for _, name in ipairs({ "echo", "drop", "delay", "dup", "corrupt" }) do
        r = r - weights[name]
        if r <= 0 then return name end
    end
    return "echo"
end

local function corrupt(s)
    -- Replace one ASCII byte with another printable one, so text stays valid UTF-8 but is wrong.
    for _ = 1, 8 do
        local i = math.random(math.max(#s, 1))
        local b = s:byte(i)
        if b and b < 0x80 then
            return s:sub(1, i - 1) .. string.char(33 + (b + 1) % 94) .. s:sub(i + 1)
        end
    end
    return s .. "?"
end

local function echo(conn, msg, text)
    if msg.binary then conn:send_binary(text or msg.data) else conn:send(text or msg.text) end
end

local actions = {
    echo = function(conn, msg) echo(conn, msg) end,
    drop = function(conn, msg) ws.log("debug", "chaos: dropped a message from " .. conn.id) end,
    delay = function(conn, msg, ms)
        ms = ms or math.random(50, 2000)
        ws.after(ms, function() echo(conn, msg) end)
    end,
    dup = function(conn, msg) echo(conn, msg); echo(conn, msg) end,
    corrupt = function(conn, msg) echo(conn, msg, corrupt(msg.data)) end,
    -- Text that is not UTF-8: a conforming client must fail the connection with 1007.
    badutf8 = function(conn, msg) conn:send_raw(ws.encode_frame("text", "caf\xC3\x28")) end,
    -- The echo split into three frames (a client must reassemble them).
    fragment = function(conn, msg)
        local s = msg.data
        local a, b = s:sub(1, #s // 3), s:sub(#s // 3 + 1, 2 * #s // 3)
        local c = s:sub(2 * #s // 3 + 1)
        conn:send_raw(ws.encode_frame(msg.binary and "binary" or "text", a, false)
            .. ws.encode_frame("continuation", b, false)
            .. ws.encode_frame("continuation", c, true))
    end,
    -- A frame with RSV2 set: a client must fail the connection with 1002.
    abort = function(conn, msg) conn:send_raw(ws.encode_frame("text", "bad bits", true, 2)) end,
}

function on_message(conn, msg)
    local cmd, arg = (msg.text or ""):match("^!(%a+8?)%s*(%d*)$")
    if cmd == "close" then return conn:close(tonumber(arg) or 4000, "chaos") end
    if cmd and actions[cmd] then
        local m = { binary = false, text = "!" .. cmd, data = "!" .. cmd }
        return actions[cmd](conn, m, tonumber(arg))
    end
    actions[pick()](conn, msg)
end
