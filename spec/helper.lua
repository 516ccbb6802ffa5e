-- spec/helper.lua: shared test utilities (paths to the specs' data, deep comparison
-- that keeps JSON arrays and objects apart, file reading).
local layer = require "layer"

local helper = {}

-- The specs' data files (spec/data, provenance in spec/data/README.md), found from
-- this file's own path so that busted may run from any directory.
local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".")
function helper.data_path(rel)
  return spec_dir .. "/data/" .. rel
end

function helper.read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local s = f:read("*a")
  f:close()
  return s
end

local function is_array(t) return getmetatable(t) == layer.array_mt end

-- Deep equality on values decoded by layer.json_decode: object key order is
-- ignored, arrays compare in order, [] differs from {}, 1 equals 1.0.
function helper.json_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if is_array(a) ~= is_array(b) then return false end
  for k, v in pairs(a) do
    if not helper.json_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

function helper.show(v)
  if type(v) == "table" then return layer.json_encode(v) end
  return tostring(v)
end

return helper
