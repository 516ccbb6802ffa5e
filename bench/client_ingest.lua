-- client_ingest.lua - ingest rate and bytes per cached message of layer.client (manual transport,
-- step() to Lua handlers) against a plain-Lua client (lua-cjson, Lua table cache, lua_patch.lua).
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="build/5.4/?.so;;" \
--     lua5.4 bench/client_ingest.lua build/bench/frames.txt [rounds] [batch]
--   (same with LUA_CPATH="build/jit/?.so;;" luajit)
--
-- The recorded stream is bench/gen-streams.lua's frames.txt: 12,400 change packets with
-- counters 0..12399 (30 Conversation creates, 3,000 ~1.7 KB Message creates, 9,370 ~0.4 KB
-- patches). Both paths see the frames in `batch`-sized bursts, as a socket delivers them:
--
--   ours       engine:feed(frame) for each frame of the burst, then client:step(0), which
--              dispatches the events to the handlers (each handler runs as a coroutine).
--   reference  for each frame: cjson.decode, envelope + counter check, upsert / delete /
--              patch (bench/lua_patch.lua) in a Lua table keyed by id, then the same handlers,
--              called directly from a plain handler list.
--
-- Handlers (the same functions on both sides): "message" reads m.id and m.sender,
-- "message.update" reads m.id and m.sender, "conversation.update" reads c.id and
-- c.unread_message_count (BENCH_HANDLERS=changes: update handlers also take the
-- change list and read its length). Time is os.clock() (process CPU), median of alternating rounds.
-- RSS is measured in a fresh child process per path (`--rss ours|lua`).
-- BENCH_STATE=1 runs ours with a state file (the `state` option).

local layer = require "layer"
local cjson = require "cjson"
local lua_patch = require "lua_patch"

local clock = os.clock
local null = cjson.null

local function load_frames(path)
  local frames, bytes = {}, 0
  for line in assert(io.open(path)):lines() do
    if line ~= "" then
      frames[#frames + 1] = line
      bytes = bytes + #line
    end
  end
  return frames, bytes
end

---------------------------------------------------------------------------
-- The handlers both paths call. They read two fields and keep a tally, so nothing is dead code.

local tally = { calls = 0, len = 0 }
local function on_message(m)
  local id, sender = m.id, m.sender
  tally.calls = tally.calls + 1
  tally.len = tally.len + #id + (sender and 1 or 0)
end
local function on_conversation(c)
  local id, unread = c.id, c.unread_message_count
  tally.calls = tally.calls + 1
  tally.len = tally.len + #id + (unread and 1 or 0)
end

-- Update handlers that also take the change list (function(obj, changes)) and
-- read its length: ours builds change lists (old and new values copied, and
-- converted to Lua only when read); the reference has none to give and passes nil.
local function on_message_changes(m, changes)
  local id, sender = m.id, m.sender
  tally.calls = tally.calls + 1
  tally.len = tally.len + #id + (sender and 1 or 0) + (changes and #changes or 0)
end
local function on_conversation_changes(c, changes)
  local id, unread = c.id, c.unread_message_count
  tally.calls = tally.calls + 1
  tally.len = tally.len + #id + (unread and 1 or 0) + (changes and #changes or 0)
end

-- Which handlers both paths register: "message" (the one handler on new
-- messages), "all" (new messages, message updates and conversation updates:
-- every packet reaches a handler; ours made with change_lists = false, as an
-- application that reads only objects says) or "changes" (as "all", with
-- change lists, which update handlers take and count).
local HANDLERS = os.getenv("BENCH_HANDLERS") or "all"
assert(HANDLERS == "all" or HANDLERS == "message" or HANDLERS == "changes",
  "BENCH_HANDLERS is message, all or changes")
local ON_MESSAGE_UPDATE = HANDLERS == "changes" and on_message_changes or on_message
local ON_CONVERSATION_UPDATE = HANDLERS == "changes" and on_conversation_changes or on_conversation

---------------------------------------------------------------------------
-- Ours: a manual-transport client that starts authenticated (session_token) with its socket open.

-- BENCH_STATE=1: the client keeps a state file (one SQLite transaction per step).
local STATE = os.getenv("BENCH_STATE") == "1"
local state_files = {}

local function ours_new()
  local state
  if STATE then
    state = os.tmpname()
    os.remove(state)
    state_files[#state_files + 1] = state
  end
  local client = layer.client({ transport = "manual", manual_clock = 1000, session_token = "bench", state = state,
    change_lists = HANDLERS == "changes" })
  local engine = client:engine()
  assert(engine:ws_wanted(), "the engine should want its socket")
  engine:ws_opened()
  client:step(0)
  client:on("message", on_message)
  if HANDLERS ~= "message" then
    client:on("message.update", ON_MESSAGE_UPDATE)
    client:on("conversation.update", ON_CONVERSATION_UPDATE)
  end
  return client
end

local function ours_run(client, frames, batch)
  local engine = client:engine()
  local feed, step = engine.feed, client.step
  local n = #frames
  for i = 1, n, batch do
    local last = i + batch - 1
    if last > n then last = n end
    for j = i, last do feed(engine, frames[j]) end
    step(client, 0)
  end
  step(client, 0) -- anything left over (a burst larger than max_events_per_step)
  while engine:pending() > 0 do step(client, 0) end
end

---------------------------------------------------------------------------
-- Reference: what a plain-Lua client does with each frame.

local function lua_new()
  return {
    cache = {}, expected = 0,
    handlers = HANDLERS == "message" and { ["message"] = { on_message } } or { ["message"] = { on_message },
      ["message.update"] = { ON_MESSAGE_UPDATE }, ["conversation.update"] = { ON_CONVERSATION_UPDATE } },
  }
end

local function emit(state, name, obj)
  local list = state.handlers[name]
  if list then
    for k = 1, #list do list[k](obj) end
  end
end

local EVENT = { Message = "message", Conversation = "conversation", Identity = "identity",
  Announcement = "announcement" }

local function lua_frame(state, text)
  local p = cjson.decode(text)
  local body = p.body
  if p.type ~= "change" or type(body) ~= "table" or type(body.object) ~= "table" then
    error("not a change packet: " .. text:sub(1, 80))
  end
  if p.counter ~= state.expected then error("counter gap at " .. tostring(p.counter)) end
  state.expected = p.counter + 1
  local cache = state.cache
  local id, op, kind = body.object.id, body.operation, EVENT[body.object.type]
  if type(id) ~= "string" or not kind then error("bad object in a change packet") end
  if op == "create" then
    if type(body.data) ~= "table" then error("create without an object") end
    cache[id] = body.data
    emit(state, kind .. ".create", body.data)
    if kind == "message" then emit(state, "message", body.data) end
  elseif op == "delete" then
    local obj = cache[id]
    cache[id] = nil
    if obj then emit(state, kind .. ".delete", obj) end
  elseif op == "patch" or op == "update" then
    local obj = cache[id]
    if obj then
      local ok, err = lua_patch.apply(obj, body.data)
      if not ok then error(id .. ": " .. err) end
      emit(state, kind .. ".update", obj)
    end
  else
    error("unknown operation " .. tostring(op))
  end
end

local function lua_run(state, frames, batch)
  local n = #frames
  for i = 1, n, batch do
    local last = i + batch - 1
    if last > n then last = n end
    for j = i, last do lua_frame(state, frames[j]) end
  end
end

---------------------------------------------------------------------------
-- Memory probes (bench/probes.lua).

local probes = require "probes"
local full_gc = probes.full_gc

local frames_path = arg[1] == "--rss" and arg[3] or arg[1] or "build/bench/frames.txt"

if arg[1] == "--rss" then
  local which, batch = arg[2], tonumber(arg[4]) or 200
  local frames = load_frames(frames_path)
  probes.report_rss(which, function()
    local keep
    if which == "ours" then
      keep = ours_new()
      ours_run(keep, frames, batch)
      keep:engine():compact() -- the idle repacking step() does 64 slots at a time
    else
      keep = lua_new()
      lua_run(keep, frames, batch)
    end
    return keep
  end)
  return
end

---------------------------------------------------------------------------
-- Canonical JSON of a cjson-decoded value (sorted keys), for comparing final states.

local canonical = require "canonical"

---------------------------------------------------------------------------
-- Main.

local rounds = tonumber(arg[2]) or 5
local batch = tonumber(arg[3]) or 200
local interp = (type(jit) == "table" and jit.version) or _VERSION
local frames, total_bytes = load_frames(frames_path)
local n_frames = #frames
print(string.format("client_ingest: %s, handlers %s, %d frames (%.1f MB), bursts of %d frames per step(0), %d rounds",
  interp, HANDLERS, n_frames, total_bytes / 1e6, batch, rounds))

local function run(which)
  full_gc()
  tally.calls, tally.len = 0, 0
  local state = which == "ours" and ours_new() or lua_new()
  local t0 = clock()
  if which == "ours" then ours_run(state, frames, batch) else lua_run(state, frames, batch) end
  local t = clock() - t0
  return state, t, tally.calls
end

local times, calls, last = { ours = {}, lua = {} }, {}, {}
run("ours"); run("lua") -- warm-up
for r = 1, rounds do
  local order = (r % 2 == 1) and { "ours", "lua" } or { "lua", "ours" }
  for _, which in ipairs(order) do
    last[which] = nil
    local state, t, c = run(which)
    times[which][r], calls[which] = t, c
    if r == rounds then last[which] = state else if which == "ours" then state:close() end end
  end
end

local median = probes.median
local t_ours, t_lua = median(times.ours), median(times.lua)
-- The target holds only if it holds in every round (rounds alternate, so each
-- pair of times comes from the same stretch of the machine's load).
local round_ratios, min_ratio = {}, math.huge
for r = 1, rounds do
  round_ratios[r] = times.lua[r] / times.ours[r]
  if round_ratios[r] < min_ratio then min_ratio = round_ratios[r] end
end

---- Same final state: every object of the reference against ours (object_json of the live object).
local client, ref = last.ours, last.lua
local st = client:stats()
local n_ref = 0
for _ in pairs(ref.cache) do n_ref = n_ref + 1 end
if st.objects ~= n_ref then error(("MISMATCH: %d objects in ours, %d in the reference"):format(st.objects, n_ref)) end
if st.evicted ~= 0 or st.gaps ~= 0 or st.replays ~= 0 then
  error(("unexpected engine stats: evicted=%d gaps=%d replays=%d"):format(st.evicted, st.gaps, st.replays))
end
local core = require "layer.core"
local checked = 0
for id, obj in pairs(ref.cache) do
  local o = client:engine():object(id)
  if not o then error("MISMATCH: " .. id .. " missing from our cache") end
  local mine = canonical(cjson.decode(core.object_json(o)))
  if mine ~= canonical(obj) then error("MISMATCH for " .. id .. ":\n ours " .. mine .. "\n ref  " .. canonical(obj)) end
  checked = checked + 1
end
local n_msgs, dups = st.messages, st.duplicates_suppressed
client:close()
client, ref, last = nil, nil, {}

---- Retained memory (counters), each path built again after a full GC.
full_gc()
local base_kb = collectgarbage("count")
local c2 = run("ours")
full_gc()
local ours_lua_bytes = (collectgarbage("count") - base_kb) * 1024
local ours_c_busy = c2:stats().bytes
c2:engine():compact()
local ours_c_bytes = c2:stats().bytes
full_gc()
local ours_lua_after = (collectgarbage("count") - base_kb) * 1024
if ours_lua_after > ours_lua_bytes then ours_lua_bytes = ours_lua_after end
c2:close()
c2 = nil
full_gc()
base_kb = collectgarbage("count")
local l2 = run("lua")
full_gc()
local lua_bytes = (collectgarbage("count") - base_kb) * 1024
l2 = nil
full_gc()

---- RSS growth, each path in a fresh process of the same interpreter.
local function rss_child(which) return probes.rss_child(which, frames_path, batch) end
local rss_ours, rss_lua = rss_child("ours"), rss_child("lua")

local ours_total = ours_c_bytes + math.max(0, ours_lua_bytes)
local function per(x) return x / n_msgs end
local pps_ours, pps_lua = n_frames / t_ours, n_frames / t_lua
local speed = t_lua / t_ours
print(string.format("check: same final state for all %d objects (%d messages): OK", checked, n_msgs))
print(string.format("handler calls: ours %d, reference %d (ours drops %d patches that change nothing)",
  calls.ours, calls.lua, dups))
print(string.format("%-40s %12s %12s %8s", "", "layer.client", "cjson+Lua", "ours/ref"))
print(string.format("%-40s %12.0f %12.0f %7.2fx", "packets/s through step() to handlers", pps_ours, pps_lua, speed))
local shown = {}
for r, x in ipairs(round_ratios) do shown[r] = string.format("%.2fx", x) end
print(string.format("%-40s %s (lowest %.2fx)", "  ratio in each round", table.concat(shown, " "), min_ratio))
print(string.format("%-40s %12.0f %12.0f %7.2f", "retained bytes/message (counters)", per(ours_total), per(lua_bytes),
  ours_total / lua_bytes))
print(string.format("%-40s %12.0f %12s", "  C heap, stats().bytes after compact()", per(ours_c_bytes), "-"))
print(string.format("%-40s %12.0f %12s", "  C heap before compact()", per(ours_c_busy), "-"))
print(string.format("%-40s %12.0f %12s", "  Lua heap growth (client, handlers)", per(ours_lua_bytes), "-"))
print(string.format("%-40s %12.0f %12.0f %7.2f", "RSS growth bytes/message", per(rss_ours), per(rss_lua), rss_ours / rss_lua))
print(string.format("RESULT bench=client_ingest handlers=" .. HANDLERS .. " interp=%q frames=%d batch=%d ours_pps=%.0f lua_pps=%.0f speed_ratio=%.2f " ..
  "min_round_ratio=%.2f ours_bpm=%.0f ours_bpm_before_compact=%.0f lua_bpm=%.0f ours_rss_bpm=%.0f lua_rss_bpm=%.0f",
  interp, n_frames, batch, pps_ours, pps_lua, speed, min_ratio, per(ours_total), per(ours_c_busy + math.max(0, ours_lua_bytes)),
  per(lua_bytes), per(rss_ours), per(rss_lua)))
print(string.format("target >= 3x packets/s in every round: %s (median %.2fx, lowest %.2fx)",
  min_ratio >= 3 and "MET" or "MISSED", speed, min_ratio))
print(string.format("target no more bytes/message, heap counters: %s (ours %.0f vs %.0f; %.0f before compact())",
  ours_total <= lua_bytes and "MET" or "MISSED", per(ours_total), per(lua_bytes),
  per(ours_c_busy + math.max(0, ours_lua_bytes))))
print(string.format("target no more bytes/message, RSS growth:    %s (ours %.0f vs %.0f)",
  rss_ours <= rss_lua and "MET" or "MISSED", per(rss_ours), per(rss_lua)))
for _, f in ipairs(state_files) do
  for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(f .. suffix) end
end
