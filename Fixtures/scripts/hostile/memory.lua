-- Hostile: unbounded allocation. The memory cap stops it; the connection gets 1011.
local keep = {}
function on_message(conn, msg)
    if msg.text == "grow" then
        local t = {}
        local i = 0
        while true do
            i = i + 1
            t[i] = string.rep("x", 1024) .. i
        end
    end
    if msg.text == "rep" then
        keep[#keep + 1] = string.rep("y", 1 << 28)  -- 256 MiB in one allocation
    end
    conn:send(msg.text)
end
