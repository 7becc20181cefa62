-- ticker.lua: pushes a tick to every client every TICK_MS milliseconds (default 1000), without
-- being asked. A client may change its own rate: send "every 200" (milliseconds, at least 10).
--   wsctl serve --script Fixtures/scripts/ticker.lua
local TICK_MS = 1000
local count = 0

-- One shared timer for everyone.
ws.every(TICK_MS, function()
    count = count + 1
    ws.broadcast(ws.json.encode({ tick = count, time = ws.now() }))
end)

-- Per-connection timers, for clients that asked for their own rate.
function on_message(conn, msg)
    local ms = msg.text and tonumber(msg.text:match("^every%s+(%d+)$"))
    if ms == nil or ms < 10 then
        return conn:send(ws.json.encode({ error = "send: every <milliseconds, at least 10>" }))
    end
    local old = conn:get("timer")
    if old then old:cancel() end
    local n = 0
    conn:set("timer", ws.every(ms, function()
        n = n + 1
        conn:send(ws.json.encode({ own_tick = n, every = ms }))
    end))
    conn:send(ws.json.encode({ ok = true, every = ms }))
end

function on_close(conn)
    local t = conn:get("timer")
    if t then t:cancel() end
end
