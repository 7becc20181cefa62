-- Hostile: a runtime error in a hook. Logged with file:line; the connection gets 1011.
function on_message(conn, msg)
    if msg.text == "boom" then
        local t = nil
        return t.field
    end
    conn:send(msg.text)
end
