-- Layer-Patch conformance: every oracle vector produced by the published
-- layer-patch 1.2.1 library (spec/data/layer-patch/vectors.json; provenance in
-- spec/data/README.md).
local layer = require "layer"
local helper = require "helper"

local vectors = assert(layer.json_decode(helper.read_file(
  helper.data_path("layer-patch/vectors.json"))))

-- The library reports paths after its escape pass (P1+P2), with an escaped
-- dot as U+0091; we report the raw property. Map ours to theirs.
local function library_full_path(raw)
  local marked = raw:gsub("\\%.", "\255")
  local out, i, n = {}, 1, #marked
  while i <= n do
    local c = marked:sub(i, i)
    if c == "\\" and i < n then
      local rest = marked:sub(i + 1)
      if rest:match("^[\n\r]") or rest:match("^\226\128[\168\169]") then
        out[#out + 1] = c
        i = i + 1
      else
        local len = 1
        local b = rest:byte(1)
        if b ~= 255 and b >= 0xF0 then len = 4 elseif b ~= 255 and b >= 0xE0 then len = 3
        elseif b ~= 255 and b >= 0xC0 then len = 2 end
        out[#out + 1] = rest:sub(1, len)
        i = i + 1 + len
      end
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return (table.concat(out):gsub("\255", "\194\145"))
end

-- The library's change snapshots drop keys starting with "_" at every depth.
local function without_underscore_keys(v)
  if type(v) ~= "table" then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    if not (type(k) == "string" and k:sub(1, 1) == "_") then out[k] = without_underscore_keys(x) end
  end
  return out
end

local function expected_handlers(options)
  local t = "T"
  if options and options.type ~= nil then t = options.type end
  if not t or t == layer.null or t == "" then return nil end
  local callbacks = (options and options.changeCallbacks) or { [t] = { "all" } }
  local handlers = callbacks[t]
  if not handlers then return nil end
  local set = {}
  for _, h in ipairs(handlers) do set[h] = true end
  return set
end

local function check_changes(v, changes)
  local handlers = expected_handlers(v.options)
  local ours = {}
  if handlers then
    for _, c in ipairs(changes) do
      if handlers.all or handlers[c.property] then ours[#ours + 1] = c end
    end
  end
  assert.are.equal(#v.changes, #ours, "number of changes")
  for _, want in ipairs(v.changes) do
    local got
    for _, c in ipairs(ours) do if c.property == want.key then got = c end end
    assert.is_not_nil(got, "change for " .. tostring(want.key))
    local paths = {}
    for i, p in ipairs(got.paths) do paths[i] = library_full_path(p) end
    assert.are.same(want.paths, paths)
    local old = got.old and without_underscore_keys(layer.json_decode(got.old))
    local new = got.new and layer.json_decode(got.new)
    assert.is_true(helper.json_equal(want.oldValue, old), "old value " .. helper.show(old))
    assert.is_true(helper.json_equal(want.newValue, new), "new value " .. helper.show(new))
  end
end

describe("layer-patch oracle vectors", function()
  it("has the sample", function()
    assert.is_true(#vectors >= 348)
  end)

  for _, v in ipairs(vectors) do
    it(v.name, function()
      local opts = {}
      local o = v.options or {}
      if v.cache and o.getObjectCallback ~= false then opts.objects = layer.json_encode(v.cache) end
      opts.register = o.createObjectCallback == true
      opts.return_ids = o.returnIds == true
      local object_text = layer.json_encode(v.object)
      local result, changes = layer.patch(object_text, layer.json_encode(v.operations), opts)
      if v.error then
        assert.is_nil(result, "expected failure, got " .. tostring(result))
        assert.are.equal("string", type(changes))
        if v.error_message and not v.error_message:match("^Cannot read")
           and not v.error_message:match("is not a function") then
          local lib = v.error_message:gsub("\194\145", "\\.")
          assert.is_truthy(changes:find(lib, 1, true) or changes:find(v.error_message, 1, true),
            "message '" .. changes .. "' lacks '" .. v.error_message .. "'")
        end
      else
        assert.is_string(result, changes)
        local got = layer.json_decode(result)
        assert.is_true(helper.json_equal(v.expect, got),
          "got " .. result .. " want " .. layer.json_encode(v.expect))
        check_changes(v, changes)
      end
      -- atomic: the input text is never modified, and a Lua-table input gives the same result
      local again = layer.patch(layer.json_decode(object_text), v.operations, {
        objects = v.cache and o.getObjectCallback ~= false and v.cache or nil,
        register = opts.register, return_ids = opts.return_ids })
      if v.error then
        assert.is_nil(again)
      else
        assert.is_true(helper.json_equal(v.expect, again), "table mode: " .. helper.show(again))
      end
    end)
  end
end)
