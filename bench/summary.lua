-- summary.lua - the summary table of docs/performance.md, from the RESULT lines of one
-- `make bench` log, so every row's figure, reference, ratio and verdict come from the same run.
--
--   make bench-summary          (runs `make bench`, keeps its log in build/bench/bench.log)
--   lua5.4 bench/summary.lua build/bench/bench.log
--
-- A row whose benchmark did not run says so instead of guessing.

local path = assert(arg[1], "usage: lua5.4 bench/summary.lua <bench log>")
local results = {}
for line in assert(io.open(path)):lines() do
  local rest = line:match("^RESULT (.*)$")
  if rest then
    local r = { _kind = rest:match("^(%a[%w_]*) ") } -- a leading bare word names the benchmark
    local pos = 1
    while true do -- key=value, or key="value with spaces"
      local k, after = rest:match("^%s*([%w_]+)=()", pos)
      if not k then -- a bare word (the benchmark's name): skip it
        local skip = rest:match("^%s*%S+()", pos)
        if not skip then break end
        pos = skip
        goto continue
      end
      local v, nxt
      if rest:sub(after, after) == '"' then
        v, nxt = rest:match('^"([^"]*)"()', after)
      else
        v, nxt = rest:match("^(%S+)()", after)
      end
      if not v then break end
      r[k] = tonumber(v) or v
      pos = nxt
      ::continue::
    end
    results[#results + 1] = r
  end
end

local function find(pred)
  for i = #results, 1, -1 do
    if pred(results[i]) then return results[i] end
  end
end
local function is_jit(r) return tostring(r.interp):find("LuaJIT", 1, true) ~= nil end
local function interp_name(r) return is_jit(r) and "LuaJIT" or "Lua 5.4" end

local rows = {}
local function row(name, ours, against, ratio, target, verdict)
  rows[#rows + 1] = ("| %s | %s | %s | %s | %s | %s |"):format(name, ours, against, ratio, target, verdict)
end
local function missing(name, target) row(name, "not run", "", "", target, "**not measured**") end
local function fmt(x, f) return x and (f or "%.0f"):format(x) or "?" end
local function met(ok) return ok and "met" or "**missed**" end

-- Patch engine against layer-patch on Node.
local pe = find(function(r) return r._kind == "patch_engine" end)
if pe then
  row("Patch engine, ops/s (C `lp_apply` with cache.c's repack rule)", "", "layer-patch 1.2.1 on Node",
    ("**%.2f×**"):format(pe.ratio_cache), "≥ 5×", met(pe.ratio_cache >= 5))
else
  missing("Patch engine", "≥ 5×")
end

-- Decode and apply.
for _, jit in ipairs({ false, true }) do
  local r = find(function(x) return x.mem_ratio and x.ours_pps and not x.bench and is_jit(x) == jit end)
  local name = "Decode and apply, packets/s, " .. (jit and "LuaJIT" or "Lua 5.4")
  if r then
    row(name, fmt(r.ours_pps), "cjson + Lua patch: " .. fmt(r.lua_pps), ("**%.2f×**"):format(r.speed_ratio), "≥ 2×",
      met(r.speed_ratio >= 2))
    row(name:gsub("packets/s", "RSS growth/message"), fmt(r.ours_rss_bpm), fmt(r.lua_rss_bpm),
      ("%.2f"):format(r.ours_rss_bpm / r.lua_rss_bpm), "≤ 1", met(r.ours_rss_bpm <= r.lua_rss_bpm))
  else
    missing(name, "≥ 2×")
  end
end

-- Client ingest: three scenarios, two interpreters.
local SCENARIO = {
  message = "one `message` handler reading two fields",
  all = "handlers on every packet, `change_lists = false`",
  changes = "every packet, update handlers taking the change list",
}
for _, h in ipairs({ "message", "all", "changes" }) do
  for _, jit in ipairs({ false, true }) do
    local r = find(function(x) return x.bench == "client_ingest" and x.handlers == h and is_jit(x) == jit end)
    local name = ("Client ingest, %s, %s"):format(SCENARIO[h], jit and "LuaJIT" or "Lua 5.4")
    if r then
      local lowest = r.min_round_ratio or r.speed_ratio
      row(name, fmt(r.ours_pps), "plain-Lua client: " .. fmt(r.lua_pps),
        ("**%.2f×** (lowest round %.2f×)"):format(r.speed_ratio, lowest), "≥ 3× every round", met(lowest >= 3))
      row(("Client RSS growth/message, %s, %s"):format(h, interp_name(r)), fmt(r.ours_rss_bpm), fmt(r.lua_rss_bpm),
        ("%.2f"):format(r.ours_rss_bpm / r.lua_rss_bpm), "≤ 1", met(r.ours_rss_bpm <= r.lua_rss_bpm))
    else
      missing(name, "≥ 3× every round")
    end
  end
end

-- The engine alone against simdjson.
local el = find(function(r) return r._kind == "engine_limit" end)
if el then
  row("Engine alone (decode, counters, apply, cache), MB/s on the frame stream", fmt(el.engine_mb_s),
    "simdjson DOM parse: " .. fmt(el.simdjson_dom_mb_s), ("%.2f×"):format(el.ratio_engine_dom), "aim 1,000 MB/s",
    el.engine_mb_s >= 1000 and "met" or "**short of the aim**")
else
  missing("Engine alone against simdjson", "aim 1,000 MB/s")
end

-- End to end.
local e2e = find(function(r) return r.bench == "client_e2e" end)
if e2e then
  row("End to end echo round trip, p99 (p50)", ("%.2f ms (%.2f)"):format(e2e.ours_p99, e2e.ours_p50),
    ("layer-websdk under Node: %.2f ms (%.2f)"):format(e2e.websdk_p99, e2e.websdk_p50),
    ("%.1f× lower"):format(e2e.p99_ratio), "lower", met(e2e.p99_ratio > 1))
else
  missing("End to end echo round trip", "lower")
end

-- Many clients in one process.
local sc = find(function(r) return r.bench == "client_scale_modes" end)
local ing = find(function(x) return x.bench == "client_ingest" and x.handlers == "all" and not is_jit(x) end)
if sc then
  row(("%d clients, RSS per idle client, shared loop"):format(sc.clients), fmt(sc.rss_shared),
    "a loop each: " .. fmt(sc.rss_private), ("%.1f× less"):format(sc.rss_ratio), "≤ 16,384", met(sc.rss_shared <= 16384))
  local single = ing and 1e6 / ing.ours_pps
  row(("%d clients, client CPU per delivered packet, shared loop, µs"):format(sc.clients), fmt(sc.cpu_us_shared, "%.1f"),
    ("a loop each: %.1f; one client's ingest: %s"):format(sc.cpu_us_private, single and ("%.1f"):format(single) or "?"),
    single and ("%.1f× one client's"):format(sc.cpu_us_shared / single) or "", "≤ 2× one client's",
    single and met(sc.cpu_us_shared <= 2 * single) or "**not measured**")
else
  missing("Many clients in one process", "≤ 16 KB, ≤ 2×")
end

print("| benchmark | ours | against | ratio | target | verdict |")
print("|---|---:|---|---|---|---|")
for _, line in ipairs(rows) do print(line) end
