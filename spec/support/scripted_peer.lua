-- spec/support/scripted_peer.lua - a scripted Layer server around a manual-transport
-- client (manual clock too): it logs the client in through the nonce challenge, pushes
-- change packets with counters and timestamps, answers REST and WebSocket requests, and
-- hands out what the client sent. spec/client_manual_spec.lua drives the client's logic
-- with it, without a network.
local layer = require "layer"

local M = {}
M.CONV = "layer:///conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"
function M.msg_id(i) return ("layer:///messages/00000000-0000-4000-8000-%012d"):format(i) end
local CONV, msg_id = M.CONV, M.msg_id

-- A scripted peer around a manual client; opts are extra layer.client options.
function M.new(opts)
  local h = { counter = 0, now = 1000, sent = {}, http = {} }
  local o = { transport = "manual", manual_clock = h.now, app_id = "layer:///apps/staging/test",
    identity = function(nonce) h.nonces = (h.nonces or 0) + 1; return layer.dev_token{ secret = "s", user_id = "alice", nonce = nonce } end,
    backoff_jitter = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  h.client = layer.client(o)
  h.engine = h.client:engine()

  function h:advance(seconds)
    self.now = self.now + seconds
    self.engine:set_time(self.now)
  end
  function h:step() self.client:step(0) end
  function h:take_http()
    local list = {}
    while true do
      local r = self.engine:take_http()
      if not r then break end
      list[#list + 1] = r
    end
    return list
  end
  function h:take_frames()
    local list = {}
    while true do
      local f = self.engine:take_frame()
      if not f then break end
      list[#list + 1] = layer.json_decode(f)
    end
    return list
  end
  function h:respond(req, status, body, retry_after, count)
    self.engine:http_response(req.id, status, body and (type(body) == "string" and body or layer.json_encode(body)), retry_after, count)
  end
  -- log in through the challenge and open the socket
  function h:login()
    self:step()
    local reqs = self:take_http()
    assert(#reqs == 1 and reqs[1].path == "/nonces", "expected POST /nonces")
    self:respond(reqs[1], 200, { nonce = "n1" })
    self:step() -- challenge -> identity callback -> POST /sessions
    reqs = self:take_http()
    assert(#reqs == 1 and reqs[1].path == "/sessions", "expected POST /sessions")
    self.session_request = reqs[1]
    self:respond(reqs[1], 201, { session_token = "tok-1" })
    self:step()
    assert(self.engine:ws_wanted(), "socket wanted after login")
    self.engine:ws_opened()
    self.counter = 0
    self:step()
  end
  function h:push(ptype, body, timestamp)
    local f = layer.json_encode({ type = ptype, counter = self.counter, body = body,
      timestamp = timestamp or ("2015-01-19T09:15:%02d.000Z"):format(self.counter % 60) })
    self.counter = self.counter + 1
    self.engine:feed(f)
    return f
  end
  function h:change(body, timestamp) return self:push("change", body, timestamp) end
  function h:create_conv()
    return self:change({ operation = "create", object = { type = "Conversation", id = CONV }, data = {
      id = CONV, participants = layer.array({ { id = "layer:///identities/alice", user_id = "alice" } }),
      metadata = { title = "t" }, distinct = true } })
  end
  function h:create_msg(i, text)
    return self:change({ operation = "create", object = { type = "Message", id = msg_id(i) }, data = {
      id = msg_id(i), position = i, conversation = { id = CONV }, recipient_status = {},
      sender = { id = "layer:///identities/bob", user_id = "bob", display_name = "Bob" },
      parts = layer.array({ { body = text or ("m" .. i), mime_type = "text/plain" } }) } })
  end
  -- answer every socket request taken so far with fn(request) -> success, data
  function h:answer(frames, fn)
    for _, f in ipairs(frames) do
      if f.type == "request" then
        local ok, data = fn(f.body)
        self:push("response", { request_id = f.body.request_id, method = f.body.method, success = ok, data = data })
      end
    end
  end
  return h
end

return M
