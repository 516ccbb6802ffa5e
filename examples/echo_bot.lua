-- echo_bot.lua: a bot that answers every message it did not send itself.
--   lua5.4 examples/echo_bot.lua [url] [user_id]
-- Against the local server it signs its own identity tokens with
-- LAYER_SECRET (default "dev-secret"); elsewhere, replace the identity callback
-- with a call to your application server.
local layer = require "layer"
local dev = require "layer.dev"

local url = arg[1] or os.getenv("LAYER_URL") or "http://127.0.0.1:7480"
local user_id = arg[2] or "echo-bot"

local client = layer.client({
  url = url,
  app_id = "layer:///apps/staging/echo-bot",
  identity = dev.identity(os.getenv("LAYER_SECRET") or "dev-secret", user_id, { display_name = "Echo Bot" }),
  -- killed and restarted, the bot answers what arrived meanwhile, and nothing twice
  -- (LAYER_STATE=:memory: keeps nothing, for a throwaway bot)
  state = os.getenv("LAYER_STATE") or (user_id .. ".db"),
})

client:on("ready", function() print(("echo bot %s is listening on %s"):format(client.user.user_id, url)) end)
client:on("message", function(msg)
  if msg.sender.user_id ~= client.user.user_id then
    local reply, err = msg.conversation:send("echo: " .. msg:text())
    if not reply then print("could not answer: " .. tostring(err)) end
    msg:mark_read()
  end
end)
client:on("error", function(err) print("error: " .. tostring(err)) end)
client:on("disconnected", function(reason, retry_in)
  print(("disconnected (%s); retrying in %.1f s"):format(reason, retry_in or -1))
end)

client:run()
