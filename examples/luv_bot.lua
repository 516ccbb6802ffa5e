-- luv_bot.lua: an echo bot on a libuv loop (luv). The client's fd is a
-- uv_poll, its timers one uv_timer; the handler waits on luv (a timer here,
-- a file or a child process in a real bot) the luv way: the callback resumes
-- the handler's coroutine.
--   lua5.4 examples/luv_bot.lua [url] [user_id]
local uv = require "luv"
local layer = require "layer"
local dev = require "layer.dev"

local url = arg[1] or os.getenv("LAYER_URL") or "http://127.0.0.1:7480"
local user_id = arg[2] or "luv-bot"

local client = layer.client({
  url = url,
  app_id = "layer:///apps/staging/luv-bot",
  identity = dev.identity(os.getenv("LAYER_SECRET") or "dev-secret", user_id, { display_name = "Luv Bot" }),
})

-- Wait ms on the luv loop from inside a handler; other events keep flowing.
local function sleep(ms)
  local co, timer = coroutine.running(), uv.new_timer()
  timer:start(ms, 0, function()
    timer:close()
    assert(coroutine.resume(co))
  end)
  coroutine.yield()
end

client:on("ready", function()
  print(("luv bot %s is listening on %s"):format(client.user.user_id, url))
  io.stdout:flush()
end)
client:on("message", function(msg)
  if msg.sender.user_id == client.user.user_id then return end
  sleep(0) -- one turn of the luv loop, as a real wait would take
  local reply, err = msg.conversation:send("luv echo: " .. msg:text())
  if not reply then print("could not answer: " .. tostring(err)) end
  msg:mark_read()
end)
client:on("error", function(err) print("error: " .. tostring(err)) end)

-- The recipe of docs/client.md: poll the fd, rearm a timer to client:timeout().
local poll, timer = uv.new_poll(client:pollfd()), uv.new_timer()
local function drive()
  if not client:closed() then client:step(0) end
  if client:closed() then
    poll:close()
    timer:close()
    return
  end
  timer:stop()
  timer:start(math.floor((client:timeout() or 1) * 1000), 0, drive)
end
poll:start("r", drive)
timer:start(0, 0, drive)
uv.run()
