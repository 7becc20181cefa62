-- Hostile: does not compile. `wsctl serve --script` refuses to start (exit 2).
function on_message(conn, msg)
    conn:send(msg.text
end
