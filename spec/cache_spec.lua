-- layer.cache: change packets applied to the C object cache (upsert, delete
-- modes, from_position, atomic patches, mark_all_read, statistics).
local layer = require "layer"

local CONV = "layer:///conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"
local function msg_id(i) return ("layer:///messages/00000000-0000-0000-0000-%012d"):format(i) end
local counter = 0
local function change(body)
  counter = counter + 1
  return layer.json_encode({ type = "change", counter = counter, timestamp = "2015-01-19T09:15:43.000Z", body = body })
end
local function create_conv(cache, extra)
  local data = { id = CONV, participants = layer.array({ { id = "layer:///identities/a" } }), metadata = { title = "t" } }
  for k, v in pairs(extra or {}) do data[k] = v end
  return cache:apply(change({ operation = "create", object = { type = "Conversation", id = CONV }, data = data }))
end
local function create_msg(cache, i, position)
  return cache:apply(change({ operation = "create", object = { type = "Message", id = msg_id(i) }, data = {
    id = msg_id(i), position = position, conversation = { id = CONV }, recipient_status = {},
    parts = layer.array({ { body = "m" .. i, mime_type = "text/plain" } }) } }))
end
local function patch(cache, type_, id, ops)
  return cache:apply(change({ operation = "patch", object = { type = type_, id = id }, data = layer.array(ops) }), true)
end

describe("layer.cache", function()
  local cache
  before_each(function() cache = layer.cache() end)

  it("creates, and treats a second create as an upsert", function()
    assert.are.equal("created", (create_conv(cache)))
    assert.are.equal("replaced", (create_conv(cache, { metadata = { title = "u" } })))
    assert.are.equal("u", cache:get(CONV).metadata.title)
    assert.are.equal(1, cache:stats().conversations)
  end)

  it("patches atomically and reports the change list", function()
    create_conv(cache)
    local outcome, id, changes = patch(cache, "Conversation", CONV, {
      { operation = "set", property = "metadata.title", value = "new" },
      { operation = "add", property = "participants", value = { id = "layer:///identities/b" }, id = "layer:///identities/b" },
    })
    assert.are.equal("patched", outcome)
    assert.are.equal(CONV, id)
    assert.are.equal(2, #changes)
    assert.are.equal("t", changes[1].old.title)
    assert.are.equal("new", changes[1].new.title)
    -- a failing patch: nothing changes, and the error says why
    local before = cache:get_json(CONV)
    local ok, err = patch(cache, "Conversation", CONV, {
      { operation = "set", property = "metadata.title", value = "lost" },
      { operation = "add", property = "metadata.title", value = "x" },
    })
    assert.is_nil(ok)
    assert.is_truthy(err:find("operation 2 (add 'metadata.title')", 1, true), err)
    assert.are.equal(before, cache:get_json(CONV))
  end)

  it("resolves last_message by id to the id when the message is not cached", function()
    create_conv(cache)
    patch(cache, "Conversation", CONV, { { operation = "set", property = "last_message", id = msg_id(9) } })
    assert.are.equal(msg_id(9), cache:get(CONV).last_message)
  end)

  it("ignores patches and deletes of unknown objects (replays make them normal)", function()
    assert.are.equal("ignored", (patch(cache, "Message", msg_id(1), { { operation = "set", property = "x", value = 1 } })))
    assert.are.equal("ignored", (cache:apply(change({ operation = "delete", object = { type = "Message", id = msg_id(1) }, data = { mode = "all_participants" } }))))
  end)

  it("deletes a message, and a conversation with its messages", function()
    create_conv(cache)
    for i = 1, 3 do create_msg(cache, i, i * 10) end
    assert.are.equal("deleted", (cache:apply(change({ operation = "delete", object = { type = "Message", id = msg_id(2) }, data = { mode = "my_devices" } }))))
    assert.is_nil(cache:get(msg_id(2)))
    assert.are.equal(2, cache:stats().messages)
    assert.are.equal("deleted", (cache:apply(change({ operation = "delete", object = { type = "Conversation", id = CONV }, data = { mode = "all_participants" } }))))
    assert.are.equal(0, cache:stats().objects)
  end)

  it("truncates messages at or before from_position and keeps the conversation", function()
    create_conv(cache)
    for i = 1, 200 do create_msg(cache, i, i * 10) end
    local outcome, _, removed = cache:apply(change({ operation = "delete", object = { type = "Conversation", id = CONV }, data = { mode = "my_devices", from_position = 1000 } }), true)
    assert.are.equal("truncated", outcome)
    assert.are.equal(100, removed)
    assert.is_table(cache:get(CONV))
    assert.is_nil(cache:get(msg_id(100)))
    assert.is_table(cache:get(msg_id(101)))
    for i = 101, 200 do assert.is_table(cache:get(msg_id(i)), i) end
    assert.are.equal(100, cache:stats().messages)
  end)

  it("marks messages read up to a position (Conversation.mark_all_read)", function()
    create_conv(cache)
    for i = 1, 4 do create_msg(cache, i, i) end
    local frame = layer.json_encode({ type = "operation", counter = 99, timestamp = "2015-01-19T09:15:43Z", body = {
      method = "Conversation.mark_all_read", object = { id = CONV }, data = { position = 3, identity = { id = "layer:///identities/fred.flinstone" } } } })
    local outcome, _, marked = cache:apply(frame, true)
    assert.are.equal("marked_read", outcome)
    assert.are.equal(3, marked)
    assert.are.equal("read", cache:get(msg_id(3)).recipient_status["layer:///identities/fred.flinstone"])
    assert.is_nil(cache:get(msg_id(4)).recipient_status["layer:///identities/fred.flinstone"])
  end)

  it("keeps memory bounded while one object is patched many times", function()
    create_conv(cache)
    create_msg(cache, 1, 1)
    local base = cache:stats().bytes
    for i = 1, 5000 do
      patch(cache, "Message", msg_id(1), { { operation = "set", property = "recipient_status.layer:///identities/u" .. (i % 25), value = (i % 2 == 0) and "read" or "delivered" } })
    end
    assert.is_true(cache:stats().bytes < base + 4096, "bytes grew from " .. base .. " to " .. cache:stats().bytes)
  end)

  it("keeps at most max_messages_per_conversation, dropping the oldest positions", function()
    local bounded = layer.cache({ max_messages_per_conversation = 10 })
    create_conv(bounded)
    for i = 30, 1, -1 do create_msg(bounded, i, i) end -- out of order on purpose
    assert.are.equal(10, bounded:stats().messages)
    assert.are.equal(20, bounded:stats().evicted)
    assert.is_nil(bounded:get(msg_id(20)))
    for i = 21, 30 do assert.is_table(bounded:get(msg_id(i)), i) end
  end)

  it("stays under max_bytes by evicting the least recently changed objects", function()
    local bounded = layer.cache({ max_bytes = 64 * 1024 })
    create_conv(bounded)
    for i = 1, 2000 do create_msg(bounded, i, i) end
    local stats = bounded:stats()
    assert.is_true(stats.bytes <= 64 * 1024, stats.bytes)
    assert.is_true(stats.evicted > 1000)
    assert.is_table(bounded:get(msg_id(2000)))
    assert.is_nil(bounded:get(msg_id(1)))
  end)

  it("returns errors for bad frames and raises once closed", function()
    local ok, err = cache:apply("{")
    assert.is_nil(ok)
    assert.is_truthy(err:find("invalid JSON", 1, true))
    ok, err = cache:apply('{"type":"response","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"request_id":"1","success":true}}')
    assert.is_nil(ok)
    assert.is_truthy(err:find("only change and operation packets", 1, true))
    cache:close()
    assert.has_error(function() cache:stats() end)
    cache:close() -- twice is fine
  end)
end)
