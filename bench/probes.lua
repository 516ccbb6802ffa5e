-- probes.lua: how the Lua benchmarks measure: memory as resident set size
-- from /proc/self/statm (here and in a fresh child process), with a full
-- collection before each reading; times as the median of rounds.
local probes = {}

local PAGE = 4096
do
  local h = io.popen("getconf PAGESIZE 2>/dev/null")
  if h then
    PAGE = tonumber(h:read("*l") or "") or PAGE
    h:close()
  end
end

function probes.rss_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*l"):match("^(%d+)%s+(%d+)")
  f:close()
  return tonumber(resident) * PAGE
end

function probes.median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)]
end

function probes.full_gc()
  collectgarbage()
  collectgarbage()
end

-- RSS growth measured in a fresh process of this interpreter running this
-- script with "--rss <args>"; the child prints "RSS <path> <bytes>". A fresh
-- process per path keeps one path from reusing memory the other freed.
function probes.rss_child(...)
  local exe = arg[-1] or "lua"
  local cmd = string.format("%s %s --rss %s", exe, arg[0], table.concat({ ... }, " "))
  local h = assert(io.popen(cmd))
  local out = h:read("*a")
  h:close()
  local n = out:match("RSS %a+ (%-?%d+)")
  if not n then error("RSS child failed: " .. cmd .. "\n" .. out) end
  return tonumber(n)
end

-- The child's side: RSS growth across build(), whose result stays alive
-- until after the reading, printed as rss_child expects.
function probes.report_rss(which, build)
  probes.full_gc()
  local before = probes.rss_bytes()
  local keep = build()
  probes.full_gc()
  print(string.format("RSS %s %d", which, probes.rss_bytes() - before))
  return keep
end

return probes
