-- client_e2e.lua - echo round trips through the local server: layer.client against layer-websdk
-- (Node, bench/websdk_echo.js), both talking to one echo bot (layer.client) on one server.
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="build/5.4/?.so;;" \
--     lua5.4 bench/client_e2e.lua [round_trips=300] [rounds=2] [warmup=30]
--
-- One layer-server (dev.start_server, max_lifetime) and one echo bot in its own Lua process
-- (`--bot`). Then, alternating, `rounds` times each: a Lua sender process (`--sender`) and a
-- Node sender process (layer-websdk 3.4.18, installed into bench/websdk by npm). Each sender
-- is a fresh user with its own conversation with the bot; it sends "ping i", waits for the
-- bot's "echo: ping i" to reach its message handler, then sends the next one (sequential).
-- The first `warmup` round trips of every sender process are not counted.
-- Round trip = wall time (gettimeofday: luasocket / process.hrtime) from just before the send
-- call to the handler seeing the echo: Lua `client:on("message")`, websdk `messages:add`.
-- websdk delivers `messages:add` from a setTimeout(0) (about 1 ms under Node), so its socket-level
-- arrival (`socketManager` "message") is reported too, as websdk's lower bound.

local layer = require "layer"
local dev = require "layer.dev"
local socket = require "socket"

local now = socket.gettime
local APP = "layer:///apps/staging/00000000-0000-0000-0000-0000000000e2"
local BOT = "echo-bot"

local function client_for(url, secret, user)
  return layer.client({ url = url, app_id = APP, identity = dev.identity(secret, user, { display_name = user }) })
end

-- step until done() or the deadline; step() blocks in epoll while idle
local function pump(c, done, seconds, what)
  local deadline = now() + seconds
  while not done() do
    if now() > deadline then error("timed out waiting for " .. what) end
    local t = c:timeout() or 0.05
    c:step(t < 0.05 and t or 0.05)
  end
end

---------------------------------------------------------------------------
-- The echo bot: answers every message from someone else with "echo: <text>".

if arg[1] == "--bot" then
  local url, secret, stop_file, lifetime = arg[2], arg[3], arg[4], tonumber(arg[5]) or 300
  local bot = client_for(url, secret, BOT)
  local echoed = 0
  bot:on("message", function(m)
    if m.sender.user_id ~= BOT then
      echoed = echoed + 1
      m.conversation:send("echo: " .. m:text())
    end
  end)
  bot:on("error", function(e) io.stderr:write("bot: ", tostring(e), "\n") end)
  local ready = false
  bot:on("ready", function() ready = true end)
  pump(bot, function() return ready end, 20, "the bot to log in")
  io.write("BOT READY\n")
  io.stdout:flush()
  local deadline, next_check = now() + lifetime, 0
  while now() < deadline do
    local t = bot:timeout() or 0.5
    bot:step(t < 0.5 and t or 0.5)
    if now() > next_check then
      next_check = now() + 0.5
      local f = io.open(stop_file)
      if f then f:close() break end
    end
  end
  io.write("BOT ECHOED ", echoed, "\n")
  bot:close()
  return
end

---------------------------------------------------------------------------
-- A Lua sender: prints its round trips in ms.

if arg[1] == "--sender" then
  local url, secret, user, n, warmup = arg[2], arg[3], arg[4], tonumber(arg[5]), tonumber(arg[6])
  local c = client_for(url, secret, user)
  local conv, ready = nil, false
  c:on("ready", function() ready = true end)
  c:on("error", function(e) io.stderr:write("sender: ", tostring(e), "\n") end)
  pump(c, function() return ready end, 20, "login")
  c:spawn(function() conv = assert(c:create_conversation({ participants = { BOT }, distinct = false })) end)
  pump(c, function() return conv ~= nil end, 20, "the conversation")
  local expect, got_at
  c:on("message", function(m)
    if expect and m.sender.user_id == BOT and m:text() == expect then got_at = now() end
  end)
  local samples = {}
  local function sent(msg, err) if not msg then error("send failed: " .. tostring(err)) end end
  for i = 1, warmup + n do
    expect, got_at = "echo: ping " .. i, nil
    local t0 = now()
    conv:send("ping " .. i, sent)
    pump(c, function() return got_at ~= nil end, 20, "echo " .. i)
    if i > warmup then samples[#samples + 1] = string.format("%.3f", (got_at - t0) * 1000) end
  end
  io.write("SAMPLES ", table.concat(samples, ","), "\n")
  c:close()
  return
end

---------------------------------------------------------------------------
-- The driver.

local n, rounds, warmup = tonumber(arg[1]) or 300, tonumber(arg[2]) or 2, tonumber(arg[3]) or 30
local interp = (type(jit) == "table" and jit.version) or _VERSION
local exe = arg[-1] or "lua5.4"

local function sh_ok(cmd)
  local r1, _, r3 = os.execute(cmd)
  return r1 == true or r1 == 0 or r3 == 0
end

-- layer-websdk and its Node shims' dependencies, pinned in bench/websdk/package-lock.json
if not io.open("bench/websdk/node_modules/layer-websdk/package.json") then
  assert(sh_ok("timeout 300 npm ci --prefix bench/websdk --no-audit --no-fund --loglevel=error >&2"),
    "npm ci --prefix bench/websdk failed")
end

local server = dev.start_server({ max_lifetime = 60 + rounds * 2 * (n + warmup) / 10 })
local stop_file = os.tmpname()
os.remove(stop_file)
local bot_cmd = string.format("timeout %d %s %s --bot %s %s %s %d", 60 + rounds * 2 * (n + warmup) // 10, exe, arg[0],
  server.url, server.secret, stop_file, 60 + rounds * 2 * (n + warmup) // 10)
local bot = assert(io.popen(bot_cmd, "r"))
local line = bot:read("*l")
if line ~= "BOT READY" then
  server.stop()
  error("the echo bot did not start: " .. tostring(line))
end

local function run_child(cmd)
  local h = assert(io.popen(cmd, "r"))
  local out = h:read("*a")
  h:close()
  return out
end

local function parse(out, tag)
  local s = out:match(tag .. " ([%d%.,]+)")
  if not s then return nil end
  local list = {}
  for v in s:gmatch("[^,]+") do list[#list + 1] = tonumber(v) end
  return list
end

local all = { ours = {}, websdk = {}, websdk_socket = {} }
local per_round = {}
local ok, err = pcall(function()
  for r = 1, rounds do
    local order = (r % 2 == 1) and { "ours", "websdk" } or { "websdk", "ours" }
    for _, which in ipairs(order) do
      local user = ("%s-sender-%d"):format(which, r)
      local out
      if which == "ours" then
        out = run_child(string.format("timeout 300 %s %s --sender %s %s %s %d %d", exe, arg[0], server.url,
          server.secret, user, n, warmup))
      else
        out = run_child(string.format("timeout 300 node bench/websdk_echo.js %s %s %s %d %d", server.url,
          server.secret, user, n, warmup))
      end
      local s = parse(out, "SAMPLES")
      if not s or #s ~= n then error(which .. " sender failed:\n" .. out) end
      for _, v in ipairs(s) do table.insert(all[which], v) end
      per_round[#per_round + 1] = { which = which, round = r, samples = s }
      if which == "websdk" then
        for _, v in ipairs(parse(out, "SOCKET") or {}) do table.insert(all.websdk_socket, v) end
      end
    end
  end
end)
local f = io.open(stop_file, "w")
if f then f:close() end
local bot_tail = bot:read("*a")
bot:close()
os.remove(stop_file)
server.stop()
if not ok then error(err, 0) end

local function stats(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local sum = 0
  for _, v in ipairs(s) do sum = sum + v end
  local function pct(p) return s[math.max(1, math.ceil(p * #s))] end
  return { n = #s, p50 = pct(0.50), p90 = pct(0.90), p99 = pct(0.99), max = s[#s], mean = sum / #s }
end

local so, sw, ss = stats(all.ours), stats(all.websdk), stats(all.websdk_socket)
print(string.format("client_e2e: %s sender and echo bot, layer-websdk 3.4.18 on Node %s; %d rounds x %d round trips " ..
  "per sender (after %d warm-up each), sequential; %s", interp, (run_child("node --version"):gsub("%s+$", "")),
  rounds, n, warmup, (bot_tail:gsub("%s+$", ""))))
for _, pr in ipairs(per_round) do
  local st = stats(pr.samples)
  print(string.format("  round %d %-7s p50 %6.2f ms  p99 %6.2f ms  mean %6.2f ms", pr.round, pr.which, st.p50, st.p99, st.mean))
end
print(string.format("%-34s %8s %8s %8s %8s %8s", "round trip, ms", "p50", "p90", "p99", "max", "mean"))
local function row(name, st)
  print(string.format("%-34s %8.2f %8.2f %8.2f %8.2f %8.2f", name, st.p50, st.p90, st.p99, st.max, st.mean))
end
row("layer.client (Lua)", so)
row("layer-websdk, messages:add", sw)
if ss.n > 0 then row("layer-websdk, socket arrival", ss) end
print(string.format("RESULT bench=client_e2e interp=%q n=%d ours_p50=%.2f ours_p99=%.2f ours_mean=%.2f websdk_p50=%.2f " ..
  "websdk_p99=%.2f websdk_mean=%.2f websdk_socket_p50=%.2f websdk_socket_p99=%.2f p99_ratio=%.2f", interp, so.n,
  so.p50, so.p99, so.mean, sw.p50, sw.p99, sw.mean, ss.p50 or 0, ss.p99 or 0, sw.p99 / so.p99))
print(string.format("target p99 lower than layer-websdk's: %s (%.2f ms vs %.2f ms; websdk socket arrival %.2f ms)",
  so.p99 < sw.p99 and "MET" or "MISSED", so.p99, sw.p99, ss.p99 or 0))
