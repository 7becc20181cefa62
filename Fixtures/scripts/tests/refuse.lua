-- Test script (Tests/WSCtlTests/ServeScriptTests.swift): what on_open does is chosen by the
-- query's action: refuse (return false), close (its own code, then false), closeonly (its own
-- code, returns nothing), error (raises), anything else accepts with a welcome. There is no
-- on_message, so messages get the --mode behaviour (echo by default).
function on_open(conn, request)
    local action = request.query.action
    if action == "refuse" then return false end
    if action == "close" then
        conn:close(4100, "closed by on_open")
        return false
    end
    if action == "closeonly" then
        conn:close(4200, "closed, not refused")
        return
    end
    if action == "error" then error("on_open failed on purpose") end
    conn:send("welcome " .. conn.id)
    return true
end
