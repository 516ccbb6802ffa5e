-- spec/support/manual_client.lua: a layer.client on the manual transport with
-- a session token and an open socket, for the specs of the per-object modules
-- (spec/conversation_spec.lua and its siblings): they feed objects in and read
-- the requests the methods send.
local layer = require "layer"

local M = {}

M.CONV = "layer:///conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"
M.MSG = "layer:///messages/00000000-0000-4000-8000-000000000001"

function M.new()
  local client = layer.client{ transport = "manual", session_token = "t", app_id = "layer:///apps/staging/test" }
  local engine = client:engine()
  local h = { client = client, engine = engine, counter = 0 }
  client:step(0)
  assert(engine:ws_wanted(), "socket wanted with a session token")
  engine:ws_opened()
  client:step(0)

  function h.step() client:step(0) end
  -- the next REST request the client sent
  function h.take_http()
    client:step(0)
    return engine:take_http()
  end
  -- the next WebSocket request, decoded
  function h.take_request()
    client:step(0)
    while true do
      local f = engine:take_frame()
      if not f then return nil end
      local packet = layer.json_decode(f)
      if packet.type == "request" then return packet.body end
    end
  end
  function h.respond(req, status, body)
    engine:http_response(req.id, status, body ~= nil and layer.json_encode(body) or nil)
  end
  function h.change(body)
    engine:feed(layer.json_encode({ type = "change", counter = h.counter, body = body,
      timestamp = "2015-01-19T09:15:00.000Z" }))
    h.counter = h.counter + 1
    client:step(0)
  end
  function h.conversation()
    h.change({ operation = "create", object = { type = "Conversation", id = M.CONV }, data = {
      id = M.CONV, participants = layer.array({ { id = "layer:///identities/alice", user_id = "alice" } }),
      metadata = { title = "t" }, distinct = true } })
    return client:engine():object(M.CONV)
  end
  function h.message(parts)
    h.conversation()
    h.change({ operation = "create", object = { type = "Message", id = M.MSG }, data = {
      id = M.MSG, position = 1, conversation = { id = M.CONV }, recipient_status = {},
      sender = { id = "layer:///identities/bob", user_id = "bob" },
      parts = layer.array(parts or { { body = "hello", mime_type = "text/plain" } }) } })
    return client:engine():object(M.MSG)
  end
  return h
end

return M
