-- Hostile: a hook that never returns. The instruction budget stops it; the connection gets 1011.
function on_message(conn, msg)
    if msg.text == "loop" then
        while true do end
    end
    if msg.text == "pcall-loop" then
        -- Catching the budget error does not help: the next check raises again.
        while true do pcall(function() while true do end end) end
    end
    conn:send(msg.text)
end
