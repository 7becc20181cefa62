-- Test script (Tests/WSCtlTests/ServeScriptTests.swift): on open, sends the request table back as
-- JSON, so the test can check path, query decoding, header names, remote and subprotocol.
function on_open(conn, request)
    local upper = {}
    for name in pairs(request.headers) do
        if name ~= name:lower() then upper[#upper + 1] = name end
    end
    conn:send(ws.json.encode({
        path = request.path,
        query = request.query,
        headers = request.headers,
        remote = request.remote,
        subprotocol = request.subprotocol or ws.json.null,
        upper_case_header_names = #upper,
        query_type = type(request.query),
    }))
end
