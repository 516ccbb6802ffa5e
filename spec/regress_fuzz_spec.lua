-- Regressions from fuzzing and from the ASan/valgrind runs of the suite:
-- every input here once crashed, read freed memory or broke an invariant,
-- or sits on a limit the fuzzers hammer. Each must give a clean result or
-- a clean nil, err. (fuzz/ has the targets; `make asan` / `make valgrind`.)
local layer = require "layer"

local CONV = "layer:///conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"
local MSG = "layer:///messages/940de862-3c96-11e4-baad-164230d1df67"

local function packet(type_, body, counter)
  return layer.json_encode({ type = type_, counter = counter or 1, timestamp = "2015-01-19T09:15:43.123Z", body = body })
end

-- Enough garbage allocation to reuse freed blocks, so a stale pointer shows
-- up as a wrong string even without a sanitizer.
local function churn()
  local t = {}
  for i = 1, 200 do t[i] = layer.json_decode(('{"k":"%s"}'):format(("x"):rep(i))) end
  collectgarbage()
  return t
end

describe("fuzz regressions", function()
  describe("cache events", function()
    -- lc_apply pointed ev->id into the packet, which lcache.c frees before
    -- pushing the id: a heap-use-after-free (found by make asan / valgrind).
    it("returns the object id for every outcome", function()
      local cache = layer.cache()
      local function apply(text)
        local outcome, id = cache:apply(text)
        churn()
        return outcome, id
      end
      local data = { id = CONV, participants = layer.array({}), metadata = { title = "t" } }
      local outcome, id = apply(packet("change", { operation = "create", object = { type = "Conversation", id = CONV }, data = data }))
      assert.are.same({ "created", CONV }, { outcome, id })
      outcome, id = apply(packet("change", { operation = "patch", object = { type = "Conversation", id = CONV },
        data = layer.array({ { operation = "set", property = "metadata.title", value = "u" } }) }, 2))
      assert.are.same({ "patched", CONV }, { outcome, id })
      outcome, id = apply(packet("change", { operation = "patch", object = { type = "Message", id = MSG },
        data = layer.array({}) }, 3))
      assert.are.same({ "ignored", MSG }, { outcome, id })
      outcome, id = apply(packet("operation", { method = "Conversation.mark_all_read", object = { id = CONV },
        data = { position = 5, identity = "layer:///identities/a" } }, 4))
      assert.are.same({ "marked_read", CONV }, { outcome, id })
      outcome, id = apply(packet("change", { operation = "delete", object = { type = "Conversation", id = CONV },
        data = { mode = "my_devices", from_position = 10 } }, 5))
      assert.are.same({ "truncated", CONV }, { outcome, id })
      outcome, id = apply(packet("change", { operation = "delete", object = { type = "Conversation", id = CONV },
        data = { mode = "all_participants" } }, 6))
      assert.are.same({ "deleted", CONV }, { outcome, id })
    end)
  end)

  describe("packet decoder", function()
    local valid = packet("change", { operation = "delete", object = { type = "Message", id = MSG },
      data = { mode = "all_participants" } })

    it("rejects every proper prefix of a valid frame cleanly", function()
      assert.is_table(layer.decode_packet(valid))
      for n = 0, #valid - 1 do
        local p, err = layer.decode_packet(valid:sub(1, n))
        assert.is_nil(p)
        assert.is_string(err)
      end
    end)

    it("stops at the nesting limit", function()
      local p, err = layer.decode_packet(("["):rep(33) .. ("]"):rep(33))
      assert.is_nil(p)
      assert.matches("nesting", err)
    end)

    it("handles NUL bytes and invalid UTF-8 in a frame", function()
      for _, text in ipairs({ "\0", '{"type":"change\0"}', '{"type":"\237\160\128"}', '{"type":"\192\128"}', "{\"a\":1}\0" }) do
        local p, err = layer.decode_packet(text)
        assert.is_nil(p)
        assert.is_string(err)
      end
    end)
  end)

  describe("json", function()
    it("rejects lone surrogate escapes and accepts pairs", function()
      assert.is_nil((layer.json_decode('"\\ud800"')))
      assert.is_nil((layer.json_decode('"\\udc00\\ud800"')))
      assert.is_nil((layer.json_decode('"\\ud800\\u0041"')))
      assert.are.equal("\240\159\152\128", layer.json_decode('"\\ud83d\\ude00"'))
    end)

    it("keeps the depth limit at 64", function()
      assert.is_table(layer.json_decode(("["):rep(64) .. ("]"):rep(64)))
      assert.is_nil((layer.json_decode(("["):rep(65) .. ("]"):rep(65))))
    end)
  end)

  describe("patch engine", function()
    local function path(n)
      local t = {}
      for i = 1, n do t[i] = "a" end
      return table.concat(t, ".")
    end

    it("allows 64 path segments and refuses 65 with an error", function()
      local ok = layer.patch("{}", ('[{"operation":"set","property":"%s","value":1}]'):format(path(64)))
      assert.is_string(ok)
      local r, err, index = layer.patch("{}", ('[{"operation":"set","property":"%s","value":1}]'):format(path(65)))
      assert.is_nil(r)
      assert.matches("more than 64 segments", err)
      assert.are.equal(1, index)
    end)

    it("leaves the input untouched when a later operation fails", function()
      local obj = '{"s":["a"],"m":{"x":1}}'
      local r, err, index = layer.patch(obj, '[{"operation":"add","property":"s","value":"b"},' ..
        '{"operation":"set","property":"m.x.y","value":2}]')
      assert.is_nil(r)
      assert.is_string(err)
      assert.are.equal(2, index)
      assert.are.equal("b", layer.json_decode((layer.patch(obj, '[{"operation":"add","property":"s","value":"b"}]'))).s[2])
    end)

    it("registers values and returns ids with an empty lookup map", function()
      local r = layer.patch("{}", '[{"operation":"add","property":"s","id":"x"}]', { objects = "{}", return_ids = true, register = true })
      assert.are.equal('{"s":["x"]}', r)
      local r2, _, reg = layer.patch("{}", '[{"operation":"add","property":"s","id":"x","value":{"id":"x","n":1}},' ..
        '{"operation":"add","property":"t","id":"x"}]', { objects = "{}", register = true })
      local v = layer.json_decode(r2)
      assert.are.equal(1, v.s[1].n)
      assert.are.equal(1, v.t[1].n)
      assert.is_not_nil(reg)
    end)
  end)
end)
