-- probes.lua: how the Lua benchmarks measure memory: resident set size
-- from /proc/self/statm, and a full collection before each reading.
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

function probes.full_gc()
  collectgarbage()
  collectgarbage()
end

return probes
