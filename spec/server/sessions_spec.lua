-- spec/server/sessions_spec.lua - what a session grants once it is over: a logged-out or
-- expired session's sockets are closed at once and their requests are refused.
local L = require("support.layer_server")

describe("layer-server session end", function()
  local srv
  after_each(function()
    if srv then srv:stop_checked() end
    srv = nil
  end)

  -- alice's socket on session ta, and a conversation bob writes into
  local function setup_pair()
    local ta, tb = srv:session("alice"), srv:session("bob")
    local wa, wb = assert(srv:ws(ta)), assert(srv:ws(tb))
    local cid = wb:request("Conversation.create", { participants = { "alice" }, distinct = false }).body.data.id
    assert(wa:change(cid, "create", 5))
    return ta, wa, wb, cid
  end

  local function send(w, cid, text)
    return w:request("Message.create", { parts = { { mime_type = "text/plain", body = text } } }, cid)
  end

  it("closes the sockets of a session deleted with DELETE /sessions/<token>, and only those", function()
    srv = L.start()
    local ta, wa, wb, cid = setup_pair()
    local other = assert(srv:ws(srv:session("alice"))) -- alice on another device keeps hers
    assert.equal(204, (srv:request { method = "DELETE", path = "/sessions/" .. ta, token = ta }))
    local _, err = wa:wait(function() return false end, 3)
    assert.equal("closed", err)
    assert.is_truthy(wa.closed)
    local m = assert(send(wb, cid, "after logout"))
    assert.is_true(m.body.success)
    assert(other:wait(function(p) return p.type == "change" and p.body.object.type == "Message" end, 5))
    other:close(); wb:close()
  end)

  it("refuses a request that arrives on a revoked session's socket before the close", function()
    srv = L.start()
    local ta, wa, _, cid = setup_pair()
    -- the logout and a Message.create race: the create must not happen
    assert.equal(204, (srv:request { method = "DELETE", path = "/sessions/" .. ta, token = ta }))
    wa:send_json { type = "request", body = { method = "Message.create", request_id = "late", object_id = cid,
      data = { parts = { { mime_type = "text/plain", body = "sent after logout" } } } } }
    wa:wait(function() return false end, 2)
    local tc = srv:session("carol")
    local st, _, _, list = srv:request { path = "/conversations/" .. cid:match("[^/]+$") .. "/messages",
      token = srv:session("bob") }
    assert.equal(200, st)
    for _, msg in ipairs(list) do assert.are_not.equal("sent after logout", msg.parts[1].body) end
    assert.is_string(tc)
  end)

  it("closes a socket when its session expires, without any request on it", function()
    srv = L.start({ args = "--session-ttl 2" })
    local _, wa, wb, cid = setup_pair()
    -- within the lifetime the socket works
    assert(send(wb, cid, "before expiry"))
    assert(wa:wait(function(p) return p.type == "change" and p.body.object.type == "Message" end, 3))
    local t0 = os.time()
    local _, err = wa:wait(function() return false end, 6)
    assert.equal("closed", err)
    assert.is_true(os.time() - t0 <= 4)
    wb:close()
  end)
end)
