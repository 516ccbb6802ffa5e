-- embed_frame.lua: the script embed_host.c runs. It starts the local server,
-- a chatty peer and the "game" client, and returns frame(), which the host
-- calls every 16 ms; frame() only ever calls step(0) with a small budget.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("LAYER_CPATH") or "build/5.4/?.so") .. ";" .. package.cpath
local layer = require "layer"
local dev = require "layer.dev"

local server = dev.start_server({ max_lifetime = 120 })
local function connect(user)
  return layer.client({ url = server.url, app_id = "layer:///apps/staging/game",
    identity = dev.identity(server.secret, user), max_events_per_step = 50 })
end
local game, peer = connect("player-one"), connect("chatty-peer")
local received, conv = 0, nil

game:on("message", function() received = received + 1 end)
peer:on("ready", function()
  conv = peer:create_conversation({ participants = { "player-one" }, distinct = true })
end)

local frame_no = 0
function finish()
  print(("embed_frame: the game client received %d messages while rendering"):format(received))
  game:close()
  peer:close()
  server.stop()
end

return function()
  frame_no = frame_no + 1
  -- the peer chats every 4th frame (the peer is a second client in the same loop)
  if conv and frame_no % 4 == 0 then conv:send("frame " .. frame_no, function() end) end
  peer:step(0)
  game:step(0, 50) -- never blocks; at most 50 events per frame
  return true
end
