-- Test script: its top level never ends; the instruction budget stops it and the server refuses
-- to start (exit 2).
local n = 0
while true do n = n + 1 end
