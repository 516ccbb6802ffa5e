-- canonical.lua: canonical JSON (sorted keys) of a value decoded by lua-cjson,
-- so that the benchmarks can check that two paths ended in the same state.
local cjson = require "cjson"
local null = cjson.null

local function canon(v, out)
  local t = type(v)
  if v == null then out[#out + 1] = "null"
  elseif t == "string" then out[#out + 1] = cjson.encode(v)
  elseif t == "number" then
    out[#out + 1] = (v == math.floor(v) and v > -2^53 and v < 2^53) and string.format("%d", v)
      or string.format("%.17g", v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "table" then
    local n, keys = #v, {}
    for k in pairs(v) do keys[#keys + 1] = k end
    if n > 0 and #keys == n then -- array ({} and [] both decode to an empty table: compared as {})
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        canon(v[i], out)
      end
      out[#out + 1] = "]"
    else
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(k) .. ":"
        canon(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("unexpected " .. t .. " in a decoded value")
  end
  return out
end
return function(v) return table.concat(canon(v, {})) end
