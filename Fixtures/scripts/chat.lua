-- chat.lua: chat rooms over JSON envelopes (DESIGN.md's envelope), written as a script.
--   wsctl serve --script Fixtures/scripts/chat.lua
--
-- Client → server: {"type":"join_room","payload":{"room":"r"}}, {"type":"leave_room",...},
-- {"type":"message","payload":{"room":"r","content":"hi"}}, {"type":"set_name","payload":{"name":"ann"}}.
-- Server → client: connection_established, room_joined (with members), presence_update to the
-- others, message (with from/name) to every member, error for anything else. Replies carry the
-- request's correlation_id.

function on_open(conn, request)
    conn:set("name", request.query.name or conn.id)
    conn:send_envelope("connection_established", { client_id = conn.id, name = conn:get("name") })
end

local function members_payload(room)
    return { room = room, members = ws.members(room) }
end

local function presence(conn, room, status)
    for _, id in ipairs(ws.members(room)) do
        if id ~= conn.id then
            ws.send_to(id, ws.json.encode({
                type = "presence_update",
                payload = { room = room, client_id = conn.id, name = conn:get("name"), status = status },
                metadata = { timestamp = ws.now(), message_id = ws.uuid() },
            }))
        end
    end
end

local handlers = {}

function handlers.join_room(conn, p, cid)
    conn:join(p.room)
    conn:send_envelope("room_joined", members_payload(p.room), cid)
    presence(conn, p.room, "joined")
end

function handlers.leave_room(conn, p, cid)
    if not conn:leave(p.room) then
        return conn:send_envelope("error", { code = "not_in_room", message = "not in room " .. p.room }, cid)
    end
    conn:send_envelope("room_left", { room = p.room }, cid)
    presence(conn, p.room, "left")
end

function handlers.message(conn, p, cid)
    local inside = false
    for _, r in ipairs(conn:rooms()) do if r == p.room then inside = true end end
    if not inside then
        return conn:send_envelope("error", { code = "not_in_room", message = "join " .. p.room .. " first" }, cid)
    end
    local out = ws.json.encode({
        type = "message",
        payload = { room = p.room, content = p.content, from = conn.id, name = conn:get("name") },
        metadata = { timestamp = ws.now(), message_id = ws.uuid(), correlation_id = cid },
    })
    ws.broadcast(out, p.room)
end

function handlers.set_name(conn, p, cid)
    if type(p.name) ~= "string" or #p.name == 0 or #p.name > 64 then
        return conn:send_envelope("error", { code = "invalid_payload", message = "name must be 1-64 bytes" }, cid)
    end
    conn:set("name", p.name)
    conn:send_envelope("name_set", { name = p.name }, cid)
end

function on_message(conn, msg)
    local e = msg.envelope
    if e == nil then
        -- Not an envelope, or one that breaks its type's rules (a "message" without payload.room):
        -- still answer with its correlation_id when the JSON has one.
        local raw = msg.text and ws.json.decode(msg.text)
        local cid = type(raw) == "table" and type(raw.metadata) == "table" and raw.metadata.correlation_id or nil
        if type(cid) ~= "string" then cid = nil end
        return conn:send_envelope("error", { code = "invalid_envelope",
            message = "send a JSON envelope with a type and the payload its type requires" }, cid)
    end
    local cid = e.metadata and e.metadata.correlation_id or nil
    local handler = handlers[e.type]
    if handler == nil then
        return conn:send_envelope("error", { code = "unknown_type", message = "unknown type " .. e.type }, cid)
    end
    local p = e.payload or {}
    if e.type ~= "set_name" and (type(p.room) ~= "string" or #p.room == 0) then
        return conn:send_envelope("error", { code = "invalid_payload", message = "payload.room must be a non-empty string" }, cid)
    end
    handler(conn, p, cid)
end

function on_close(conn, code, reason)
    -- on_close runs while the connection is still listed in its rooms; tell the others.
    for _, room in ipairs(conn:rooms()) do presence(conn, room, "left") end
end
