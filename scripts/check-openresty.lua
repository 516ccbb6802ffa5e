-- check-openresty.lua: CI's openresty stage. Starts the local server, the OpenResty
-- example (examples/openresty/run) and, for comparison, the C-transport echo bot
-- (examples/echo_bot.lua under luajit); a person on the C transport then
--   * calls the example's /send endpoint N times (nginx sends in a content handler),
--   * sends N messages to each bot and times the answer,
-- and it prints p50/p99 of each. Fails if a bot did not answer, nginx's worker
-- crashed, or the endpoint's median looks quantised by a poll (>= 25 ms).
--   make check-openresty [OPENRESTY_N=200]
local layer = require "layer"
local dev = require "layer.dev"
local socket = require "socket"

local N = tonumber(arg[1]) or 200
local build = os.getenv("LAYER_BUILD") or "build"
local failures = {}
local function fail(msg)
  failures[#failures + 1] = msg
  io.stderr:write("FAIL: ", msg, "\n")
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A background process that stops by itself after `seconds`; returns its pid.
local function start_bg(env, cmd, log)
  local assigns = {}
  for k, v in pairs(env) do assigns[#assigns + 1] = k .. "=" .. sh_quote(v) end
  local p = assert(io.popen(("%s %s >%s 2>&1 & echo $!"):format(table.concat(assigns, " "), cmd, sh_quote(log)), "r"))
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local function percentile(list, p)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  if #s == 0 then return 0 / 0 end
  return s[math.max(1, math.ceil(#s * p))]
end

local function report(name, list)
  print(("%-52s p50 %7.2f ms  p99 %7.2f ms  (n=%d)"):format(name, percentile(list, 0.5), percentile(list, 0.99), #list))
end

local function http_get(port, path)
  local c = socket.tcp()
  c:settimeout(10)
  assert(c:connect("127.0.0.1", port))
  c:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
  local all, _, partial = c:receive("*a")
  c:close()
  all = all or partial or ""
  local status = tonumber(all:match("^HTTP/1%.%d (%d+)"))
  local body = all:match("\r\n\r\n(.*)$") or ""
  if all:lower():find("transfer%-encoding: chunked") then
    body = body:match("^%x+\r\n(.-)\r\n0\r\n") or body
  end
  return status, body
end

local function wait_port(port, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return true end
    socket.sleep(0.02)
  end
  return false
end

---------------------------------------------------------------------------

local server = dev.start_server({ max_lifetime = 120 })
print("local Layer server on " .. server.url)
local tmp = os.tmpname()
local ngx_port = free_port()
local ngx_log, ngx_out, cbot_out = tmp .. "-nginx.log", tmp .. "-nginx.out", tmp .. "-cbot.out"
local ngx_pid = start_bg({ LAYER_URL = server.url, LAYER_SECRET = server.secret, LAYER_NGX_LOG = ngx_log,
  LAYER_BUILD = build }, "examples/openresty/run " .. ngx_port .. " 90", ngx_out)
-- its state file goes to a temporary name, not into the checkout
local cbot_pid = start_bg({ LAYER_SECRET = server.secret, LAYER_STATE = tmp .. "-cbot.db", LUA_PATH = "lua/?.lua;lua/?/init.lua;;",
  LUA_CPATH = build .. "/jit/?.so;;" }, "timeout 90 luajit examples/echo_bot.lua " .. server.url .. " c-bot", cbot_out)

local ada = layer.client({ url = server.url, app_id = "layer:///apps/staging/openresty-check",
  identity = dev.identity(server.secret, "ada", { display_name = "Ada" }) })
local ready, inbox = false, {}
ada:on("ready", function() ready = true end)
ada:on("message", function(msg)
  if msg.sender.user_id ~= "ada" then inbox[#inbox + 1] = { text = msg:text(), at = socket.gettime() } end
end)

local function step_until(pred, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if pred() then return true end
    local t = ada:timeout()
    ada:step(math.min(t or 0.05, 0.05, math.max(0, deadline - socket.gettime())))
  end
  return pred()
end

local function spawn_wait(fn, seconds)
  local done, a, b = false, nil, nil
  ada:spawn(function() a, b = fn(); done = true end)
  step_until(function() return done end, seconds or 10)
  return a, b
end

local ok = wait_port(ngx_port, 10) and step_until(function() return ready end, 10)
if not ok then fail("nginx or the person did not start: " .. read_file(ngx_out)) end

-- 1. The endpoint: nginx sends in a content handler; bad input is a 400 in Layer's shape.
local endpoint_http, endpoint_inner = {}, {}
if ok then
  local status, body = http_get(ngx_port, "/send?text=nobody")
  local j = layer.json_decode(body)
  if status ~= 400 or type(j) ~= "table" or j.id ~= "invalid_request" or not j.message then
    fail("GET /send without to answered " .. tostring(status) .. ": " .. tostring(body))
  end
end
if ok then
  for i = 0, N do
    local t0 = socket.gettime()
    local status, body = http_get(ngx_port, "/send?to=ada&text=hello%20" .. i)
    local t1 = socket.gettime()
    local j = status == 200 and layer.json_decode(body)
    if not j or not j.id then
      fail("GET /send answered " .. tostring(status) .. ": " .. tostring(body))
      break
    end
    if i > 0 then -- the first one logs in and creates the conversation
      endpoint_http[#endpoint_http + 1] = (t1 - t0) * 1000
      endpoint_inner[#endpoint_inner + 1] = j.ms
    end
    ada:step(0)
  end
end

-- 2. A send from the C transport, the same operation in a plain process.
local c_send = {}
local conv_ngx, conv_c
if ok then
  conv_ngx = spawn_wait(function() return ada:create_conversation({ participants = { "nginx-bot" }, distinct = true }) end)
  conv_c = spawn_wait(function() return ada:create_conversation({ participants = { "c-bot" }, distinct = true }) end)
  if not (conv_ngx and conv_c) then fail("could not create the conversations") ok = false end
end
if ok then
  for i = 1, N do
    local t0 = socket.gettime()
    local msg = spawn_wait(function() return conv_c:send("plain " .. i) end)
    if not msg then fail("a C-transport send failed") break end
    c_send[#c_send + 1] = (socket.gettime() - t0) * 1000
  end
end

-- 3. A bot's answer: person -> bot -> person, for each bot.
local function echo_rtt(conv, name)
  local list = {}
  inbox = {}
  step_until(function() return false end, 0.2) -- drain
  inbox = {}
  for i = 1, N do
    local text = name .. " ping " .. i
    local t0 = socket.gettime()
    ada:spawn(function() conv:send(text) end)
    local got = step_until(function()
      for _, m in ipairs(inbox) do if m.text == "echo: " .. text then return m end end
    end, 10)
    if not got then
      fail(name .. " did not answer " .. text)
      return list
    end
    for _, m in ipairs(inbox) do
      if m.text == "echo: " .. text then list[#list + 1] = (m.at - t0) * 1000 end
    end
    inbox = {}
  end
  return list
end
local rtt_ngx, rtt_c = {}, {}
if ok then
  rtt_ngx = echo_rtt(conv_ngx, "nginx-bot")
  rtt_c = echo_rtt(conv_c, "c-bot")
end

ada:close()
os.execute("kill -TERM " .. ngx_pid .. " " .. cbot_pid .. " 2>/dev/null")
local deadline = socket.gettime() + 10
while socket.gettime() < deadline and read_file(ngx_log) == "" do socket.sleep(0.05) end
server.stop()

print()
print(("round trips against the local server, %d each (ms):"):format(N))
report("send, OpenResty /send over HTTP (cosocket transport)", endpoint_http)
report("send, inside the nginx content handler", endpoint_inner)
report("send, C transport (plain process)", c_send)
report("bot answer, OpenResty timer bot (cosocket transport)", rtt_ngx)
report("bot answer, C-transport bot (luajit, plain process)", rtt_c)
local function pair(list) return ("%.2f/%.2f"):format(percentile(list, 0.5), percentile(list, 0.99)) end
-- the last lines, which scripts/check shows: p50/p99 in ms
print(("openresty send p50/p99 ms: cosocket %s (in the handler %s), C transport %s"):format(
  pair(endpoint_http), pair(endpoint_inner), pair(c_send)))
print(("openresty bot answer p50/p99 ms: cosocket timer bot %s, C-transport bot %s"):format(pair(rtt_ngx), pair(rtt_c)))

local log = read_file(ngx_log)
if log == "" then fail("nginx left no error log") end
if log:find("exited on signal") then fail("an nginx worker crashed:\n" .. log) end
for line in log:gmatch("[^\n]+") do
  if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") then fail("nginx logged: " .. line) end
end
if #endpoint_inner == N and percentile(endpoint_inner, 0.5) >= 25 then
  fail("the endpoint's median send looks quantised by a poll")
end
if #endpoint_inner ~= N or #rtt_ngx ~= N or #rtt_c ~= N or #c_send ~= N then fail("missing samples") end
os.remove(tmp)
os.remove(ngx_log)
os.remove(ngx_out)
os.remove(cbot_out)
for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(tmp .. "-cbot.db" .. suffix) end
if #failures > 0 then
  print(#failures .. " failures")
  os.exit(1)
end
print(("openresty: %d sends from the endpoint, %d answers from the timer bot, no worker crash"):format(#endpoint_inner, #rtt_ngx))
