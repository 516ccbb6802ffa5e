-- layer.decode_packet: every packet shape in Layer's docs (spec/data/layer-docs) and
-- docs/protocol.md decodes to a typed table; malformed frames give precise errors.
local layer = require "layer"
local helper = require "helper"

local MESSAGE = helper.read_file(helper.data_path("layer-docs/message.json"))
local CONVERSATION = helper.read_file(helper.data_path("layer-docs/conversation.json"))
local CONV_ID = "layer:///conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"

local function change(counter, body)
  return '{"type":"change","counter":' .. counter .. ',"timestamp":"2015-01-19T09:15:43+00:00","body":' .. body .. "}"
end

local function decode(text)
  local p, err = layer.decode_packet(text)
  assert.is_table(p, err)
  return p
end

local function rejects(text, pattern)
  local p, err = layer.decode_packet(text)
  assert.is_nil(p)
  assert.is_string(err)
  assert.is_truthy(err:find(pattern, 1, true), "error '" .. err .. "' lacks '" .. pattern .. "'")
end

describe("decode_packet, the seed examples", function()
  it("creates a Conversation with the full object", function()
    local p = decode(change(6, '{"operation":"create","object":{"type":"Conversation","id":"' .. CONV_ID ..
      '","url":"https://api.layer.com/conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"},"data":' .. CONVERSATION .. "}"))
    assert.are.equal("change", p.type)
    assert.are.equal(6, p.counter)
    assert.are.equal("create", p.operation)
    assert.are.equal("Conversation", p.object_type)
    assert.are.equal(CONV_ID, p.object_id)
    assert.are.equal("Who likes this conversation?", p.data.metadata.title)
    assert.are.equal(4, #p.data.participants)
    assert.is_true(layer.is_array(p.data.participants))
    assert.are.equal(1421658943, p.time)
  end)

  it("creates a Message with the full object", function()
    local p = decode(change(7, '{"operation":"create","object":{"type":"Message","id":"layer:///messages/940de862-3c96-11e4-baad-164230d1df67"},"data":' .. MESSAGE .. "}"))
    assert.are.equal("Message", p.object_type)
    assert.are.equal("text/plain", p.data.parts[1].mime_type)
    assert.are.equal("read", p.data.recipient_status["layer:///identities/999"])
    assert.are.equal(15032697020, p.data.position)
  end)

  it("creates an Identity even though the doc example labels it a Message", function()
    local p = decode('{"type":"change","counter":7,"timestamp":"2014-09-15T04:45:00+00:00","body":{"operation":"create",' ..
      '"object":{"type":"Message","id":"layer:///identities/1234","url":"https://api.layer.com/identities/1234"},' ..
      '"data":{"id":"layer:///identities/1234","user_id":"1234","display_name":"One Two Three Four"}}}')
    assert.are.equal("Identity", p.object_type)
    assert.are.equal("Message", p.object.type)
  end)

  it("deletes for all participants, with and without a null from_position", function()
    local p = decode(change(8, '{"operation":"delete","object":{"type":"Message","id":"layer:///messages/f3cc7b32-3c92-11e4-baad-164230d1df68","url":"https://api.layer.com/messages/940de862-3c96-11e4-baad-164230d1df68"},"data":{"mode":"all_participants"}}'))
    assert.are.equal("delete", p.operation)
    assert.are.equal("all_participants", p.mode)
    assert.is_nil(p.from_position)
    p = decode(change(8, '{"operation":"delete","object":{"type":"Conversation","id":"' .. CONV_ID .. '"},"data":{"mode":"all_participants","from_position":null}}'))
    assert.is_nil(p.from_position)
  end)

  it("deletes for my devices, and from_position keeps the conversation", function()
    local p = decode(change(8, '{"operation":"delete","object":{"type":"Conversation","id":"' .. CONV_ID .. '"},"data":{"mode":"my_devices","from_position":123456}}'))
    assert.are.equal("my_devices", p.mode)
    assert.are.equal(123456, p.from_position)
  end)

  it("deletes an Identity with data null", function()
    local p = decode(change(8, '{"operation":"delete","object":{"type":"Identity","id":"layer:///identities/1234"},"data":null}'))
    assert.are.equal("Identity", p.object_type)
    assert.is_nil(p.mode)
  end)

  it("decodes both 'update' (API 2.0) and 'patch' (API 3.0) with their operations", function()
    for _, name in ipairs({ "update", "patch" }) do
      local p = decode(change(10, '{"operation":"' .. name .. '","object":{"type":"Conversation","id":"' .. CONV_ID ..
        '"},"data":[{"operation":"add","property":"participants","value":"4567"},{"operation":"remove","property":"participants","value":"5678"}]}'))
      assert.are.equal(name, p.operation)
      assert.are.equal(2, #p.operations)
      assert.are.equal("remove", p.operations[2].operation)
    end
  end)

  it("decodes metadata, recipient_status (wire form of the escaped dot), last_message by id and Identity patches", function()
    local p = decode(change(11, '{"operation":"patch","object":{"type":"Conversation","id":"layer:///conversations/3cc7b32-3c92-11e4-baad-164230d1df67"},"data":[{"operation":"delete","property":"metadata.a.b.c"},{"operation":"set","property":"metadata.a.b.name","value":"foo"}]}'))
    assert.are.equal("metadata.a.b.name", p.operations[2].property)
    p = decode(change(12, '{"operation":"update","object":{"type":"Message","id":"layer:///messages/f3cc7b32-3c92-11e4-baad-164230d1df67"},"data":[{"operation":"set","property":"recipient_status.fred\\\\.flinstone","value":"delivered"}]}'))
    assert.are.equal("recipient_status.fred\\.flinstone", p.operations[1].property)
    p = decode(change(13, '{"operation":"update","object":{"type":"Conversation","id":"' .. CONV_ID .. '"},"data":[{"operation":"set","property":"last_message","id":"layer:///messages/940de862-3c96-11e4-baad-164230d1df67"}]}'))
    assert.are.equal("layer:///messages/940de862-3c96-11e4-baad-164230d1df67", p.operations[1].id)
    p = decode(change(13, '{"operation":"update","object":{"type":"Identity","id":"layer:///identities/1234"},"data":[{"operation":"set","property":"first_name","value":"One Two"}]}'))
    assert.are.equal("Identity", p.object_type)
  end)

  it("rejects the docs' literal \\. inside a JSON string, which is not valid JSON", function()
    rejects(change(12, '{"operation":"update","object":{"type":"Message","id":"layer:///messages/x"},"data":[{"operation":"set","property":"recipient_status.fred\\.flinstone","value":"delivered"}]}'),
      "invalid escape")
  end)

  it("decodes success, error and deduplication responses", function()
    local p = decode('{"type":"response","counter":16,"timestamp":"2015-01-19T09:15:43+00:00","body":{"request_id":"fred.flinstone.3","method":"Message.create","success":true,"data":' .. MESSAGE .. "}}")
    assert.are.equal("response", p.type)
    assert.are.equal("fred.flinstone.3", p.request_id)
    assert.is_true(p.success)
    assert.are.equal("Message.create", p.method)
    p = decode('{"type":"response","counter":18,"timestamp":"2015-01-19T09:15:43+00:00","body":{"request_id":"fred.flinstone.3","method":"Message.create","success":false,"data":{"code":102,"id":"not_found","message":"The Conversation could not be found.","url":"https://developer.layer.com/"}}}')
    assert.is_false(p.success)
    assert.are.equal("not_found", p.error.id)
    assert.are.equal(102, p.error.code)
    p = decode('{"type":"response","counter":18,"timestamp":"2015-01-19T09:15:43+00:00","body":{"request_id":"fred.flinstone.3","method":"Message.create","success":false,"data":{"id":"id_in_use","code":111,"message":"The requested Message already exists","url":"http://docs.layer.com/reference/client_api#send-a-message","data":' .. MESSAGE .. "}}}")
    assert.are.equal("id_in_use", p.error.id)
    assert.are.equal("text/plain", p.error.data.parts[1].mime_type)
  end)

  it("decodes a typing indicator signal with its sender", function()
    local p = decode('{"type":"signal","counter":3,"timestamp":"2015-01-19T09:15:43.120Z","body":{"type":"typing_indicator","object":{"id":"' .. CONV_ID .. '"},"data":{"action":"started","sender":{"id":"layer:///identities/1234","user_id":"1234"}}}}')
    assert.are.equal("signal", p.type)
    assert.are.equal("typing_indicator", p.signal)
    assert.are.equal("started", p.action)
    assert.are.equal("1234", p.sender.user_id)
    assert.are.equal(CONV_ID, p.object_id)
    assert.is_true(math.abs(p.time - 1421658943.12) < 1e-6)
  end)

  it("decodes the Conversation.mark_all_read operation", function()
    local p = decode('{"type":"operation","counter":4,"timestamp":"2015-01-19T09:15:43Z","body":{"method":"Conversation.mark_all_read","object":{"id":"' .. CONV_ID .. '"},"data":{"position":15032697020,"identity":{"id":"layer:///identities/1234"}}}}')
    assert.are.equal("operation", p.type)
    assert.are.equal(15032697020, p.position)
    assert.are.equal("layer:///identities/1234", p.identity.id)
  end)

  it("decodes a client request (Message.create over the socket)", function()
    local p = decode('{"type":"request","body":{"method":"Message.create","request_id":"fred.flinstone.3","object_id":"layer:///conversations/e67b5da2-95ca-40c4-bfc5-a2a8baaeb50f","data":{"parts":[{"mime_type":"text/plain","body":"This is the message."}]}}}')
    assert.are.equal("request", p.type)
    assert.is_nil(p.counter)
    assert.are.equal("Message.create", p.method)
  end)
end)

describe("decode_packet, bad input", function()
  local ok_change = '{"operation":"delete","object":{"type":"Message","id":"layer:///messages/x"},"data":{"mode":"my_devices"}}'

  it("names invalid JSON with its byte offset", function()
    rejects('{"type":"change",', "invalid JSON")
    rejects('{"type":"change"} x', "trailing characters")
    rejects('', "unexpected end of input")
  end)

  it("rejects invalid UTF-8 and unpaired surrogates", function()
    rejects('{"type":"chan\255ge"}', "invalid UTF-8")
    rejects('{"type":"\\ud800"}', "unpaired surrogate")
    rejects('{"type":"\237\160\128"}', "invalid UTF-8")
  end)

  it("enforces the size and depth limits", function()
    local big = change(1, (ok_change:gsub("my_devices", "my_devices\",\"pad\":\"" .. string.rep("x", 1024 * 1024))))
    rejects(big, "exceeds the limit")
    local deep = string.rep("[", 40) .. string.rep("]", 40)
    rejects(change(1, '{"operation":"create","object":{"type":"Message","id":"layer:///messages/x"},"data":{"x":' .. deep .. "}}"), "nesting deeper")
    local p = layer.decode_packet(change(1, ok_change), { max_bytes = 50 })
    assert.is_nil(p)
  end)

  it("rejects unknown packet types, operations, modes and object ids", function()
    rejects('{"type":"bogus","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{}}', "unknown packet type 'bogus'")
    rejects(change(1, '{"operation":"upsert","object":{"type":"Message","id":"layer:///messages/x"},"data":{}}'), "unknown operation 'upsert'")
    rejects(change(1, '{"operation":"delete","object":{"type":"Message","id":"layer:///messages/x"},"data":{"mode":"everyone"}}'), "unknown mode 'everyone'")
    rejects(change(1, '{"operation":"delete","object":{"type":"Channel","id":"layer:///channels/x"},"data":{"mode":"my_devices"}}'), "is not a Layer object id")
    rejects('{"type":"signal","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"type":"presence","object":{"id":"' .. CONV_ID .. '"},"data":{}}}', "unknown signal type")
    rejects('{"type":"signal","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"type":"typing_indicator","object":{"id":"' .. CONV_ID .. '"},"data":{"action":"dancing"}}}', "unknown action")
    rejects('{"type":"operation","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"method":"Conversation.explode","object":{"id":"' .. CONV_ID .. '"},"data":{}}}', "unknown method")
  end)

  -- fuzz_session: a typing indicator for "...\u0000..." gave an event whose
  -- id the engine's C strings cut short at the NUL
  it("rejects object ids with a NUL byte in change, signal and operation packets", function()
    rejects(change(1, '{"operation":"delete","object":{"type":"Message","id":"layer:///messages/x\\u0000y"},"data":{"mode":"my_devices"}}'), "is not a Layer object id")
    rejects('{"type":"signal","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"type":"typing_indicator","object":{"id":"' .. CONV_ID .. '\\u0000d"},"data":{"action":"started"}}}', "is not a conversation id")
    rejects('{"type":"operation","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"method":"Conversation.mark_all_read","object":{"id":"' .. CONV_ID .. '\\u0000d"},"data":{"position":1}}}', "is not a conversation id")
  end)

  it("rejects missing fields and wrong types, naming the field", function()
    rejects('[1,2]', "packet must be a JSON object")
    rejects('{"counter":1}', "missing field 'type'")
    rejects('{"type":"change","timestamp":"2015-01-19T09:15:43Z","body":{}}', "missing field 'counter'")
    rejects('{"type":"change","counter":-1,"timestamp":"2015-01-19T09:15:43Z","body":{}}', "non-negative integer")
    rejects('{"type":"change","counter":1.5,"timestamp":"2015-01-19T09:15:43Z","body":{}}', "non-negative integer")
    rejects('{"type":"change","counter":1,"timestamp":"yesterday","body":{}}', "not an ISO-8601 time")
    rejects('{"type":"change","counter":1,"timestamp":"2015-13-19T09:15:43Z","body":{}}', "not an ISO-8601 time")
    rejects('{"type":"change","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":[]}', "field 'body' must be an object")
    rejects(change(1, '{"operation":"create","object":{"type":"Message","id":"layer:///messages/x"}}'), "missing field 'data'")
    rejects(change(1, '{"operation":"create","object":{"type":"Message","id":"layer:///messages/x"},"data":{"id":"layer:///messages/y"}}'), "differs from object.id")
    rejects(change(1, '{"operation":"patch","object":{"type":"Message","id":"layer:///messages/x"},"data":{}}'), "field 'data' must be an array")
    rejects(change(1, '{"operation":"patch","object":{"type":"Message","id":"layer:///messages/x"},"data":[{"property":"a"}]}'), "missing field 'operation'")
    rejects(change(1, '{"operation":"delete","object":{"type":"Message","id":"layer:///messages/x"},"data":{"mode":"my_devices","from_position":3}}'), "from_position is only valid")
    rejects(change(1, '{"operation":"delete","object":{"type":"Message","id":7},"data":{"mode":"my_devices"}}'), "field 'id' must be a string")
    rejects('{"type":"response","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"request_id":"r1","success":false,"data":null}}', "needs an error object")
    rejects('{"type":"response","counter":1,"timestamp":"2015-01-19T09:15:43Z","body":{"request_id":"r1","success":"yes"}}', "field 'success' must be a boolean")
  end)

  it("never raises on arbitrary bytes", function()
    local seed = 12345
    local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
    local base = change(3, ok_change)
    for _ = 1, 2000 do
      local bytes = {}
      for i = 1, #base do bytes[i] = base:sub(i, i) end
      for _ = 1, 1 + rnd(4) do
        local at = 1 + rnd(#bytes)
        bytes[at] = string.char(rnd(256))
      end
      local ok, p, err = pcall(layer.decode_packet, table.concat(bytes))
      assert.is_true(ok, p)
      assert.is_true(p ~= nil or type(err) == "string")
    end
  end)
end)
