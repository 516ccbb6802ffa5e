-- rock-smoke.lua: run by scripts/check-rockspec from outside the checkout, with
-- only the installed rock on the Lua paths: it starts the rock's own
-- layer-server, runs an echo bot and a person, and checks the answer.
local layer = require "layer"
local dev = require "layer.dev"
local server = dev.start_server{ max_lifetime = 30 }
local function client(user)
  return layer.client{ url = server.url, app_id = "layer:///apps/staging/rock",
    identity = dev.identity(server.secret, user), backoff_base = 0.1 }
end
local bot, person = client("bot"), client("person")
bot:on("message", function(msg)
  if msg.sender.user_id ~= "bot" then msg.conversation:send("echo: " .. msg:text()) end
end)
local answered
person:on("message", function(msg) if msg:text() == "echo: hi" then answered = true end end)
person:on("ready", function()
  local conv = assert(person:create_conversation{ participants = { "person", "bot" } })
  assert(conv:send("hi"))
end)
local deadline = os.time() + 15
while not answered and os.time() < deadline do bot:step(0.01); person:step(0.01) end
bot:close(); person:close(); server.stop()
assert(answered, "no echo")
print(((jit and jit.version) or _VERSION) .. ": the installed rock (layer " .. layer._VERSION .. ") started its server and its bot answered")
