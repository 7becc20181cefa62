-- Reports which dangerous functions a script can reach (all should be nil).
function on_message(conn, msg)
    local reach = {
        os_execute = os.execute, io = io, popen = io and io.popen, loadfile = loadfile, dofile = dofile,
        require = require, package = package, debug = debug, os_exit = os.exit, os_remove = os.remove,
        os_getenv = os.getenv, string_dump = string.dump,
    }
    local found = {}
    for name, v in pairs(reach) do if v ~= nil then found[#found + 1] = name end end
    table.sort(found)
    -- Bytecode must be refused by load (text chunks only).
    local ok = load("\27Lua")
    conn:send(ws.json.encode({ reachable = found, bytecode_loaded = ok ~= nil }))
end
