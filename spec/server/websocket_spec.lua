-- spec/server/websocket_spec.lua - layer-server WebSocket: envelope, counters, requests, change packets per API version, replay, typing, presence.
local L = require("support.layer_server")

local function is_iso(s)
  return type(s) == "string" and s:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") ~= nil
end

describe("layer-server websocket", function()
  local srv, ta, tb
  setup(function()
    srv = L.start()
    ta = srv:session("alice")
    tb = srv:session("bob")
  end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  it("upgrades on /, /websocket and /ws/ and echoes the subprotocol", function()
    for _, path in ipairs { "/", "/websocket", "/ws/" } do
      for _, proto in ipairs { "layer-2.0", "layer-3.0" } do
        local w = assert(srv:ws(ta, { path = path, protocol = proto }))
        assert.equal(proto, w.protocol)
        w:close()
      end
    end
  end)

  it("refuses a bad session, a missing subprotocol and unknown paths", function()
    assert.is_nil((srv:ws("bad-token")))
    assert.is_nil((srv:ws(nil)))
    assert.is_nil((srv:ws(ta, { protocol = false })))
    assert.is_nil((srv:ws(ta, { protocol = "layer-1.0" })))
    assert.is_nil((srv:ws(ta, { path = "/other" })))
  end)

  it("numbers packets from 0 by 1 with non-decreasing ISO timestamps; Counter.read", function()
    local w = assert(srv:ws(ta))
    local last = ""
    for i = 0, 4 do
      local p = assert(w:request("Counter.read"))
      assert.equal("response", p.type)
      assert.equal(i, p.counter)
      assert.truthy(is_iso(p.timestamp))
      assert.truthy(p.timestamp >= last)
      last = p.timestamp
      assert.is_true(p.body.success)
      assert.equal("Counter.read", p.body.method)
      assert.equal(math.max(i - 1, 0), p.body.data.counter)
    end
    w:close()
  end)

  it("presence methods that layer-websdk sends on connect succeed", function()
    local w = assert(srv:ws(ta, { protocol = "layer-2.0" }))
    assert.is_true(w:request("Presence.subscribe").body.success)
    assert.is_true(w:request("Presence.update", { { operation = "set", property = "status", value = "auto" } }).body.success)
    local p = w:request("Presence.sync", { since = "2020-01-01T00:00:00.000Z" })
    assert.is_true(p.body.success)
    assert.same({}, p.body.data.changes)
    p = w:request("Presence.sync", { ids = { "layer:///identities/alice" } })
    assert.equal(1, #p.body.data.changes)
    assert.equal("update", p.body.data.changes[1].operation)
    assert.equal("presence.status", p.body.data.changes[1].data[1].property)
    assert.equal("available", p.body.data.changes[1].data[1].value)
    -- a status change reaches the user's sockets (and those of users sharing a conversation)
    assert.is_true(w:request("Presence.update", { { operation = "set", property = "status", value = "away" } }).body.success)
    local pp = assert(w:wait(function(p) return p.type == "change" and p.body.object.id == "layer:///identities/alice"
      and p.body.operation == "update" and p.body.data[1].value == "away" end))
    assert.equal("Identity", pp.body.object.type)
    assert.equal("presence.status", pp.body.data[1].property)
    assert.equal("away", pp.body.data[1].value)
    local bad = w:request("Presence.update", { { operation = "set", property = "status", value = "sleepy" } })
    assert.is_false(bad.body.success)
    assert.equal("invalid_property", bad.body.data.id)
    w:close()
  end)

  it("takes a user whose presence is auto offline when their last socket closes, and back with the next", function()
    local tp, tq = srv:session("pres-p"), srv:session("pres-q")
    local wq = assert(srv:ws(tq))
    assert.is_true(wq:request("Conversation.create", { participants = { "pres-p", "pres-q" },
      id = "layer:///conversations/" .. L.uuid() }).body.success)
    local p1, p2 = assert(srv:ws(tp)), assert(srv:ws(tp))
    assert.is_true(p1:request("Presence.update", { { operation = "set", property = "status", value = "auto" } }).body.success)
    local function status_seen(value)
      return wq:wait(function(p)
        return p.type == "change" and p.body.object.id == "layer:///identities/pres-p" and p.body.data[1].value == value
      end, 5)
    end
    assert.truthy(status_seen("available"))
    p1:close()
    -- one socket is still open: nothing changes; then the last one closes
    p2:request("Presence.subscribe")
    p2:close()
    local off = assert(status_seen("offline"))
    assert.equal("presence.status", off.body.data[1].property)
    local sync = wq:request("Presence.sync", { ids = { "layer:///identities/pres-p" } })
    assert.equal("offline", sync.body.data.changes[1].data[1].value)
    local p3 = assert(srv:ws(tp))
    assert.truthy(status_seen("available"))
    p3:close(); wq:close()
  end)

  it("escapes dots in a reader's id in the receipt patch, so a Layer-Patch client reads it back whole", function()
    local td = srv:session("dot.reader")
    local wa = assert(srv:ws(ta, { protocol = "layer-3.0" }))
    local cid = "layer:///conversations/" .. L.uuid()
    assert.is_true(wa:request("Conversation.create", { participants = { "layer:///identities/alice",
      "layer:///identities/dot.reader" }, distinct = false, id = cid }).body.success)
    local mid = "layer:///messages/" .. L.uuid()
    assert.is_true(wa:request("Message.create", { parts = { { mime_type = "text/plain", body = "hi" } }, id = mid },
      cid).body.success)
    assert.truthy(wa:change(mid, "create"))
    assert.equal(204, (srv:request { method = "POST", path = "/messages/" .. mid:sub(19) .. "/receipts", token = td,
      body = { type = "read" } }))
    local rs = assert(wa:change(mid, "patch"))
    assert.equal("recipient_status.layer:///identities/dot\\.reader", rs.body.data[1].property)
    assert.equal("read", rs.body.data[1].value)
    wa:close()
  end)

  it("creates conversations and messages over the socket with change packets to everyone, actor included", function()
    local wa = assert(srv:ws(ta, { protocol = "layer-3.0" }))
    local wa2 = assert(srv:ws(ta, { protocol = "layer-2.0" }))
    local wb = assert(srv:ws(tb, { protocol = "layer-2.0" }))
    local cid = "layer:///conversations/" .. L.uuid()
    local r = wa:request("Conversation.create", { participants = { "layer:///identities/alice", "layer:///identities/bob" },
      distinct = false, metadata = { title = "t" }, id = cid })
    assert.is_true(r.body.success)
    assert.equal(cid, r.body.data.id)
    assert.equal(srv.base .. "/conversations/" .. cid:sub(24), r.body.data.url)
    for _, w in ipairs { wa, wa2, wb } do
      local c = assert(w:change(cid, "create"))
      assert.equal("Conversation", c.body.object.type)
      assert.equal(cid, c.body.data.id)
      assert.equal(2, #c.body.data.participants)
      assert.equal("t", c.body.data.metadata.title)
    end
    -- dedup: the same create again is id_in_use with the object
    local again = wa:request("Conversation.create", { participants = { "bob" }, distinct = false, id = cid })
    assert.is_false(again.body.success)
    assert.equal("id_in_use", again.body.data.id)
    assert.equal(111, again.body.data.code)
    assert.equal(cid, again.body.data.data.id)

    local mid = "layer:///messages/" .. L.uuid()
    local m = wa:request("Message.create", { parts = { { mime_type = "text/plain", body = "hello" } }, id = mid }, cid)
    assert.is_true(m.body.success)
    assert.equal(mid, m.body.data.id)
    assert.equal(1, m.body.data.position)
    assert.equal("hello", m.body.data.parts[1].body)
    assert.equal(mid .. "/parts/0", m.body.data.parts[1].id)
    assert.equal("alice", m.body.data.sender.user_id)
    assert.equal("read", m.body.data.recipient_status["layer:///identities/alice"])
    assert.equal("sent", m.body.data.recipient_status["layer:///identities/bob"])

    local mb = assert(wb:change(mid, "create"))
    assert.equal(cid, mb.body.data.conversation.id)
    assert.is_true(mb.body.data.is_unread)
    local pb = assert(wb:change(cid, "update"))
    assert.equal("last_message", pb.body.data[1].property)
    assert.equal(mid, pb.body.data[1].id)
    assert.equal(mid, pb.body.data[1].value.id)
    assert.equal("unread_message_count", pb.body.data[2].property)
    assert.equal(1, pb.body.data[2].value)
    -- the 3.0 socket sees "patch", the 2.0 socket "update"
    assert.truthy(wa:change(mid, "create"))
    local pa = assert(wa:change(cid, "patch"))
    assert.equal(0, pa.body.data[2].value)
    assert.truthy(wa2:change(cid, "update"))

    local dup = wa:request("Message.create", { parts = { { mime_type = "text/plain", body = "hello" } }, id = mid }, cid)
    assert.is_false(dup.body.success)
    assert.equal("id_in_use", dup.body.data.id)
    assert.equal(mid, dup.body.data.data.id)

    -- receipts drive recipient_status and unread_message_count
    local st = srv:request { method = "POST", path = "/messages/" .. mid:sub(19) .. "/receipts", token = tb,
      body = { type = "delivery" } }
    assert.equal(204, st)
    local rs = assert(wa:change(mid, "patch"))
    assert.equal("recipient_status.layer:///identities/bob", rs.body.data[1].property)
    assert.equal("delivered", rs.body.data[1].value)
    srv:request { method = "POST", path = "/messages/" .. mid:sub(19) .. "/receipts", token = tb, body = { type = "read" } }
    rs = assert(wa:change(mid, "patch"))
    assert.equal("read", rs.body.data[1].value)
    assert.equal(1, #rs.body.data) -- the sender's copy stays as it was: only the reader's is read
    -- the reader's own copy stops being unread in the same patch
    local own = assert(wb:wait(function(p)
      return p.type == "change" and p.body.object.id == mid and p.body.operation == "update"
        and p.body.data[1].value == "read"
    end))
    assert.equal("is_unread", own.body.data[2].property)
    assert.is_false(own.body.data[2].value)
    local ub = assert(wb:wait(function(p)
      return p.type == "change" and p.body.object.id == cid and p.body.data[1].property == "unread_message_count"
    end))
    assert.equal(0, ub.body.data[1].value)
    -- a repeated receipt is idempotent and silent
    assert.equal(204, (srv:request { method = "POST", path = "/messages/" .. mid:sub(19) .. "/receipts", token = tb, body = { type = "read" } }))
    wa:close(); wa2:close(); wb:close()
  end)

  it("finds distinct conversations and reports conflict on different metadata", function()
    local tc = srv:session("carol")
    local w = assert(srv:ws(tc))
    local r1 = w:request("Conversation.create", { participants = { "dave" }, distinct = true, metadata = { a = "1" },
      id = "layer:///conversations/" .. L.uuid() })
    assert.is_true(r1.body.success)
    local r2 = w:request("Conversation.create", { participants = { "dave", "carol" }, distinct = true,
      id = "layer:///conversations/" .. L.uuid() })
    assert.is_true(r2.body.success)
    assert.equal(r1.body.data.id, r2.body.data.id)
    local r3 = w:request("Conversation.create", { participants = { "dave" }, distinct = true, metadata = { a = "2" },
      id = "layer:///conversations/" .. L.uuid() })
    assert.is_false(r3.body.success)
    assert.equal("conflict", r3.body.data.id)
    assert.equal(108, r3.body.data.code)
    assert.equal(r1.body.data.id, r3.body.data.data.id)
    w:close()
  end)

  it("relays typing indicators to the other participants with the sender", function()
    local tc, td = srv:session("tina"), srv:session("tom")
    local wc, wd = assert(srv:ws(tc)), assert(srv:ws(td))
    local r = wc:request("Conversation.create", { participants = { "tom" }, distinct = false })
    local cid = r.body.data.id
    wc:send_json { type = "signal", body = { type = "typing_indicator", object = { id = cid }, data = { action = "started" } } }
    local s = assert(wd:wait(function(p) return p.type == "signal" end))
    assert.equal("typing_indicator", s.body.type)
    assert.equal(cid, s.body.object.id)
    assert.equal("started", s.body.data.action)
    assert.equal("layer:///identities/tina", s.body.data.sender.id)
    assert.equal("tina", s.body.data.sender.user_id)
    -- not echoed to the typist; a non-participant cannot signal
    local none = wc:wait(function(p) return p.type == "signal" end, 0.3)
    assert.is_nil(none)
    wc:close(); wd:close()
  end)

  it("replays the event log with Event.replay (changes before the response)", function()
    local te, tf = srv:session("eve"), srv:session("fay")
    local we = assert(srv:ws(te))
    local since = we:request("Counter.read").timestamp
    local r = we:request("Conversation.create", { participants = { "fay" }, distinct = false })
    local cid = r.body.data.id
    local ids = {}
    for i = 1, 3 do
      local m = we:request("Message.create", { parts = { { mime_type = "text/plain", body = "m" .. i } } }, cid)
      ids[#ids + 1] = m.body.data.id
    end
    we:close()
    -- fay was never connected: she gets it all by replay
    local wf = assert(srv:ws(tf))
    wf:send_json { type = "request", body = { method = "Event.replay", request_id = "rp", data = { from_timestamp = since } } }
    local seen, resp = {}, nil
    local last_counter = -1
    while true do
      local p = assert(wf:receive(5))
      assert.equal(last_counter + 1, p.counter)
      last_counter = p.counter
      if p.type == "response" then resp = p break end
      seen[#seen + 1] = p
    end
    assert.is_true(resp.body.success)
    assert.equal(cid, seen[1].body.object.id)
    assert.equal("create", seen[1].body.operation)
    local created = {}
    for _, p in ipairs(seen) do
      if p.body.operation == "create" and p.body.object.type == "Message" then created[#created + 1] = p.body.object.id end
    end
    assert.same(ids, created)
    local bad = wf:request("Event.replay", { from_timestamp = "yesterday" })
    assert.is_false(bad.body.success)
    assert.equal("invalid_property", bad.body.data.id)
    wf:close()
  end)

  it("stamps each recipient's events with strictly increasing timestamps, live and replayed alike", function()
    local tg, th = srv:session("gil"), srv:session("hal")
    local wg, wh = assert(srv:ws(tg)), assert(srv:ws(th))
    local since = wh:request("Counter.read").timestamp
    local cid = wg:request("Conversation.create", { participants = { "hal" }, distinct = false }).body.data.id
    -- three patches in flight together: the server handles them within a millisecond
    for i, t in ipairs({ "x", "y", "x" }) do
      wg:send_json { type = "request", body = { method = "Message.create", request_id = "m" .. i, object_id = cid,
        data = { parts = { { mime_type = "text/plain", body = t } } } } }
    end
    local live = {}
    while true do -- the conversation, three messages and their conversation patches
      local p = wh:wait(function(p) return p.type == "change" end, #live < 4 and 5 or 0.5)
      if not p then break end
      live[#live + 1] = p.timestamp
    end
    assert.is_true(#live >= 4)
    for i = 2, #live do assert.is_true(live[i] > live[i - 1], live[i - 1] .. " then " .. live[i]) end
    local wr = assert(srv:ws(th))
    wr:send_json { type = "request", body = { method = "Event.replay", request_id = "rp", data = { from_timestamp = since } } }
    local replayed = {}
    while true do
      local p = assert(wr:receive(5))
      if p.type == "response" then break end
      replayed[#replayed + 1] = p.timestamp
    end
    assert.same(live, replayed)
    wg:close(); wh:close(); wr:close()
  end)

  it("pushes an identity's profile change to the user, followers and conversation peers only", function()
    local tk, tl, tm, tn = srv:session("kim"), srv:session("lou"), srv:session("max"), srv:session("ned")
    local wk, wl, wm, wn = assert(srv:ws(tk)), assert(srv:ws(tl)), assert(srv:ws(tm)), assert(srv:ws(tn))
    wk:request("Conversation.create", { participants = { "lou" }, distinct = false })
    assert(wl:wait(function(p) return p.type == "change" and p.body.object.type == "Conversation" end, 5))
    assert.equal(204, (srv:request { method = "PUT", path = "/following/users/kim", token = tm }))
    local since = wl:request("Counter.read").timestamp
    srv:admin("identities", { user_id = "kim", display_name = "Kim K." })
    local function profile_patch(p)
      return p.type == "change" and p.body.object.type == "Identity" and p.body.object.id == "layer:///identities/kim"
        and p.body.operation == "patch"
    end
    for _, w in ipairs({ wk, wl, wm }) do
      local p = assert(w:wait(profile_patch, 5))
      assert.same({ { operation = "set", property = "display_name", value = "Kim K." } }, p.body.data)
    end
    assert.is_nil((wn:wait(profile_patch, 0.5)))
    -- the same value again changes nothing and pushes nothing
    srv:admin("identities", { user_id = "kim", display_name = "Kim K." })
    assert.is_nil((wl:wait(profile_patch, 0.5)))
    -- new claims in an identity token at login are a change too
    srv:login("kim", { display_name = "Kimberly" })
    local p = assert(wl:wait(profile_patch, 5))
    assert.equal("Kimberly", p.body.data[1].value)
    -- and a peer who was away gets both by replay
    local wr = assert(srv:ws(tl))
    wr:send_json { type = "request", body = { method = "Event.replay", request_id = "rp", data = { from_timestamp = since } } }
    local names = {}
    while true do
      local q = assert(wr:receive(5))
      if q.type == "response" then break end
      if profile_patch(q) then names[#names + 1] = q.body.data[1].value end
    end
    assert.same({ "Kim K.", "Kimberly" }, names)
    for _, w in ipairs({ wk, wl, wm, wn, wr }) do w:close() end
  end)

  it("answers unknown methods and malformed packets with error responses", function()
    local w = assert(srv:ws(ta))
    local r = w:request("Nope.method")
    assert.is_false(r.body.success)
    assert.equal("invalid_endpoint", r.body.data.id)
    w:send_json { type = "request", body = { request_id = "x1" } }
    r = assert(w:wait(function(p) return p.type == "response" and p.body.request_id == "x1" end))
    assert.equal("missing_property", r.body.data.id)
    w:send_json { type = "weird", body = {} }
    r = assert(w:wait(function(p) return p.type == "response" end))
    assert.is_false(r.body.success)
    r = w:request("Message.create", { parts = { { mime_type = "text/plain", body = "x" } } }, "layer:///conversations/" .. L.uuid())
    assert.equal("not_found", r.body.data.id)
    assert.is_true(w:request("Counter.read").body.success)
    w:close()
  end)

  it("closes the socket cleanly on frames that are not JSON, and keeps serving others", function()
    local other = assert(srv:ws(tb))
    for _, bad in ipairs { "not json", "{\"type\":", "\255\254" } do
      local w = assert(srv:ws(ta))
      w:send_text(bad)
      local p, err, code = w:receive(3)
      assert.is_nil(p)
      assert.equal("closed", err)
      assert.truthy(code == 1007 or code == 1002, tostring(code))
      w:close()
    end
    local wbin = assert(srv:ws(ta))
    wbin:send_binary("{}")
    local _, err2, code2 = wbin:receive(3)
    assert.equal("closed", err2)
    assert.equal(1003, code2)
    wbin:close()
    assert.is_true(other:request("Counter.read").body.success)
    other:close()
  end)
end)
