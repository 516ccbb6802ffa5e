-- lua_patch.lua - a plain-Lua Layer-Patch applier: the competitor in bench/decode_apply.lua.
--
-- What a Lua client without our C module would write: set/delete/add/remove on cjson-decoded
-- tables, in place, with layer-patch 1.2.1's path rules (`\.` is a literal dot, `\X` is X) and
-- its id handling (add/remove match array elements by .id). Like layer-patch, and unlike our
-- engine, it is not atomic and tracks no changes: that makes it cheaper, which is fine for a
-- competitor.

local null = require("cjson").null

local M = {}

local MARK = "\1" -- stands for an escaped dot while splitting (layer-patch uses U+0091)

-- Property path -> list of segments.
local function split(property)
  local s = property
  if s:find("\\", 1, true) then
    s = s:gsub("\\%.", MARK):gsub("\\(.)", "%1")
  end
  local parts, n, from = {}, 0, 1
  while true do
    local dot = s:find(".", from, true)
    n = n + 1
    if not dot then
      parts[n] = s:sub(from)
      break
    end
    parts[n] = s:sub(from, dot - 1)
    from = dot + 1
  end
  if s ~= property then
    for i = 1, n do parts[i] = parts[i]:gsub(MARK, ".") end
  end
  return parts, n
end
M.split = split

local function value_of(op, objects)
  if op.id ~= nil and op.id ~= null then
    local found = objects and objects[op.id]
    if found ~= nil then return found end
    if op.value ~= nil and op.value ~= null then return op.value end
    return null
  end
  return op.value
end

-- Apply one operation to obj; returns true, or nil and a message.
local function apply_op(obj, op, objects)
  local property = op.property
  if type(property) ~= "string" then return nil, "operation without a property" end
  local parts, n = split(property)
  local cur = obj
  for i = 1, n - 1 do
    local key = parts[i]
    local child = cur[key]
    if child == nil then
      child = {}
      cur[key] = child
    elseif type(child) ~= "table" then
      return nil, "Can not access property '" .. property .. "'"
    end
    cur = child
  end
  local last, kind = parts[n], op.operation
  if kind == "set" then
    cur[last] = value_of(op, objects)
  elseif kind == "delete" then
    cur[last] = nil
  elseif kind == "add" or kind == "remove" then
    local arr = cur[last]
    if arr == nil then
      arr = {}
      cur[last] = arr
    elseif type(arr) ~= "table" then
      return nil, "The " .. kind .. " operation requires an array"
    end
    local value = value_of(op, objects)
    local id = op.id
    if id ~= nil and id ~= null then
      for i = 1, #arr do
        local item = arr[i]
        if type(item) == "table" and item.id == id then
          if kind == "remove" then table.remove(arr, i) end
          return true
        end
      end
      if kind == "add" then arr[#arr + 1] = value end
    else
      if type(value) == "table" then return nil, "The " .. kind .. " operation will not take objects or arrays" end
      for i = 1, #arr do
        if arr[i] == value then
          if kind == "remove" then table.remove(arr, i) end
          return true
        end
      end
      if kind == "add" then arr[#arr + 1] = value end
    end
  else
    return nil, "unknown operation '" .. tostring(kind) .. "'"
  end
  return true
end

-- Apply a list of operations to obj in place. Returns true, or nil and a message.
function M.apply(obj, ops, objects)
  for i = 1, #ops do
    local ok, err = apply_op(obj, ops[i], objects)
    if not ok then return nil, "operation " .. i .. ": " .. err end
  end
  return true
end

return M
