-- main.lua: a LÖVE 11.4 game that shows a Layer conversation. It starts the
-- local Layer server and the echo bot (examples/echo_bot.lua, its own process),
-- logs in, pumps the client once a frame with client:step(0, {events = 50, ms = 2})
-- and draws the messages; type and press Return to send. From the repository
-- root, after `make LUA=jit all server`:
--   love examples/love
--   love examples/love --ci 20 --out build/love
-- --ci N: send N messages one after another, print the round-trip latency
-- (p50/p99 in frames and ms), save first.png and last.png into --out, quit.
-- scripts/check-love runs the CI mode under Xvfb and checks the screenshots.

local source = love.filesystem.getSource()
local root = source:match("^(.*)/examples/love/?$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
-- LÖVE runs LuaJIT: the module is the `make LUA=jit` build.
local cpath = os.getenv("LAYER_CPATH") or (root .. "/build/jit/?.so")
package.cpath = cpath .. ";" .. package.cpath

local layer = require "layer"
local dev = require "layer.dev"
local utf8 = require "utf8"

local FPS = 60                  -- the frame rate a vsynced monitor would give
local BUDGET = { events = 50, ms = 2 }
local HEADER, FOOTER, PAD = 40, 40, 8
local CI_DEADLINE = 60          -- seconds before a CI run gives up
local ME, PEER = "player-one", "echo-bot"

local server, peer, client, conv
local lines = {}                -- { text =, mine = } for every message, oldest first
local status = "starting"
local input = ""
local font, line_height
local frame, next_frame = 0, 0
local step_total, step_worst = 0, 0
local drawn_lines = 0
local ci                        -- the CI run's state, nil when playing

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The echo bot in its own process, as a remote peer would be; `timeout` stops
-- it if the game dies without killing it.
local function start_peer(url, secret, lifetime)
  local log = os.tmpname()
  local cmd = ("echo $$; exec env LUA_PATH=%s LUA_CPATH=%s LAYER_SECRET=%s LAYER_STATE=:memory: timeout %d luajit -e %s %s %s %s >%s 2>&1"):format(
    quote(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"), quote(cpath .. ";;"), quote(secret), lifetime,
    quote("io.stdout:setvbuf('line')"), quote(root .. "/examples/echo_bot.lua"), quote(url), PEER, quote(log))
  local handle = assert(io.popen(cmd, "r"))
  local pid = tonumber(handle:read("*l"))
  assert(pid, "the echo bot did not start")
  return {
    log = log,
    stop = function()
      if not handle then return end
      os.execute("kill -TERM " .. pid .. " 2>/dev/null")
      handle:close()
      handle = nil
      os.remove(log)
    end,
  }
end

local function shutdown()
  if client and not client:closed() then client:close() end
  if peer then peer.stop() end
  if server then server.stop() end
  client, peer, server = nil, nil, nil
end

local function percentile(values, q)
  local sorted = {}
  for i, v in ipairs(values) do sorted[i] = v end
  table.sort(sorted)
  return sorted[math.max(1, math.ceil(q * #sorted))]
end

local function save_screenshot(name, after)
  love.graphics.captureScreenshot(function(image)
    local path = ci.out .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(image:encode("png"):getString())
    f:close()
    if after then after() end
  end)
end

local function send(text)
  if not conv then return end
  conv:send(text, function(msg, err)
    if not msg then status = "could not send: " .. tostring(err) end
  end)
end

local function on_message(msg)
  local text = msg:text()
  local mine = msg.sender.user_id == ME
  lines[#lines + 1] = { text = ("%s: %s"):format(msg.sender.display_name or msg.sender.user_id, text), mine = mine }
  if not ci or mine then return end
  if text == "echo: hello" then
    ci.warm = true
  elseif ci.pending and text == "echo: " .. ci.pending.text then
    ci.frames[#ci.frames + 1] = frame - ci.pending.frame
    ci.ms[#ci.ms + 1] = (love.timer.getTime() - ci.pending.at) * 1000
    ci.pending = nil
  end
end

local function connect()
  server = dev.start_server({ binary = os.getenv("LAYER_SERVER") or (root .. "/build/layer-server"),
    max_lifetime = ci and 120 or 3600 })
  peer = start_peer(server.url, server.secret, ci and 120 or 3600)
  client = layer.client({ url = server.url, app_id = "layer:///apps/staging/love",
    identity = dev.identity(server.secret, ME, { display_name = "Player One" }) })
  client:on("ready", function()
    status = "logged in as " .. ME .. " on " .. server.url
    local c, err = client:create_conversation({ participants = { PEER }, distinct = true,
      metadata = { title = "Player One and the echo bot" } })
    if not c then
      status = "could not create the conversation: " .. tostring(err)
      return
    end
    conv = c
  end)
  client:on("message", on_message)
  client:on("error", function(err)
    status = "error: " .. tostring(err)
    if ci then print("love: " .. status) end
  end)
  client:on("disconnected", function(reason) status = "disconnected: " .. tostring(reason) end)
end

-- CI: a "hello" each second until the bot answers (it logs in alongside the
-- game), then N timed pings, each sent when the previous echo arrived.
local function ci_update(now)
  if ci.finishing then return end
  if now > ci.deadline then
    print(("love: CI run timed out after %d s with %d of %d round trips (%s)"):format(
      CI_DEADLINE, #ci.ms, ci.count, status))
    local f = io.open(peer.log, "rb")
    if f then print("love: the echo bot's log:\n" .. f:read("*a")) f:close() end
    ci.finishing = true
    love.event.quit(1)
    return
  end
  if not conv then return end
  if not ci.warm then
    if now >= ci.next_hello then
      send("hello")
      ci.next_hello = now + 1
    end
  elseif not ci.pending and #ci.ms < ci.count then
    local text = "ping " .. (#ci.ms + 1)
    ci.pending = { text = text, frame = frame, at = now }
    send(text)
  elseif #ci.ms == ci.count then
    ci.finishing = true
    print(("love: round trip over %d messages: p50 %d frames %.1f ms, p99 %d frames %.1f ms"):format(ci.count,
      percentile(ci.frames, 0.5), percentile(ci.ms, 0.5), percentile(ci.frames, 0.99), percentile(ci.ms, 0.99)))
    print(("love: client:step per frame: mean %.3f ms, worst %.3f ms over %d frames"):format(
      step_total / frame * 1000, step_worst * 1000, frame))
    save_screenshot("last.png", function()
      print(("love: drew %d message lines"):format(drawn_lines))
      love.event.quit(0)
    end)
  end
end

function love.load(args)
  for i = 1, #args do
    if args[i] == "--ci" then
      ci = { count = tonumber(args[i + 1]), out = ".", frames = {}, ms = {}, next_hello = 0 }
      assert(ci.count and ci.count >= 1, "--ci takes a number of messages")
    elseif args[i] == "--out" then
      assert(ci and args[i + 1], "--out DIR comes after --ci N")
      ci.out = args[i + 1]
    end
  end
  if ci then
    local print_error = love.errorhandler -- conf.lua's: print and quit
    love.errorhandler = function(msg)
      shutdown()
      return print_error(msg)
    end
    ci.deadline = love.timer.getTime() + CI_DEADLINE
  end
  font = love.graphics.newFont(14)
  line_height = font:getHeight() + 6 -- blank rows between lines: scripts/check-love counts them
  love.graphics.setFont(font)
  love.graphics.setBackgroundColor(0.08, 0.09, 0.11)
  love.keyboard.setKeyRepeat(true)
  connect()
  if ci then
    print(("love: message area 0 %d %d %d"):format(HEADER, love.graphics.getWidth(),
      love.graphics.getHeight() - HEADER - FOOTER))
  end
end

function love.update()
  -- Xvfb (and some drivers) ignore vsync: hold the frame rate a monitor would.
  local now = love.timer.getTime()
  if now < next_frame then love.timer.sleep(next_frame - now) end
  now = love.timer.getTime()
  next_frame = math.max(next_frame + 1 / FPS, now)
  frame = frame + 1
  if ci then
    if frame == 1 then save_screenshot("first.png") end
    ci_update(now)
  end
  if not client then return end
  local started = love.timer.getTime()
  client:step(0, BUDGET)
  local spent = love.timer.getTime() - started
  step_total, step_worst = step_total + spent, math.max(step_worst, spent)
end

function love.draw()
  local width, height = love.graphics.getDimensions()
  love.graphics.setColor(0.6, 0.65, 0.7)
  love.graphics.print(status, PAD, PAD + 4)
  love.graphics.line(0, HEADER - 6, width, HEADER - 6)
  love.graphics.line(0, height - FOOTER + 6, width, height - FOOTER + 6)

  local visible = math.floor((height - HEADER - FOOTER - 2 * PAD) / line_height)
  local first = math.max(1, #lines - visible + 1)
  drawn_lines = 0
  for i = first, #lines do
    local line = lines[i]
    if line.mine then love.graphics.setColor(0.95, 0.95, 0.95) else love.graphics.setColor(0.55, 0.9, 0.6) end
    love.graphics.print(line.text, PAD, HEADER + PAD + (i - first) * line_height)
    drawn_lines = drawn_lines + 1
  end

  love.graphics.setColor(0.95, 0.85, 0.5)
  local prompt = ci and ("CI: %d of %d round trips"):format(#ci.ms, ci.count) or ("> " .. input .. "_")
  love.graphics.print(prompt, PAD, height - FOOTER + 14)
end

function love.textinput(text)
  if not ci then input = input .. text end
end

function love.keypressed(key)
  if key == "escape" then
    love.event.quit(0)
  elseif key == "backspace" then
    local last = utf8.offset(input, -1)
    if last then input = input:sub(1, last - 1) end
  elseif key == "return" and not ci then
    send(input ~= "" and input or "hello")
    input = ""
  end
end

function love.quit()
  shutdown()
end
