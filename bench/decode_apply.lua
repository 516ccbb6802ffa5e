-- decode_apply.lua - change packets per second and retained memory: layer.cache():apply(frame)
-- (C decode + C apply) against cjson.decode + bench/lua_patch.lua into a Lua table cache.
--
--   LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="build/5.4/?.so;;" \
--     lua5.4 bench/decode_apply.lua build/bench/frames.txt [rounds]
--   (same with LUA_CPATH="build/jit/?.so;;" luajit)
--
-- Both paths run in this one process, alternating, on the same frames; time is os.clock()
-- (process CPU time, less disturbed by other processes than wall time). Each pass starts
-- with an empty cache and a full GC, applies the Message/Conversation creates, then the
-- patches (timed separately; the final state equals applying them interleaved, since every
-- patch targets an object created earlier). RSS is measured in a fresh child process per
-- path (`--rss ours|lua`), because memory freed by one path would be reused by the other.

local layer = require "layer"
local cjson = require "cjson"
local lua_patch = require "lua_patch"

local clock = os.clock
local null = cjson.null

local function load_frames(path)
  local creates, patches = {}, {}
  local bytes = 0
  for line in assert(io.open(path)):lines() do
    if line ~= "" then
      bytes = bytes + #line
      -- Phase split only: both paths still get the whole frame text.
      if line:find('"operation":"create"', 1, true) then creates[#creates + 1] = line
      else patches[#patches + 1] = line end
    end
  end
  return creates, patches, bytes
end

---------------------------------------------------------------------------
-- The two paths. Each returns the cache and the number of frames applied; any failure aborts.

local function ours_apply(cache, frames)
  local apply = cache.apply
  for i = 1, #frames do
    local outcome, err = apply(cache, frames[i])
    if not outcome then error("cache:apply failed on frame " .. i .. ": " .. tostring(err)) end
  end
end

-- What a plain-Lua client does with a frame: decode, check the envelope, upsert / delete /
-- patch by id (PROTOCOL.md §5; an unknown object is ignored).
local function lua_apply(cache, frames)
  local decode, patch = cjson.decode, lua_patch.apply
  for i = 1, #frames do
    local p = decode(frames[i])
    local body = p.body
    if p.type ~= "change" or type(body) ~= "table" or type(body.object) ~= "table" then
      error("frame " .. i .. ": not a change packet")
    end
    local id, op = body.object.id, body.operation
    if type(id) ~= "string" then error("frame " .. i .. ": no object id") end
    if op == "create" then
      if type(body.data) ~= "table" then error("frame " .. i .. ": create without an object") end
      cache[id] = body.data
    elseif op == "delete" then
      cache[id] = nil
    elseif op == "patch" or op == "update" then
      local obj = cache[id]
      if obj then
        local ok, err = patch(obj, body.data)
        if not ok then error("frame " .. i .. ": " .. err) end
      end
    else
      error("frame " .. i .. ": unknown operation " .. tostring(op))
    end
  end
end

---------------------------------------------------------------------------
-- Memory probes.

local probes = require "probes"
local full_gc = probes.full_gc

---------------------------------------------------------------------------
-- Child mode: build one cache from a fresh process, report its RSS growth.

if arg[1] == "--rss" then
  local which, path = arg[2], arg[3]
  local creates, patches = load_frames(path)
  probes.report_rss(which, function()
    local cache
    if which == "ours" then
      cache = layer.cache()
      ours_apply(cache, creates)
      ours_apply(cache, patches)
      cache:compact() -- the idle repacking the client does, as full_gc() is Lua's
    else
      cache = {}
      lua_apply(cache, creates)
      lua_apply(cache, patches)
    end
    return cache
  end)
  return
end

---------------------------------------------------------------------------
-- Canonical JSON of a cjson-decoded value (sorted keys), for comparing final states.

local canonical = require "canonical"

---------------------------------------------------------------------------
-- Main mode.

local frames_path = arg[1] or "build/bench/frames.txt"
local rounds = tonumber(arg[2]) or 5
local interp = (type(jit) == "table" and jit.version) or _VERSION
local creates, patches, total_bytes = load_frames(frames_path)
local n_frames = #creates + #patches
print(string.format("decode_apply: %s, %d frames (%d creates, %d patches, %.1f MB), %d rounds",
  interp, n_frames, #creates, #patches, total_bytes / 1e6, rounds))

local function run(which)
  local cache = which == "ours" and layer.cache() or {}
  local apply = which == "ours" and ours_apply or lua_apply
  full_gc()
  local t0 = clock()
  apply(cache, creates)
  local t1 = clock()
  apply(cache, patches)
  local t2 = clock()
  return cache, t1 - t0, t2 - t1
end

local times = {ours = {c = {}, p = {}, all = {}}, lua = {c = {}, p = {}, all = {}}}
local last = {}
run("ours"); run("lua") -- warm-up (LuaJIT traces, allocator), not counted
for r = 1, rounds do
  -- Alternate which path goes first, so drift on a shared machine hits both.
  local order = (r % 2 == 1) and {"ours", "lua"} or {"lua", "ours"}
  for _, which in ipairs(order) do
    last[which] = nil
    local cache, tc, tp = run(which)
    local t = times[which]
    t.c[r], t.p[r], t.all[r] = tc, tp, tc + tp
    if r == rounds then last[which] = cache end
  end
end

local median = probes.median

local function rate(n, t) return n / t end
local ours, lua = times.ours, times.lua
local ours_all, lua_all = median(ours.all), median(lua.all)
local ours_c, lua_c, ours_p, lua_p = median(ours.c), median(lua.c), median(ours.p), median(lua.p)

---- Same final state: every object, ours (via JSON text) vs the Lua table.
local cache_c, cache_l = last.ours, last.lua
local n_lua = 0
for _ in pairs(cache_l) do n_lua = n_lua + 1 end
local st = cache_c:stats()
if st.objects ~= n_lua then
  error(string.format("MISMATCH: %d objects in our cache, %d in the Lua cache", st.objects, n_lua))
end
local checked = 0
for id, obj in pairs(cache_l) do
  local text = cache_c:get_json(id)
  if not text then error("MISMATCH: " .. id .. " missing from our cache") end
  if canonical(cjson.decode(text)) ~= canonical(obj) then
    error("MISMATCH for " .. id .. ":\n ours " .. canonical(cjson.decode(text)) .. "\n lua  " .. canonical(obj))
  end
  checked = checked + 1
end

---- Retained memory (counters): ours = C heap from stats() + Lua heap growth; Lua = Lua heap growth.
local n_msgs = st.messages
cache_c, cache_l, last = nil, nil, {}
full_gc()
local base_kb = collectgarbage("count")
local c2 = run("ours")
full_gc()
local ours_lua_bytes = (collectgarbage("count") - base_kb) * 1024
-- Patched objects keep up to their own size again in garbage until they are
-- repacked; the client repacks in idle steps (cache:compact does one full pass).
local ours_c_busy = c2:stats().bytes
c2:compact()
local ours_c_bytes = c2:stats().bytes
c2 = nil
full_gc()
base_kb = collectgarbage("count")
local l2 = run("lua")
full_gc()
local lua_bytes = (collectgarbage("count") - base_kb) * 1024
l2 = nil
full_gc()

---- RSS growth, each path in a fresh process of the same interpreter.
local function rss_child(which) return probes.rss_child(which, frames_path) end
local rss_ours, rss_lua = rss_child("ours"), rss_child("lua")

-- A negative Lua-side growth is GC noise (other garbage freed), not a saving: count it as 0.
local ours_total = ours_c_bytes + math.max(0, ours_lua_bytes)
local function per(n) return n / n_msgs end
print(string.format("check: same final state for all %d objects (%d messages): OK", checked, n_msgs))
print(string.format("%-34s %12s %12s %8s", "", "ours (C)", "cjson+Lua", "adv."))
print(string.format("%-34s %12.0f %12.0f %7.2fx", "packets/s, all frames", rate(n_frames, ours_all),
  rate(n_frames, lua_all), lua_all / ours_all))
print(string.format("%-34s %12.0f %12.0f %7.2fx", "packets/s, creates (~1.7 KB)", rate(#creates, ours_c),
  rate(#creates, lua_c), lua_c / ours_c))
print(string.format("%-34s %12.0f %12.0f %7.2fx", "packets/s, patches (~0.4 KB)", rate(#patches, ours_p),
  rate(#patches, lua_p), lua_p / ours_p))
print(string.format("%-34s %12.0f %12.0f %7.2fx", "MB/s of frame text, all frames", total_bytes / ours_all / 1e6,
  total_bytes / lua_all / 1e6, lua_all / ours_all))
print(string.format("%-34s %12.0f %12.0f %7.2fx", "retained bytes/message (counters)", per(ours_total),
  per(lua_bytes), lua_bytes / ours_total))
print(string.format("%-34s %12.0f %12s", "  C heap, cache:stats().bytes", per(ours_c_bytes), "-"))
print(string.format("%-34s %12.0f %12s", "  C heap before idle compaction", per(ours_c_busy), "-"))
print(string.format("%-34s %12.0f %12s", "  Lua heap growth (userdata etc.)", per(ours_lua_bytes), "-"))
print(string.format("%-34s %12.0f %12.0f %7.2fx", "RSS growth bytes/message", per(rss_ours), per(rss_lua),
  rss_lua / rss_ours))
print(string.format("RESULT interp=%q frames=%d ours_pps=%.0f lua_pps=%.0f speed_ratio=%.2f ours_bpm=%.0f lua_bpm=%.0f " ..
  "mem_ratio=%.2f ours_rss_bpm=%.0f lua_rss_bpm=%.0f", interp, n_frames, rate(n_frames, ours_all),
  rate(n_frames, lua_all), lua_all / ours_all, per(ours_total), per(lua_bytes), lua_bytes / ours_total,
  per(rss_ours), per(rss_lua)))
print("(adv. = our advantage: rate ours/cjson+Lua, memory cjson+Lua/ours; > 1 favours ours)")
local speed = lua_all / ours_all
print(string.format("target >= 2x packets/s: %s (%.2fx)", speed >= 2 and "MET" or "MISSED", speed))
print(string.format("target no more memory, heap counters: %s (ours %.0f vs %.0f B/message; %.0f before idle compaction)",
  ours_total <= lua_bytes and "MET" or "MISSED", per(ours_total), per(lua_bytes), per(ours_c_busy + math.max(0, ours_lua_bytes))))
print(string.format("target no more memory, RSS growth:    %s (ours %.0f vs %.0f B/message)",
  rss_ours <= rss_lua and "MET" or "MISSED", per(rss_ours), per(rss_lua)))
