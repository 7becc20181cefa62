-- Test script: its top level raises, so `wsctl serve --script` must refuse to start (exit 2).
local settings = { port = 1 }
error("cannot start: settings.mode is " .. tostring(settings.mode))
