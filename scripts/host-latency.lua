-- host-latency.lua: runs one host example (examples/*) against the local
-- server, for CI's hosts stage, and prints its round-trip latency p50/p99.
-- Everything listens on 127.0.0.1 and stops by itself (the server after its
-- max lifetime, the example under `timeout`).
--   lua5.4 scripts/host-latency.lua [--service CMD] bot "<command with {url}>" "<reply prefix>" [rounds]
--   lua5.4 scripts/host-latency.lua chat "<command with {url}>" [rounds]
-- --service starts a helper first (examples/weather_service.lua) and puts the
-- URL it prints ("listening on URL") for {service} in the command.
-- bot: a person sends `rounds` messages; each waits for the bot's answer.
-- chat: the command (examples/chat.lua) runs in tmux as user "chatter". The
-- person's message comes back as chatter's read receipt; lines typed into the
-- pane reach the person; and the pane shows what the person said.
local layer = require "layer"
local dev = require "layer.dev"
local socket = require "socket"

local service_command
if arg[1] == "--service" then
  service_command = arg[2]
  table.remove(arg, 1)
  table.remove(arg, 1)
end
local mode, command = arg[1], arg[2]
local prefix = mode == "bot" and arg[3] or nil
local rounds = tonumber(mode == "bot" and arg[4] or arg[3]) or 20
assert((mode == "bot" and prefix) or mode == "chat", "usage: host-latency.lua bot CMD PREFIX [rounds] | chat CMD [rounds]")

local function fail(...)
  io.stderr:write("host-latency: ", string.format(...), "\n")
  os.exit(1)
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local server = dev.start_server({ max_lifetime = 90 })
local log = os.tmpname()
local tmux_session = "layer-chat"
local tmux = "tmux -L layer-chat-" .. tostring(server.pid) -- a tmux server of our own
local example_pid
local cmd = command:gsub("{url}", server.url)
local service_pid
if service_command then
  local service_log = os.tmpname()
  local p = io.popen(("timeout 60 %s >%s 2>&1 & echo $!"):format(service_command, quote(service_log)))
  service_pid = tonumber(p:read("*l"))
  p:close()
  local service_url
  for _ = 1, 500 do
    local f = io.open(service_log, "rb")
    service_url = f and f:read("*a"):match("listening on (%S+)")
    if f then f:close() end
    if service_url then break end
    socket.sleep(0.01)
  end
  os.remove(service_log)
  if not service_url then
    os.execute("kill " .. tostring(service_pid) .. " 2>/dev/null")
    server.stop()
    fail("the service did not start: %s", service_command)
  end
  cmd = cmd:gsub("{service}", service_url)
end

local function cleanup()
  if service_pid then os.execute("kill " .. service_pid .. " 2>/dev/null") end
  if mode == "chat" then
    os.execute(tmux .. " kill-server 2>/dev/null")
  elseif example_pid then
    os.execute("kill " .. example_pid .. " 2>/dev/null")
  end
  server.stop()
  os.remove(log)
end

local function read_log()
  local f = io.open(log, "rb")
  local text = f and f:read("*a") or ""
  if f then f:close() end
  return text
end

local function pane()
  local p = io.popen(tmux .. " capture-pane -p -J -S -200 -t " .. tmux_session .. " 2>/dev/null")
  local text = p:read("*a")
  p:close()
  return text
end

-- The example's output so far: its log, or its tmux pane.
local function output() return mode == "chat" and pane() or read_log() end

local person = layer.client({ url = server.url, app_id = "layer:///apps/staging/host-latency",
  identity = dev.identity(server.secret, "person", { display_name = "Person" }) })
person:on("error", function(err) io.stderr:write("person: ", tostring(err), "\n") end)

local function pump(done, seconds, what)
  local deadline = socket.gettime() + seconds
  while not done() do
    if socket.gettime() > deadline then
      local out = output()
      cleanup()
      fail("timed out waiting for %s; the example printed:\n%s", what, out)
    end
    person:step(0.002)
  end
end

-- Start the example, wait for its first line.
if mode == "chat" then
  cmd = cmd:gsub("{peer}", "person")
  -- --foreground: only the terminal's foreground process group may read it
  local ok = os.execute(("%s new-session -d -x 200 -y 50 -s %s %s"):format(tmux, tmux_session,
    quote("timeout --foreground 60 " .. cmd .. "; sleep 2")))
  if not ok then cleanup(); fail("tmux did not start") end
else
  local p = io.popen(("timeout 60 %s >%s 2>&1 & echo $!"):format(cmd, quote(log)))
  example_pid = tonumber(p:read("*l"))
  p:close()
end
local ready = false
person:once("ready", function() ready = true end)
pump(function() return ready end, 15, "the person to log in")
local user = mode == "chat" and "chatter" or nil
local t0 = socket.gettime()
pump(function()
  local out = output()
  if mode == "chat" then return out:find("connected as chatter", 1, true) ~= nil end
  user = out:match("bot (%S+) is listening")
  return user ~= nil
end, 20, "the example to connect")
local startup = socket.gettime() - t0

local conv
person:spawn(function() conv = assert(person:create_conversation({ participants = { user }, distinct = true })) end)
pump(function() return conv ~= nil end, 10, "the conversation")

-- Round trips: the bot's answer, or chatter's read receipt, for each message.
local latencies, answers, pending = {}, {}, nil
person:on("message", function(msg)
  if msg.sender.user_id == user and pending and mode == "bot" then
    answers[#answers + 1] = msg:text()
    latencies[#latencies + 1] = socket.gettime() - pending
    pending = nil
  end
end)
local pending_text
local user_identity = "layer:///identities/" .. user
person:on("message.update", function(msg, _)
  if mode == "chat" and pending and msg:text() == pending_text and (msg.recipient_status or {})[user_identity] == "read" then
    latencies[#latencies + 1] = socket.gettime() - pending
    pending = nil
  end
end)

local cities = { "Paris", "Lagos", "Lima", "Oslo", "Hanoi" }
for i = 1, rounds do
  local text = mode == "bot" and cities[(i - 1) % #cities + 1] or ("ping " .. i)
  local sent = false
  pending, pending_text = socket.gettime(), text
  person:spawn(function() assert(conv:send(text)); sent = true end)
  pump(function() return pending == nil and sent end, 10, "answer " .. i)
end
if mode == "bot" then
  for i, a in ipairs(answers) do
    if a:sub(1, #prefix) ~= prefix then cleanup(); fail("answer %d is %q, expected it to start with %q", i, a, prefix) end
  end
  print(("first answer: %q"):format(answers[1]))
end

-- chat: lines typed into the terminal reach the person, who is shown in the pane.
local typed = {}
if mode == "chat" then
  local got = {}
  person:on("message", function(msg) if msg.sender.user_id == user then got[msg:text()] = socket.gettime() end end)
  for i = 1, 5 do
    local line = "typed line " .. i
    local t = socket.gettime()
    os.execute(("%s send-keys -t %s -l %s && %s send-keys -t %s Enter"):format(tmux, tmux_session, quote(line), tmux,
      tmux_session))
    pump(function() return got[line] ~= nil end, 10, "the typed line " .. i)
    typed[#typed + 1] = got[line] - t
  end
  local screen = pane()
  for _, want in ipairs({ "Person: ping 1", "Person: ping " .. rounds }) do
    if not screen:find(want, 1, true) then cleanup(); fail("the pane does not show %q:\n%s", want, screen) end
  end
  os.execute(tmux .. " send-keys -t " .. tmux_session .. " C-d")
end

local function percentile(list, p)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s[math.max(1, math.ceil(#s * p))]
end
local name = command:match("examples/([%w_]+)%.lua") or command
local function figures(list) return ("p50 %.1f ms, p99 %.1f ms"):format(percentile(list, 0.5) * 1000, percentile(list, 0.99) * 1000) end
if mode == "chat" then
  print(("%s: %d round trips (message to read receipt) %s; %d typed lines to the peer %s"):format(name, #latencies,
    figures(latencies), #typed, figures(typed)))
else
  print(("%s: %d round trips (message to answer) %s"):format(name, #latencies, figures(latencies)))
end
person:close()
cleanup()
