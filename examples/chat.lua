-- chat.lua: a terminal chat client. Lines you type go to the conversation;
-- messages from others are printed as they arrive. It waits on stdin and the
-- client's pollable fd together with luasocket's select (getfd/dirty).
--   lua5.4 examples/chat.lua <user_id> <other_user_id> [url]
local layer = require "layer"
local dev = require "layer.dev"
local socket = require "socket"

local me, other, url = arg[1], arg[2], arg[3] or os.getenv("LAYER_URL") or "http://127.0.0.1:7480"
if not me or not other then
  io.stderr:write("usage: chat.lua <user_id> <other_user_id> [url]\n")
  os.exit(2)
end

local client = layer.client({
  url = url, app_id = "layer:///apps/staging/chat",
  identity = dev.identity(os.getenv("LAYER_SECRET") or "dev-secret", me, { display_name = me }),
})
local conversation
local queued, in_flight, quitting = {}, 0, false

local function send(line)
  in_flight = in_flight + 1
  conversation:send(line, function(_, err)
    in_flight = in_flight - 1
    if err then print("(not sent: " .. tostring(err) .. ")") end
  end)
end

client:on("ready", function()
  local conv, err = client:create_conversation({ participants = { other }, distinct = true })
  if not conv then
    print("cannot open the conversation: " .. tostring(err))
    client:close()
    return
  end
  conversation = conv
  print(("connected as %s; talking to %s (Ctrl-D quits)"):format(me, other))
  for _, msg in ipairs(conv:messages({ page_size = 10 }) or {}) do
    print(("  [earlier] %s: %s"):format(msg.sender.user_id, msg:text()))
  end
  for _, line in ipairs(queued) do send(line) end -- typed before we were connected
  queued = {}
end)
client:on("message", function(msg)
  if conversation and msg.conversation == conversation and msg.sender.user_id ~= me then
    print(("%s: %s"):format(msg.sender.display_name or msg.sender.user_id, msg:text()))
    msg:mark_read()
  end
end)
client:on("typing", function(conv, sender, action)
  if conv == conversation and sender and action == "started" then print(("(%s is typing)"):format(sender.user_id or "someone")) end
end)
client:on("disconnected", function(reason) print("(disconnected: " .. reason .. ")") end)
client:on("error", function(err) print("(error: " .. tostring(err) .. ")") end)

local stdin = { getfd = function() return 0 end, dirty = function() return false end }
while not client:closed() do
  local watch = quitting and { client } or { stdin, client }
  local readable = socket.select(watch, nil, client:timeout() or 1)
  for _, r in ipairs(readable) do
    if r == stdin then
      local line = io.read("*l")
      if not line then
        quitting = true -- end of input: leave once what was typed has been sent
      elseif line ~= "" then
        if conversation then send(line) else queued[#queued + 1] = line end
      end
    end
  end
  if not client:closed() then client:step(0) end
  if quitting and in_flight == 0 and #queued == 0 then client:close() end
end
