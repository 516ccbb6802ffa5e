-- layer.patch beyond the oracle sample: atomicity, the change list, path
-- escapes, id resolution, JSON-text mode, limits and bad operations.
local layer = require "layer"
local helper = require "helper"
local A = layer.array

local function op(operation, property, value, extra)
  local o = { operation = operation, property = property, value = value }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("patch atomicity", function()
  it("leaves a Lua table untouched and reports the failing operation", function()
    local conv = { metadata = { title = "t" }, participants = A { "a", "b" } }
    local before = layer.json_encode(conv)
    local result, err, index = layer.patch(conv, {
      op("set", "metadata.title", "new"),
      op("add", "participants", "c"),
      op("add", "metadata.title", "x"), -- a string is not a set
    })
    assert.is_nil(result)
    assert.are.equal(3, index)
    assert.is_truthy(err:find("operation 3 (add 'metadata.title')", 1, true), err)
    assert.is_truthy(err:find("requires an array", 1, true), err)
    assert.are.equal(before, layer.json_encode(conv))
  end)

  it("returns a new object and never modifies the input", function()
    local conv = { metadata = { a = { b = 1 } } }
    local result = layer.patch(conv, { op("set", "metadata.a.c", 2) })
    assert.are.equal(2, result.metadata.a.c)
    assert.is_nil(conv.metadata.a.c)
  end)

  it("registers nothing when the patch fails", function()
    local objects = {}
    local result = layer.patch({ s = A {} }, {
      op("add", "s", { id = "x", v = 1 }, { id = "x" }),
      op("add", "nope.deeper", A { 1 }),
    }, { objects = objects, register = true })
    assert.is_nil(result)
    assert.is_nil(objects.x)
  end)
end)

describe("patch change list", function()
  it("lists each top-level property once with its raw paths, old and new values", function()
    local _, changes = layer.patch({ metadata = { a = 1 }, n = 5 }, {
      op("set", "metadata.b", 2),
      op("set", "metadata.b", 3),
      op("delete", "metadata.a"),
      op("set", "x\\.y", true),
      op("delete", "n"),
    })
    assert.are.equal(3, #changes)
    assert.are.equal("metadata", changes[1].property)
    assert.are.same({ "metadata.b", "metadata.a" }, { changes[1].paths[1], changes[1].paths[2] })
    assert.are.equal(1, changes[1].old.a)
    assert.are.same({ b = 3 }, changes[1].new)
    assert.are.equal("x.y", changes[2].property)
    assert.is_nil(changes[2].old)
    assert.is_true(changes[2].new)
    assert.are.equal("n", changes[3].property)
    assert.are.equal(5, changes[3].old)
    assert.is_nil(changes[3].new)
  end)

  it("can be switched off", function()
    local result, changes = layer.patch({}, { op("set", "a", 1) }, { changes = false })
    assert.are.equal(1, result.a)
    assert.are.equal(0, #changes)
  end)

  it("gives JSON text values in JSON mode, keeping [] and {} apart", function()
    local result, changes = layer.patch('{"a":[],"b":{}}', '[{"operation":"set","property":"c","value":[]},{"operation":"delete","property":"a"}]')
    assert.is_truthy(result:find('"b":{}', 1, true))
    assert.is_truthy(result:find('"c":[]', 1, true))
    assert.are.equal("[]", changes[2].old)
    assert.is_nil(changes[2].new)
  end)
end)

describe("patch paths", function()
  -- layer-patch escaping (docs/layer-patch.md P1-P4)
  local cases = {
    { "a\\.b", { "a.b" } },
    { "a\\\\.b", { "a.b" } },
    { "a\\\\\\.b", { "a\\.b" } },
    { "a\\\\b", { "a\\b" } },
    { "a\\", { "a\\" } },
    { "a\\xb", { "axb" } },
    { "a.\\.b", { "a", ".b" } },
    { "a\\..b", { "a.", "b" } },
    { "a..b", { "a", "", "b" } },
    { "recipient_status.fred\\.flinstone", { "recipient_status", "fred.flinstone" } },
    { "m.\\t", { "m", "t" } },
    { "m.\226\128\168", { "m", "\226\128\168" } },
    { "m.\\\226\130\172", { "m", "\226\130\172" } }, -- backslash before a 3-byte character
  }
  for _, c in ipairs(cases) do
    it("splits " .. c[1], function()
      local result = assert(layer.patch({}, { op("set", c[1], 1) }))
      local node = result
      for i = 1, #c[2] - 1 do node = node[c[2][i]] end
      assert.are.equal(1, node[c[2][#c[2]]], layer.json_encode(result))
    end)
  end

  it("keeps a backslash before a line terminator", function()
    local result = assert(layer.patch({}, { op("set", "a\\\nb", 1) }))
    assert.are.equal(1, result["a\\\nb"])
  end)

  it("refuses a path through a scalar, null or array", function()
    for _, v in ipairs({ "s", 5, true, layer.null, A { 1 } }) do
      local result, err = layer.patch({ m = v }, { op("set", "m.x", 1) })
      assert.is_nil(result)
      assert.is_truthy(err:find("Can not access property 'm.x'", 1, true), err)
    end
  end)

  it("creates missing intermediate objects, even for delete and remove", function()
    local result = layer.patch({ metadata = {} }, { op("delete", "metadata.a.b.c"), op("remove", "x.y", "v") })
    assert.is_true(helper.json_equal(layer.json_decode('{"metadata":{"a":{"b":{}}},"x":{"y":[]}}'), result))
  end)

  it("bounds the number of segments and the nesting depth", function()
    local result, err = layer.patch({}, { op("set", string.rep("a.", 70) .. "a", 1) })
    assert.is_nil(result)
    assert.is_truthy(err:find("more than 64 segments", 1, true), err)
    -- results stay within the parser's 64 levels, so they can always be read back
    local function nested(levels) return string.rep('{"d":', levels) .. "1" .. string.rep("}", levels) end
    local text = assert(layer.patch("{}", '[{"operation":"set","property":"a.b.c.e","value":' .. nested(60) .. "}]"))
    local node = assert(layer.json_decode(text)).a.b.c.e
    for _ = 1, 60 do node = node.d end
    assert.are.equal(1, node)
    result, err = layer.patch("{}", '[{"operation":"set","property":"a.b.c.e.f","value":' .. nested(60) .. "}]")
    assert.is_nil(result)
    assert.is_truthy(err:find("nest deeper than 64", 1, true), err)
  end)
end)

describe("patch sets", function()
  it("adds and removes with strict equality", function()
    local result = layer.patch({ s = A { 1, "1", false } }, {
      op("add", "s", 1.0), op("add", "s", 0), op("add", "s", "0"), op("remove", "s", "1"), op("remove", "s", false),
    })
    assert.are.same({ 1, 0, "0" }, { result.s[1], result.s[2], result.s[3] })
    assert.are.equal(3, #result.s)
  end)

  it("refuses objects and arrays as set values", function()
    assert.is_nil((layer.patch({ s = A {} }, { op("add", "s", { a = 1 }) })))
    assert.is_nil((layer.patch({ s = A {} }, { op("add", "s", A { 1 }) })))
    assert.is_nil((layer.patch({ s = A {} }, { op("remove", "s", { a = 1 }) })))
    assert.is_nil((layer.patch({ s = A {} }, { op("remove", "s", A {}) })))
  end)

  it("treats a remove without value as a no-op and ignores index", function()
    local result = layer.patch({ s = A { "a", "b" } }, { op("remove", "s", nil, { index = 0 }), op("add", "s", "c", { index = 0 }) })
    assert.are.same({ "a", "b", "c" }, { result.s[1], result.s[2], result.s[3] })
  end)

  it("keeps arrays recognisable, empty ones included", function()
    local result = layer.patch({ s = A { "a" } }, { op("remove", "s", "a") })
    assert.is_true(layer.is_array(result.s))
    assert.are.equal('{"s":[]}', layer.json_encode(result))
  end)
end)

describe("patch with ids", function()
  local objects = {
    ["layer:///messages/1"] = { id = "layer:///messages/1", position = 7 },
    ["layer:///identities/a"] = { id = "layer:///identities/a", user_id = "a" },
  }

  it("resolves ids through objects, as last_message is sent", function()
    local result = layer.patch({}, { op("set", "last_message", nil, { id = "layer:///messages/1" }) }, { objects = objects })
    assert.are.equal(7, result.last_message.position)
  end)

  it("falls back to value, registers it on request, or uses the id with return_ids", function()
    local reg = {}
    local result, _, registered = layer.patch({ p = A {} }, {
      op("add", "p", { id = "layer:///identities/b", user_id = "b" }, { id = "layer:///identities/b" }),
      op("add", "p", nil, { id = "layer:///identities/b" }), -- found now: no duplicate
      op("set", "x", nil, { id = "layer:///identities/zz" }),
    }, { objects = reg, register = true })
    assert.are.equal(1, #result.p)
    assert.are.equal("b", reg["layer:///identities/b"].user_id)
    assert.are.equal("b", registered["layer:///identities/b"].user_id)
    assert.are.equal(layer.null, result.x)
    result = layer.patch({}, { op("set", "x", nil, { id = "layer:///identities/zz" }) }, { objects = {}, return_ids = true })
    assert.are.equal("layer:///identities/zz", result.x)
  end)

  it("removes by id only from object elements", function()
    local result = layer.patch({ p = A { "layer:///identities/a", { id = "layer:///identities/a" } } },
      { op("remove", "p", nil, { id = "layer:///identities/a" }) }, { objects = objects })
    assert.are.equal(1, #result.p)
    assert.are.equal("layer:///identities/a", result.p[1])
  end)

  it("fails clearly without an objects map, or with a non-string id", function()
    local result, err = layer.patch({}, { op("set", "x", nil, { id = "layer:///messages/1" }) })
    assert.is_nil(result)
    assert.is_truthy(err:find("getObjectCallback", 1, true), err)
    result, err = layer.patch({}, { op("set", "x", nil, { id = 5 }) }, { objects = objects })
    assert.is_nil(result)
    assert.is_truthy(err:find("'id' must be a string", 1, true), err)
  end)
end)

describe("patch bad input", function()
  it("rejects malformed operations with a message", function()
    local cases = {
      { { { operation = "replace", property = "a", value = 1 } }, "unknown operation 'replace'" },
      { { { operation = "Set", property = "a", value = 1 } }, "unknown operation 'Set'" },
      { { { property = "a", value = 1 } }, "'operation' must be one of" },
      { { { operation = "set", path = "a", value = 1 } }, "'property' must be a string" },
      { { { operation = "set", property = 5, value = 1 } }, "'property' must be a string" },
      { { { operation = "set", property = "a" } }, "set needs a value" },
      { { { operation = "add", property = "a" } }, "add needs a value" },
      { { "set" }, "must be an object" },
    }
    for _, c in ipairs(cases) do
      local result, err = layer.patch({}, c[1])
      assert.is_nil(result)
      assert.is_truthy(err:find(c[2], 1, true), err)
    end
    local result, err = layer.patch("{}", '{"operation":"set"}')
    assert.is_nil(result)
    assert.is_truthy(err:find("operations must be an array", 1, true), err)
    result, err = layer.patch("[]", "[]")
    assert.is_nil(result)
    assert.is_truthy(err:find("must be an object", 1, true), err)
    result, err = layer.patch("{", "[]")
    assert.is_nil(result)
    assert.is_truthy(err:find("invalid JSON in object", 1, true), err)
  end)

  it("raises on programmer errors: wrong argument types and unconvertible values", function()
    assert.has_error(function() layer.patch(5, {}) end)
    assert.has_error(function() layer.patch({}, 5) end)
    assert.has_error(function() layer.patch({}, {}, 5) end)
    assert.has_error(function() layer.patch({ f = print }, {}) end)
    assert.has_error(function() layer.patch({ s = "\255" }, {}) end)
    assert.has_error(function() layer.patch({ [1] = 1, x = 2 }, {}) end)
    local cycle = {}
    cycle.self = cycle
    assert.has_error(function() layer.patch(cycle, {}) end)
  end)
end)

describe("interplay with lua-cjson", function()
  local ok, cjson = pcall(require, "cjson")
  it("shares the null value", function()
    assert.is_true(ok, "lua-cjson is a test dependency")
    assert.are.equal(cjson.null, layer.null)
    local decoded = cjson.decode('{"a":null,"b":[1,2]}')
    local result = layer.patch(decoded, { op("set", "c", cjson.null) })
    assert.are.equal(layer.null, result.a)
    assert.are.equal(layer.null, result.c)
    assert.are.equal(2, #result.b)
  end)
end)

describe("patch growth in place", function()
  -- Objects and arrays a patch has copied grow in their spare slots: every
  -- later version must still read right, and the input must stay untouched.
  it("agrees with a plain Lua model over interleaved appends, deletes and nested objects", function()
    local input = { metadata = { keep = "k" }, tags = A { "t0" } }
    local before = layer.json_encode(input)
    local ops, want = {}, { keep = "k" }
    local tags = { "t0" }
    for i = 1, 300 do
      ops[#ops + 1] = op("set", "metadata.k" .. i, i)
      want["k" .. i] = i
      ops[#ops + 1] = op("set", "metadata.o" .. (i % 70) .. ".n" .. i, i) -- 70 nested objects, each grown again
      want["o" .. (i % 70)] = want["o" .. (i % 70)] or {}
      want["o" .. (i % 70)]["n" .. i] = i
      ops[#ops + 1] = op("add", "tags", "t" .. i)
      tags[#tags + 1] = "t" .. i
      if i % 7 == 0 then
        ops[#ops + 1] = op("delete", "metadata.k" .. (i - 3))
        want["k" .. (i - 3)] = nil
        ops[#ops + 1] = op("remove", "tags", "t" .. (i - 5))
        for j, t in ipairs(tags) do if t == "t" .. (i - 5) then table.remove(tags, j) break end end
      end
      if i % 11 == 0 then
        ops[#ops + 1] = op("set", "metadata.keep", "k" .. i)
        want.keep = "k" .. i
      end
    end
    for _, opts in ipairs { {}, { changes = false } } do
      local result = assert(layer.patch(input, ops, opts))
      assert.are.same(want, result.metadata)
      local got = {}
      for i = 1, #result.tags do got[i] = result.tags[i] end
      assert.are.same(tags, got)
      assert.are.equal(before, layer.json_encode(input))
    end
  end)
end)
