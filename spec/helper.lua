-- spec/helper.lua: shared test utilities (paths to shared/, deep comparison that
-- keeps JSON arrays and objects apart, file reading).
local layer = require "layer"

local helper = {}

-- Where the project's shared/ folder is: beside the clone, or $LAYER_SHARED.
function helper.shared_path(rel)
  local base = os.getenv("LAYER_SHARED") or "../shared"
  return base .. "/" .. rel
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

-- The first complete JSON object in a text (Layer's doc pages embed examples
-- in prose); strings are skipped so braces inside them do not count.
function helper.first_json_object(text)
  local start = text:find("{", 1, true)
  assert(start, "no JSON object in text")
  local depth, i, in_string = 0, start, false
  while i <= #text do
    local c = text:sub(i, i)
    if in_string then
      if c == "\\" then i = i + 1 elseif c == '"' then in_string = false end
    elseif c == '"' then in_string = true
    elseif c == "{" then depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return text:sub(start, i) end
    end
    i = i + 1
  end
  error("unterminated JSON object")
end

function helper.show(v)
  if type(v) == "table" then return layer.json_encode(v) end
  return tostring(v)
end

return helper
