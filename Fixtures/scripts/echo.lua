-- echo.lua: every message back to its sender, as the same type.
--   wsctl serve --script Fixtures/scripts/echo.lua
function on_message(conn, msg)
    if msg.binary then
        conn:send_binary(msg.data)
    else
        conn:send(msg.text)
    end
end
