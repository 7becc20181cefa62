-- auth.lua: token authentication in the upgrade. The token comes from ?token=… or an
-- "Authorization: Bearer …" header. No token: close 4001; a wrong one: 4002. Tokens and the
-- user each one names are listed below (a real script might read them from a table it builds).
--   wsctl serve --script Fixtures/scripts/auth.lua
local users = { ["s3cret"] = "alice", ["t0ken"] = "bob" }

function on_open(conn, request)
    local token = request.query.token
    local header = request.headers["authorization"]
    if token == nil and header ~= nil then token = header:match("^[Bb]earer%s+(%S+)$") end
    if token == nil then
        conn:close(4001, "authentication required")
        return false
    end
    local user = users[token]
    if user == nil then
        conn:close(4002, "authentication failed")
        return false
    end
    conn:set("user", user)
    conn:send("welcome " .. user)
    return true
end

function on_message(conn, msg)
    if msg.binary then return conn:send_binary(msg.data) end
    conn:send(conn:get("user") .. ": " .. msg.text)
end
