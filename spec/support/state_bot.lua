-- state_bot.lua: the README's echo bot with a state file, run as its own
-- process by spec/client_state_spec.lua, which kills it with kill -9.
--   lua5.4 spec/support/state_bot.lua <url> <state file> <user id> <secret> [catch_up]
local layer = require "layer"
local url, state, user, secret, catch_up = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])
-- the handler's own work after it answered (a database write, say): a crash
-- there finds the answer sent and the change not yet done
local work = (tonumber(os.getenv("STATE_BOT_WORK_MS")) or 0) / 1000

local client = layer.client({
  url = url, app_id = "layer:///apps/staging/00000000-0000-0000-0000-000000000001",
  state = state, catch_up = catch_up, backoff_base = 0.05, backoff_cap = 0.3, backoff_jitter = 0.1,
  identity = function(nonce) return layer.dev_token({ secret = secret, user_id = user, nonce = nonce }) end,
})
client:on("message", function(msg)
  if msg.sender.user_id ~= user then
    io.stderr:write("state_bot: handling " .. msg:text() .. "\n")
    local reply, err = msg.conversation:send("echo: " .. msg:text())
    if not reply then io.stderr:write("state_bot: could not answer: " .. tostring(err) .. "\n") end
    if work > 0 then require("socket").sleep(work) end
  end
end)
client:on("error", function(err) io.stderr:write("state_bot: " .. tostring(err) .. "\n") end)
client:on("ready", function() io.stderr:write("state_bot: ready\n") end)
-- stops by itself, so a failed spec leaves nothing running
local deadline = os.time() + (tonumber(os.getenv("STATE_BOT_LIFETIME")) or 60)
while os.time() < deadline do
  local t = client:timeout() or 0.1
  client:step(t < 0.1 and t or 0.1)
end
client:close()
