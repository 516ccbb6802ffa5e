-- client_scale.lua - many layer.client instances in one Lua process against the local server:
-- memory per client and change packets per second delivered across all of them, with every
-- client on a loop of its own (the default) and with all of them on one shared layer.loop(),
-- side by side.
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="build/5.4/?.so;;" \
--     lua5.4 bench/client_scale.lua [clients=1000] [group=25] [senders_per_group=5] [messages_per_sender=10]
--
-- Each mode runs in a fresh child process (`--mode private|shared`, with its own server), so one
-- cannot reuse memory the other freed; the parent prints both reports and the ratios.
--
-- Phases: (1) log every client in (nonce, identity token, session, WebSocket); (2) one member
-- of each group of `group` clients creates a conversation with the other members, and every
-- member waits until it holds it; (3) `senders_per_group` members of each group each send
-- `messages_per_sender` messages at once (no waiting), and every client waits until it holds
-- all the messages of its conversation. Packets/s = change/operation/response packets received
-- by all clients (sum of stats().packets) during phase 3 / its wall time.
--
-- The loop. private: each client has its own transport (epoll fd, libcurl multi handle,
-- libwebsockets context) and one thread calls step(0) on every client in turn (a busy sweep:
-- there is nothing to block on for 1,000 clients at once). shared: every client is made with
-- `loop = L`, and the thread calls L:step(0.01), which waits on the one epoll set and steps only
-- the clients with work. The server runs in its own process on the same 2 cores. Memory per
-- client = (RSS now - RSS before the first client, and before the shared loop) / clients; also
-- split into Lua heap growth and the C caches (stats().bytes). CPU per packet = the clients'
-- process CPU during phase 3 / packets.

local layer = require "layer"
local dev = require "layer.dev"
local socket = require "socket"

local now = socket.gettime
local MODE
if arg[1] == "--mode" then MODE = arg[2]; table.remove(arg, 1); table.remove(arg, 1) end
local N = tonumber(arg[1]) or 1000
local GROUP = tonumber(arg[2]) or 25
local SENDERS = tonumber(arg[3]) or 5
local PER_SENDER = tonumber(arg[4]) or 10

if not MODE then -- the parent: each mode in a fresh process, then the comparison
  local exe, results = arg[-1] or "lua5.4", {}
  for _, mode in ipairs({ "private", "shared" }) do
    local cmd = string.format("%s %s --mode %s %d %d %d %d", exe, arg[0], mode, N, GROUP, SENDERS, PER_SENDER)
    local h = assert(io.popen(cmd))
    local out = h:read("*a")
    local ok = h:close()
    io.write(out)
    local r = {}
    for k, v in (out:match("RESULT bench=client_scale [^\n]*") or ""):gmatch("(%w[%w_]*)=(%S+)") do r[k] = tonumber(v) or v end
    if not r.rss_per_client then error("client_scale --mode " .. mode .. " failed") end
    results[mode] = r
  end
  local p, q = results.private, results.shared
  print(string.format("client_scale, %d clients: private loops against one shared layer.loop()", N))
  print(string.format("%-44s %12s %12s %10s", "", "private", "shared", "private/shared"))
  local function row(name, key, fmt)
    print(string.format("%-44s %12" .. fmt .. " %12" .. fmt .. " %10.1fx", name, p[key], q[key], p[key] / q[key]))
  end
  row("RSS per idle (connected) client, bytes", "rss_per_client", ".0f")
  row("  of which anonymous, bytes", "anon_per_client", ".0f")
  row("RSS per client after traffic, bytes", "rss_per_client_after", ".0f")
  row("Lua heap per client, bytes", "lua_per_client", ".0f")
  row("client CPU per delivered packet, us", "cpu_us_per_packet", ".2f")
  row("one idle pass over every client, ms", "sweep_ms", ".3f")
  row("packets/s across all clients", "pps", ".0f")
  print(string.format("RESULT bench=client_scale_modes clients=%d rss_private=%.0f rss_shared=%.0f rss_ratio=%.2f " ..
    "cpu_us_private=%.2f cpu_us_shared=%.2f cpu_ratio=%.2f", N, p.rss_per_client, q.rss_per_client,
    p.rss_per_client / q.rss_per_client, p.cpu_us_per_packet, q.cpu_us_per_packet,
    p.cpu_us_per_packet / q.cpu_us_per_packet))
  os.exit(0)
end
assert(MODE == "private" or MODE == "shared", "--mode private|shared")
local SHARED = MODE == "shared"
local APP = "layer:///apps/staging/00000000-0000-0000-0000-0000000005ca"
local interp = (type(jit) == "table" and jit.version) or _VERSION
assert(N % GROUP == 0, "clients must be a multiple of the group size")
assert(GROUP <= 25, "the server allows at most 25 participants")

local probes = require "probes"
local rss_bytes, full_gc = probes.rss_bytes, probes.full_gc
-- Anonymous resident memory: RSS without the pages of mapped files (library code the first
-- connection touches once, whatever the number of clients).
local function anon_bytes()
  local f = assert(io.open("/proc/self/status"))
  local kb
  for line in f:lines() do
    kb = kb or tonumber(line:match("^RssAnon:%s+(%d+)"))
  end
  f:close()
  return (kb or 0) * 1024
end
local function open_fds()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  local h = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
  local n = tonumber(h:read("*l"))
  h:close()
  return n
end

-- Every client needs a handful of descriptors, and so does the server for each of them.
local h = io.popen("ulimit -n")
local limit = tonumber(h:read("*l")) or 0
h:close()
if limit < N * 8 + 256 then
  error(("ulimit -n is %d; run `ulimit -n %d` first (bench.mk does)"):format(limit, N * 8 + 256))
end

local function cpu_of(pid) -- user + system seconds of a process
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0 end
  local line = f:read("*l")
  f:close()
  local rest = line:match("%) (.*)$")
  local fields = {}
  for v in rest:gmatch("%S+") do fields[#fields + 1] = v end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- clock ticks (USER_HZ = 100 on Linux)
end

-- The local server as layer.dev starts it, but without its limit of 64 connections per address:
-- here every client comes from 127.0.0.1.
local function start_server()
  local log = os.tmpname()
  local bin = (os.getenv("LAYER_BUILD") or "build") .. "/layer-server"
  local cmd = ("exec %s --port 0 --db :memory: --identity-secret bench-secret --admin-token bench-admin " ..
    "--max-lifetime 300 --max-conns-per-ip 0 --log-level error 2>>%s"):format(bin, log)
  local handle = assert(io.popen(cmd, "r"))
  local url, pid = (handle:read("*l") or ""):match("listening on (%S+) port %d+ pid (%d+)")
  if not url then error("layer-server did not start: " .. cmd) end
  local srv = { url = url, pid = tonumber(pid), secret = "bench-secret" }
  function srv.stop()
    os.execute("kill -TERM " .. srv.pid .. " 2>/dev/null")
    handle:close()
    os.remove(log)
  end
  return srv
end

local server = start_server()
local clients, ready_count = {}, 0
local ok, err = pcall(function()
  full_gc()
  local rss0, lua0, anon0 = rss_bytes(), collectgarbage("count") * 1024, anon_bytes()
  local fds0 = open_fds()
  local loop = SHARED and layer.loop() or nil -- its own memory counts, spread over the clients

  -- private: step(0) on every client; shared: one pass of the loop, waiting up to 10 ms for work
  local function sweep()
    if loop then
      loop:step(0.01)
    else
      for i = 1, #clients do clients[i]:step(0) end
    end
  end
  local function pump(done, seconds, what)
    local deadline = now() + seconds
    local sweeps = 0
    while not done() do
      if now() > deadline then error("timed out waiting for " .. what) end
      sweep()
      sweeps = sweeps + 1
    end
    return sweeps
  end
  local errors = 0
  local function new_client(i)
    local user = ("scale-%04d"):format(i)
    local c = layer.client({ url = server.url, app_id = APP, identity = dev.identity(server.secret, user), loop = loop })
    c:on("ready", function() ready_count = ready_count + 1 end)
    c:on("error", function(e)
      errors = errors + 1
      if errors <= 5 then io.stderr:write("client ", user, ": ", tostring(e), "\n") end
    end)
    return c, user
  end

  -- (1) log in, in waves of 100 so the server's accept queue and header pool are not flooded
  local t0 = now()
  local users = {}
  for i = 1, N do
    clients[i], users[i] = new_client(i)
    if i % 100 == 0 then pump(function() return ready_count == i end, 60, "logins") end
  end
  pump(function() return ready_count == N end, 60, "logins")
  local t_login = now() - t0
  -- idle passes: how long one step(0) over every client (or of the loop) takes when nothing arrives
  local ts = now()
  for _ = 1, 20 do
    if loop then loop:step(0) else sweep() end
  end
  local sweep_ms = (now() - ts) / 20 * 1000
  full_gc()
  local rss1, lua1, fds1, anon1 = rss_bytes(), collectgarbage("count") * 1024, open_fds(), anon_bytes()
  local cbytes1 = 0
  for i = 1, N do cbytes1 = cbytes1 + clients[i]:stats().bytes end

  -- (2) conversations
  local convs, created = {}, 0
  t0 = now()
  for g = 0, N / GROUP - 1 do
    local owner = clients[g * GROUP + 1]
    local members = {}
    for k = 2, GROUP do members[#members + 1] = users[g * GROUP + k] end
    owner:spawn(function()
      convs[g] = assert(owner:create_conversation({ participants = members, distinct = false,
        metadata = { title = "group " .. g } }))
      created = created + 1
    end)
  end
  pump(function() return created == N / GROUP end, 60, "conversations")
  local function all_hold(field, want)
    for i = 1, N do
      if clients[i]:stats()[field] < want then return false end
    end
    return true
  end
  pump(function() return all_hold("conversations", 1) end, 60, "every member to hold its conversation")
  local t_conv = now() - t0

  -- (3) traffic
  local packets0 = 0
  for i = 1, N do packets0 = packets0 + clients[i]:stats().packets end
  local received = 0
  for i = 1, N do clients[i]:on("message", function(m) local id, s = m.id, m.sender; received = received + 1 end) end
  local want = SENDERS * PER_SENDER
  local srv_cpu0, own_cpu0 = cpu_of(server.pid), os.clock()
  t0 = now()
  local send_failed = 0
  local function sent(msg, e) if not msg then send_failed = send_failed + 1 end end
  for g = 0, N / GROUP - 1 do
    for s = 1, SENDERS do
      local c = clients[g * GROUP + s]
      local conv = c:engine():object(convs[g].id)
      for k = 1, PER_SENDER do conv:send(("message %d from sender %d of group %d"):format(k, s, g), sent) end
    end
  end
  -- every member receives every message of its conversation (its own ones included)
  local sweeps = pump(function() return received >= N * want end, 120, "every client to receive every message")
  assert(all_hold("messages", want), "message events and cached messages disagree")
  -- the responses to the senders and the last patches may still be in flight: drain briefly
  local drain_until = now() + 0.5
  while now() < drain_until do sweep() end
  local t_traffic = now() - t0
  local srv_cpu, own_cpu = cpu_of(server.pid) - srv_cpu0, os.clock() - own_cpu0
  local packets1 = 0
  for i = 1, N do packets1 = packets1 + clients[i]:stats().packets end
  assert(send_failed == 0, send_failed .. " sends failed")

  full_gc()
  local rss2, lua2 = rss_bytes(), collectgarbage("count") * 1024
  local cbytes2, cbytes3 = 0, 0
  for i = 1, N do cbytes2 = cbytes2 + clients[i]:stats().bytes end
  for i = 1, N do clients[i]:engine():compact() end -- what idle steps do 64 slots at a time
  full_gc()
  local rss3 = rss_bytes()
  for i = 1, N do cbytes3 = cbytes3 + clients[i]:stats().bytes end
  local packets = packets1 - packets0
  -- packets during the timed window only (the drain adds at most 0.5 s and few packets)
  local pps = packets / t_traffic

  print(string.format("client_scale (%s loops): %s, %d clients in one process, %d conversations x %d, %d senders x %d messages " ..
    "per conversation; %d client errors", MODE, interp, N, N / GROUP, GROUP, SENDERS, PER_SENDER, errors))
  print(string.format("  login: %.1f s for %d clients (%.0f logins/s); conversations: %.1f s", t_login, N,
    N / t_login, t_conv))
  print(string.format("  one idle %s over %d clients: %.3f ms (%.2f us per client); %d passes in phase 3",
    loop and "loop:step(0)" or "step(0) sweep", N, sweep_ms, sweep_ms * 1000 / N, sweeps))
  print(string.format("  descriptors: %.1f per client", (fds1 - fds0) / N))
  print(string.format("  ulimit -n %d (libwebsockets sizes %s fd tables from it)", limit,
    loop and "the shared context's" or "each context's"))
  print(string.format("%-40s %12s %14s %14s", "memory per client, bytes", "connected", "after traffic",
    "+ compact()"))
  print(string.format("%-40s %12.0f %14.0f %14.0f", "  RSS growth / clients", (rss1 - rss0) / N, (rss2 - rss0) / N,
    (rss3 - rss0) / N))
  print(string.format("%-40s %12.0f %14s %14s", "  of which anonymous (not library pages)", (anon1 - anon0) / N, "-", "-"))
  print(string.format("%-40s %12.0f %14.0f %14s", "  Lua heap growth / clients", (lua1 - lua0) / N, (lua2 - lua0) / N, "-"))
  print(string.format("%-40s %12.0f %14.0f %14.0f", "  C cache, stats().bytes / clients", cbytes1 / N, cbytes2 / N,
    cbytes3 / N))
  print(string.format("  traffic: %d messages sent, %d message events, %d packets received in %.2f s: %.0f packets/s " ..
    "across all clients", N / GROUP * SENDERS * PER_SENDER, received, packets, t_traffic, pps))
  print(string.format("  CPU during traffic: clients' process %.2f s (%.0f%% of wall; %.1f us per packet), server %.2f s (%.0f%%)",
    own_cpu, own_cpu / t_traffic * 100, own_cpu / packets * 1e6, srv_cpu, srv_cpu / t_traffic * 100))
  print(string.format("RESULT bench=client_scale mode=%s interp=%q clients=%d rss_per_client=%.0f rss_per_client_after=%.0f " ..
    "lua_per_client=%.0f cache_per_client_after=%.0f cache_per_client_compacted=%.0f packets=%d seconds=%.2f pps=%.0f " ..
    "login_s=%.1f sweep_ms=%.3f ulimit_n=%d client_cpu_s=%.2f server_cpu_s=%.2f cpu_us_per_packet=%.2f anon_per_client=%.0f", MODE, interp, N, (rss1 - rss0) / N, (rss2 - rss0) / N, (lua1 - lua0) / N,
    cbytes2 / N, cbytes3 / N, packets, t_traffic, pps, t_login, sweep_ms, limit, own_cpu, srv_cpu, own_cpu / packets * 1e6, (anon1 - anon0) / N))
end)
for _, c in ipairs(clients) do pcall(c.close, c) end
server.stop()
if not ok then io.stderr:write("client_scale --mode ", MODE, ": ", tostring(err), "\n") end
if not ok then error(err, 0) end
