-- layer.conversation: the client's conversation calls and a Conversation's methods.
local layer = require "layer"
local conversation = require "layer.conversation"
local manual = require "support.manual_client"

local U = "f3cc7b32-3c92-11e4-baad-164230d1df67"

describe("layer.conversation", function()
  it("gives layer.client its conversation calls, the same functions", function()
    local h = manual.new()
    for _, name in ipairs({ "create_conversation", "conversations", "conversation" }) do
      assert.equal(conversation.client_methods[name], h.client[name])
    end
    h.client:close()
  end)

  it("creates a distinct conversation with identity ids as given", function()
    local h = manual.new()
    h.client:create_conversation({ participants = { "bob" }, id = manual.CONV }, function() end)
    local req = h.take_http()
    assert.same({ "POST", "/conversations" }, { req.method, req.path })
    local body = layer.json_decode(req.body)
    assert.same({ manual.CONV, { "bob" }, true }, { body.id, body.participants, body.distinct })
    h.client:close()
  end)

  it("patches metadata and participants with Layer-Patch", function()
    local h = manual.new()
    local conv = h.conversation()
    conv:set_metadata("a.b", "v", function() end)
    local req = h.take_http()
    assert.same({ "PATCH", "/conversations/" .. U, "application/vnd.layer-patch+json" },
      { req.method, req.path, req.content_type })
    assert.same({ { operation = "set", property = "metadata.a.b", value = "v" } }, layer.json_decode(req.body))
    conv:add_participants({ "carol d" }, function() end)
    req = h.take_http()
    assert.same({ { operation = "add", property = "participants", id = "layer:///identities/carol%20d" } },
      layer.json_decode(req.body))
    h.client:close()
  end)

  it("sends a short message over the socket and deletes with a mode", function()
    local h = manual.new()
    local conv = h.conversation()
    conv:send("hi", function() end)
    local sent = h.take_request()
    assert.same({ "Message.create", manual.CONV, "hi" }, { sent.method, sent.object_id, sent.data.parts[1].body })
    conv:delete({ mode = "my_devices" }, function() end)
    local req = h.take_http()
    assert.same({ "DELETE", "/conversations/" .. U .. "?mode=my_devices" }, { req.method, req.path })
    assert.has_error(function() conv:delete({ mode = "everyone" }, function() end) end)
    h.client:close()
  end)
end)
