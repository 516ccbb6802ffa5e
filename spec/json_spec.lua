-- layer.json_decode / json_encode: strict RFC 8259, UTF-8 checked, arrays and
-- objects kept apart, numbers exact, and agreement with lua-cjson.
local layer = require "layer"
local helper = require "helper"
local cjson = require "cjson"

describe("json_decode", function()
  it("reads the seed Message and Conversation and writes them back unchanged", function()
    for _, example in ipairs({ "layer-docs/message.json", "layer-docs/conversation.json" }) do
      local text = helper.read_file(helper.data_path(example))
      local value = assert(layer.json_decode(text))
      local again = assert(layer.json_decode(layer.json_encode(value)))
      assert.is_true(helper.json_equal(value, again))
    end
  end)

  it("keeps [] and {} apart and marks arrays", function()
    local v = layer.json_decode('{"a":[],"b":{},"c":[{}],"d":[[]]}')
    assert.is_true(layer.is_array(v.a))
    assert.is_false(layer.is_array(v.b))
    assert.are.equal('[]', layer.json_encode(v.a))
    assert.are.equal('{}', layer.json_encode(v.b))
    assert.are.equal('[{}]', layer.json_encode(v.c))
    assert.are.equal('[[]]', layer.json_encode(v.d))
  end)

  it("decodes numbers exactly", function()
    local v = layer.json_decode('[0,-0,15032697020,9007199254740993,-9223372036854775808,1.5,1e3,2.5e-3,1E+2,1e400]')
    assert.are.equal(0, v[1])
    assert.are.equal(15032697020, v[3])
    if math.type then
      assert.are.equal("integer", math.type(v[3]))
      assert.are.equal(9007199254740993, v[4])
      assert.are.equal(math.mininteger, v[5])
    end
    assert.are.equal(1.5, v[6])
    assert.are.equal(1000, v[7])
    assert.are.equal(0.0025, v[8])
    assert.are.equal(100, v[9])
    assert.are.equal(math.huge, v[10])
    assert.are.equal("[0.1,-2.5e-7,1e+21,123456789012]", layer.json_encode(layer.array({ 0.1, -2.5e-7, 1e21, 123456789012 })))
  end)

  it("decodes escapes and surrogate pairs, and keeps NUL inside strings", function()
    local v = layer.json_decode('["\\"\\\\\\/\\b\\f\\n\\r\\t","\\u00e9\\u20ac","\\ud83d\\ude00","a\\u0000b"]')
    assert.are.equal('"\\/\b\f\n\r\t', v[1])
    assert.are.equal("\195\169\226\130\172", v[2])
    assert.are.equal("\240\159\152\128", v[3])
    assert.are.equal("a\0b", v[4])
    assert.are.equal('["a\\u0000b"]', layer.json_encode(layer.array({ "a\0b" })))
  end)

  it("keeps the last of duplicate keys, also in large objects", function()
    assert.are.equal(2, layer.json_decode('{"a":1,"a":2}').a)
    local parts = {}
    for i = 1, 300 do parts[#parts + 1] = ('"k%d":%d'):format(i % 150, i) end
    local v = layer.json_decode("{" .. table.concat(parts, ",") .. "}")
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    assert.are.equal(150, n)
    assert.are.equal(300, v.k0)
  end)

  -- The duplicate check tells well-known keys apart by address and hashes the
  -- others once there are more than 8: each path, and no false positives.
  it("finds duplicates among well-known keys, escaped spellings and many long ids", function()
    local v = layer.json_decode('{"id":1,"type":2,"id":3}')
    assert.are.equal(3, v.id)
    assert.are.equal(2, v.type)
    v = layer.json_decode('{"id":1,"i\\u0064":2,"url":3}')
    assert.are.equal(2, v.id)
    assert.are.equal(3, v.url)
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    assert.are.equal(2, n)
    for _, count in ipairs({ 9, 25, 40, 70 }) do
      local parts, distinct = {}, {}
      for i = 1, count do
        parts[#parts + 1] = ('"layer:///identities/user_%03d":%d'):format(i, i)
      end
      parts[#parts + 1] = '"id":0'
      distinct = layer.json_decode("{" .. table.concat(parts, ",") .. "}")
      n = 0
      for _ in pairs(distinct) do n = n + 1 end
      assert.are.equal(count + 1, n)
      parts[#parts + 1] = ('"layer:///identities/user_%03d":-1'):format(count)
      local dup = layer.json_decode("{" .. table.concat(parts, ",") .. "}")
      n = 0
      for _ in pairs(dup) do n = n + 1 end
      assert.are.equal(count + 1, n)
      assert.are.equal(-1, dup[("layer:///identities/user_%03d"):format(count)])
    end
  end)

  it("refuses what JSON does not allow, with the byte offset", function()
    local bad = {
      { "{'a':1}", "expected a string key at byte 1" },
      { "[1,]", "unexpected character at byte 3" },
      { "[01]", "expected ',' or ']' at byte 2" },
      { "[1.]", "unexpected character at byte 1" },
      { '"\t"', "unescaped control character" },
      { '"\\x"', "invalid escape" },
      { '"\\u12"', "invalid \\u escape" },
      { "[NaN]", "unexpected character" },
      { "nul", "unexpected character" },
      { "{} {}", "trailing characters" },
      { "\239\187\191{}", "unexpected character at byte 0" },
      { '"\192\128"', "invalid UTF-8" },
      { '"\244\144\128\128"', "invalid UTF-8" },
    }
    for _, case in ipairs(bad) do
      local v, err = layer.json_decode(case[1])
      assert.is_nil(v, case[1])
      assert.is_truthy(err:find(case[2], 1, true), ("%q gave %q"):format(case[1], err))
    end
    local deep = string.rep("[", 65) .. string.rep("]", 65)
    assert.is_nil((layer.json_decode(deep)))
    assert.is_table(layer.json_decode(string.rep("[", 64) .. string.rep("]", 64)))
  end)

  it("agrees with lua-cjson on generated documents", function()
    local seed = 7
    local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
    local function gen(depth)
      local k = rnd(depth > 3 and 4 or 7)
      if k == 0 then return tostring(rnd(100000) - 50000)
      elseif k == 1 then return ('"s%d\\n\\u00e9"'):format(rnd(1000))
      elseif k == 2 then return ({ "true", "false", "null", "1.25", "-3e2" })[1 + rnd(5)]
      elseif k == 3 then return '"' .. string.rep("x", rnd(40)) .. '"'
      elseif k <= 5 then
        local items = {}
        for i = 1, 1 + rnd(5) do items[i] = gen(depth + 1) end
        return "[" .. table.concat(items, ",") .. "]"
      else
        local members = {}
        for i = 1, 1 + rnd(5) do members[i] = ('"k%d_%d":%s'):format(i, rnd(9), gen(depth + 1)) end
        return "{" .. table.concat(members, ",") .. "}"
      end
    end
    local function same(a, b)
      if a == layer.null then return b == cjson.null end
      if type(a) ~= type(b) then return false end
      if type(a) ~= "table" then return a == b end
      for k, v in pairs(a) do if not same(v, b[k]) then return false end end
      for k in pairs(b) do if a[k] == nil then return false end end
      return true
    end
    for _ = 1, 300 do
      local text = gen(0)
      local ours, theirs = layer.json_decode(text), cjson.decode(text)
      assert.is_true(same(ours, theirs), text)
      assert.is_true(same(layer.json_decode(layer.json_encode(ours)), theirs), text)
    end
  end)
end)

describe("json_encode", function()
  it("refuses values JSON cannot hold", function()
    assert.has_error(function() layer.json_encode({ f = print }) end)
    assert.has_error(function() layer.json_encode(0 / 0) end)
    assert.has_error(function() layer.json_encode(math.huge) end)
    assert.has_error(function() layer.json_encode("\255") end)
    assert.has_error(function() layer.json_encode({ [true] = 1 }) end)
  end)

  it("writes sparse or mixed tables only when they are marked arrays", function()
    assert.are.equal('[1,null,3]', layer.json_encode(layer.array({ 1, nil, 3 })))
    assert.has_error(function() layer.json_encode({ 1, 2, x = 3 }) end)
    assert.are.equal("{}", layer.json_encode({}))
    assert.are.equal("[]", layer.json_encode(layer.array()))
  end)
end)
