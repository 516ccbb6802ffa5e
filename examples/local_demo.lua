-- local_demo.lua: the README's main command. Starts the local Layer server,
-- an echo bot and a person on it, lets the person talk to the bot, prints
-- the conversation as both see it, and stops.
local layer = require "layer"
local dev = require "layer.dev"

local server = dev.start_server({ max_lifetime = 60 })
print("local Layer server on " .. server.url)

local function connect(user_id, name)
  return layer.client({
    url = server.url, app_id = "layer:///apps/staging/demo",
    identity = dev.identity(server.secret, user_id, { display_name = name }),
  })
end

local bot, person = connect("echo-bot", "Echo Bot"), connect("ada", "Ada")
local transcript, answered = {}, 0

bot:on("message", function(msg)
  if msg.sender.user_id ~= bot.user.user_id then
    msg.conversation:send("echo: " .. msg:text())
  end
end)

person:on("message", function(msg)
  transcript[#transcript + 1] = ("%-8s %s"):format(msg.sender.display_name or msg.sender.user_id, msg:text())
  if msg.sender.user_id == bot.user.user_id then answered = answered + 1 end
end)

person:on("ready", function()
  local conv, err = person:create_conversation({ participants = { "echo-bot" }, distinct = true,
    metadata = { title = "Ada and the bot" } })
  assert(conv, err)
  for _, line in ipairs({ "Hello, bot.", "Do you read me?", "Goodbye." }) do
    assert(conv:send(line))
  end
end)

local deadline = os.time() + 20
while answered < 3 and os.time() < deadline do
  bot:step(0.01)
  person:step(0.01)
end

print(table.concat(transcript, "\n"))
print(("%d of 3 messages answered; the person's cache holds %d objects in %d bytes"):format(
  answered, person:stats().objects, person:stats().bytes))
bot:close()
person:close()
server.stop()
os.exit(answered == 3 and 0 or 1)
