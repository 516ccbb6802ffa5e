-- layer.client against the local server over real HTTP and WebSocket:
-- login, conversations, messages, receipts, metadata, deletes, typing, and
-- the server's fault injections (closed sockets, skipped counters, 429/503,
-- expired sessions, stalled sockets, a restart), counting that handlers see
-- every change exactly once.
local layer = require "layer"
local srv = require "support.layer_server"

local live = require "support.live"

local APP = live.APP
local new_client, pump, run = live.client, live.pump, live.run

local ready = live.ready

describe("layer.client with the local server", function()
  local server, alice, bob, all
  before_each(function()
    server = srv.start({ lifetime = 90 })
    alice, bob = new_client(server, "alice"), new_client(server, "bob")
    all = { alice, bob }
    ready(all)
  end)
  after_each(function()
    for _, c in ipairs(all or {}) do c:close() end
    if server then server:stop() end
  end)

  it("lets users with spaces, '*' and non-ASCII letters in their ids log in and chat", function()
    local jane, jose, star = new_client(server, "jane doe"), new_client(server, "josé"), new_client(server, "a*b")
    for _, c in ipairs({ jane, jose, star }) do all[#all + 1] = c end
    ready({ jane, jose, star })
    -- identity ids are encoded as layer-websdk encodes its own user (strictEncodeURI)
    assert.are.equal("layer:///identities/jane%20doe", jane.user.id)
    assert.are.equal("layer:///identities/jos%C3%A9", jose.user.id)
    assert.are.equal("layer:///identities/a*b", star.user.id)
    local got = {}
    for _, c in ipairs({ jose, star }) do
      c:on("message", function(msg) got[#got + 1] = { c.user.user_id, msg.sender.user_id, msg.sender.id, msg:text() } end)
    end
    local conv = assert(run(all, jane, function()
      return jane:create_conversation({ participants = { "jane doe", "josé", "a*b" } })
    end))
    assert(run(all, jane, function() return conv:send("hola") end))
    pump(all, function() return #got == 2 end, 10, "both recipients")
    for _, g in ipairs(got) do
      assert.are.equal("jane doe", g[2])
      assert.are.equal("layer:///identities/jane%20doe", g[3])
      assert.are.equal("hola", g[4])
    end
    local ident = assert(run(all, jose, function() return jose:identity("a*b") end))
    assert.are.equal("layer:///identities/a*b", ident.id)
  end)

  it("gives a user with ', (, ), ~ and ! in their id the one identity id the server and layer-websdk use", function()
    local ob = new_client(server, "o'brien (~ok!)")
    all[#all + 1] = ob
    ready({ ob })
    assert.are.equal("layer:///identities/o%27brien%20%28%7Eok%21%29", ob.user.id)
    local got
    ob:on("message", function(msg) got = msg end)
    local conv = assert(run(all, alice, function()
      return alice:create_conversation({ participants = { "o'brien (~ok!)" } })
    end))
    assert(run(all, alice, function() return conv:send("hi") end))
    pump(all, function() return got ~= nil end, 10, "the message")
    -- the server's keys are the client's own id, so the user finds themself
    assert.is_not_nil(got.recipient_status[ob.user.id])
    local ids = {}
    for _, p in ipairs(got.conversation.participants) do ids[#ids + 1] = p.id end
    table.sort(ids)
    assert.are.same({ "layer:///identities/alice", ob.user.id }, ids)
  end)

  it("logs in through the challenge and knows its user", function()
    assert.are.equal("alice", alice.user.user_id)
    assert.is_string(alice.session_token)
    assert.are.same({}, alice.errors)
  end)

  it("creates a distinct conversation once, lists it, and pages messages", function()
    local conv, err = run(all, alice, function()
      return alice:create_conversation({ participants = { "alice", "bob" }, distinct = true, metadata = { title = "lunch" } })
    end)
    assert.is_nil(err)
    assert.are.equal("lunch", conv.metadata.title)
    local again = run(all, alice, function() return alice:create_conversation({ participants = { "bob", "alice" }, distinct = true, metadata = { title = "lunch" } }) end)
    assert.are.equal(conv, again) -- the same conversation, the same object
    local list = run(all, bob, function() return bob:conversations({ page_size = 10 }) end)
    assert.are.equal(1, #list)
    assert.are.equal(conv.id, list[1].id)
    for i = 1, 5 do run(all, alice, function() return conv:send("m" .. i) end) end
    local page = run(all, bob, function() return list[1]:messages({ page_size = 3 }) end)
    assert.are.equal(3, #page)
    assert.are.equal(5, page.total)
    assert.are.equal("m5", page[1].parts[1].body) -- newest first
  end)

  it("delivers messages both ways as change packets, and an echo bot answers", function()
    local seen = { alice = {}, bob = {} }
    alice:on("message", function(m) table.insert(seen.alice, m.parts[1].body) end)
    bob:on("message", function(m)
      table.insert(seen.bob, m.parts[1].body)
      if m.sender.user_id ~= bob.user.user_id then m.conversation:send("echo: " .. m.parts[1].body) end
    end)
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    run(all, alice, function() return conv:send("hi") end)
    pump(all, function() return #seen.alice == 2 and #seen.bob == 2 end, 10, "the echo on both sides")
    assert.are.same({ "hi", "echo: hi" }, seen.alice)
    assert.are.same({ "hi", "echo: hi" }, seen.bob)
  end)

  it("updates metadata, receipts and deletes through change packets", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" }, metadata = { title = "a" } }) end)
    local msg = run(all, alice, function() return conv:send("read me") end)
    local bob_conv
    pump(all, function() bob_conv = bob:engine():object(conv.id); return bob_conv ~= nil end, 10, "bob's copy")
    local meta_change, status_change, deleted
    bob:on("conversation.update", function(c, changes)
      for _, ch in ipairs(changes) do if ch.property == "metadata" then meta_change = { new = ch.new } end end
    end)
    alice:on("message.update", function(m, changes)
      for _, ch in ipairs(changes) do
        if ch.property == "recipient_status" then status_change = { old = ch.old, new = ch.new } end
      end
    end)
    bob:on("message.delete", function(m, mode) deleted = { m, mode } end)
    run(all, alice, function() return conv:set_metadata("title", "b") end)
    pump(all, function() return meta_change ~= nil end, 10, "metadata change")
    assert.are.equal("b", meta_change.new.title)
    assert.are.equal("b", bob_conv.metadata.title)
    local bob_msg = bob:engine():object(msg.id)
    run(all, bob, function() return bob_msg:mark_read() end)
    pump(all, function() return status_change ~= nil end, 10, "recipient_status")
    local bob_identity
    for id, st in pairs(msg.recipient_status) do if id:match("bob") then bob_identity = st end end
    assert.are.equal("read", bob_identity)
    run(all, alice, function() return msg:delete({ mode = "all_participants" }) end)
    pump(all, function() return deleted ~= nil and msg.deleted end, 10, "the delete on both sides")
    assert.is_true(deleted[1].deleted)
    assert.is_true(msg.deleted)
  end)

  it("adds and removes participants, seen as patches of the participants list", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" }, distinct = false }) end)
    local changes = {}
    alice:on("conversation.update", function(c, list)
      for _, ch in ipairs(list) do if ch.property == "participants" then changes[#changes + 1] = ch end end
    end)
    local _, err = run(all, alice, function() return conv:add_participants({ "carol" }) end)
    assert.is_nil(err)
    pump(all, function() return #changes == 1 end, 10, "the add")
    local ids = {}
    for _, p in ipairs(conv.participants) do ids[#ids + 1] = p.user_id end
    table.sort(ids)
    assert.are.same({ "alice", "bob", "carol" }, ids)
    _, err = run(all, alice, function() return conv:remove_participants({ "bob" }) end)
    assert.is_nil(err)
    pump(all, function() return #changes == 2 end, 10, "the remove")
    ids = {}
    for _, p in ipairs(conv.participants) do ids[#ids + 1] = p.user_id end
    table.sort(ids)
    assert.are.same({ "alice", "carol" }, ids)
  end)

  it("speaks API 2.0 when asked, receiving 'update' packets", function()
    local old = new_client(server, "dave", { api_version = 2 })
    all[#all + 1] = old
    ready({ old })
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "dave" }, metadata = { x = "1" } }) end)
    local seen
    old:on("conversation.update", function(c, list) seen = { { new = list[1].new } } end)
    pump(all, function() return old:engine():object(conv.id) ~= nil end, 10, "dave's copy")
    run(all, alice, function() return conv:set_metadata("x", "2") end)
    pump(all, function() return seen ~= nil end, 10, "the update")
    assert.are.equal("2", seen[1].new.x)
    assert.are.equal("layer-2.0", old:engine():subprotocol())
  end)

  it("relays typing indicators", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    pump(all, function() return bob:engine():object(conv.id) ~= nil end, 10, "bob's copy")
    local typing
    bob:on("typing", function(c, sender, action) typing = { c, sender, action } end)
    conv:typing("started")
    pump(all, function() return typing ~= nil end, 10, "typing")
    assert.are.equal("started", typing[3])
    assert.are.equal(conv.id, typing[1].id)
    assert.is_truthy(tostring(typing[2] and typing[2].id):find("alice", 1, true))
  end)

  local function count_messages(c)
    local counts, total = {}, { n = 0 }
    c:on("message", function(m)
      counts[m.id] = (counts[m.id] or 0) + 1
      total.n = total.n + 1
    end)
    return counts, total
  end

  local function each_once(counts, n)
    local k = 0
    for _, v in pairs(counts) do
      assert.are.equal(1, v)
      k = k + 1
    end
    assert.are.equal(n, k)
  end

  it("reconnects after the server closes its sockets and replays what it missed, once", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local counts, total = count_messages(bob)
    run(all, alice, function() return conv:send("before") end)
    pump(all, function() return total.n == 1 end, 10, "first message")
    local synced = false
    bob:on("synced", function() synced = true end)
    server:admin("faults", { type = "close_sockets", user_id = "bob" })
    -- alice keeps talking while bob is away
    for i = 1, 5 do run({ alice }, alice, function() return conv:send("while away " .. i) end) end
    pump(all, function() return synced and total.n == 6 end, 15, "replay after reconnect")
    each_once(counts, 6)
  end)

  -- 64 parts of 2 KB: a 131 KB packet; 140 of them exceed the server's 16 MiB socket queue
  local function big_message(i)
    local parts = {}
    for k = 1, 64 do parts[k] = string.rep(string.char(65 + (i + k) % 26), 2048) end
    return { parts = parts }
  end

  it("receives a backlog larger than the server's socket queue in one replay", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local counts, total = count_messages(bob)
    run(all, alice, function() return conv:send("before") end)
    pump(all, function() return total.n == 1 end, 10, "first message")
    server:admin("faults", { type = "close_sockets", user_id = "bob" })
    for i = 1, 140 do run({ alice }, alice, function() return conv:send(big_message(i)) end) end
    local replays0 = bob:stats().replays
    pump(all, function() return total.n == 141 end, 60, "the whole backlog")
    each_once(counts, 141)
    assert.are.equal(1, bob:stats().replays - replays0)
  end)

  it("resumes an interrupted replay where it stopped, losing and repeating nothing", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local counts, total = count_messages(bob)
    run(all, alice, function() return conv:send("before") end)
    pump(all, function() return total.n == 1 end, 10, "first message")
    server:admin("faults", { type = "close_sockets", user_id = "bob" })
    for i = 1, 60 do run({ alice }, alice, function() return conv:send(big_message(i)) end) end
    -- cut the replay off once part of the backlog has arrived
    local cut = false
    bob:on("message", function()
      if not cut and total.n >= 10 then
        cut = true
        server:admin("faults", { type = "close_sockets", user_id = "bob" })
      end
    end)
    pump(all, function() return total.n == 61 end, 60, "the backlog after the cut")
    assert.is_true(cut)
    each_once(counts, 61)
    assert.is_true(bob:stats().replays >= 2)
  end)

  it("recovers skipped counters through Event.replay without duplicates", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local counts, total = count_messages(bob)
    server:admin("faults", { type = "skip_counter", user_id = "bob", count = 2 })
    for i = 1, 4 do run(all, alice, function() return conv:send("m" .. i) end) end
    pump(all, function() return total.n == 4 end, 10, "messages")
    pump(all, function() return bob:stats().replays >= 1 end, 10, "a replay")
    each_once(counts, 4)
    assert.is_true(bob:stats().gaps >= 1)
  end)

  it("applies identical changes sent together: x, y, x leaves x, with nothing suppressed", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" }, metadata = { title = "start" } }) end)
    local bob_conv
    pump(all, function() bob_conv = bob:engine():object(conv.id); return bob_conv ~= nil end, 10, "bob's copy")
    local titles = {}
    bob:on("conversation.update", function(c, changes)
      for _, ch in ipairs(changes) do
        if ch.property == "metadata.title" or ch.property == "metadata" then titles[#titles + 1] = c.metadata.title end
      end
    end)
    local suppressed0 = bob:stats().duplicates_suppressed
    for round = 1, 5 do
      local done = 0
      titles = {}
      -- three requests in flight at once: the server handles them in the same millisecond
      for _, t in ipairs({ "x", "y", "x" }) do
        alice:spawn(function() assert(conv:set_metadata("title", t)); done = done + 1 end)
      end
      pump(all, function() return done == 3 and #titles == 3 end, 10, "three title changes (round " .. round .. ")")
      assert.are.equal("x", bob_conv.metadata.title)
      local fresh = run(all, bob, function() return bob:request("GET", "/conversations/" .. conv.id:match("[^/]+$")) end)
      assert.are.equal("x", fresh.metadata.title)
      run(all, alice, function() return conv:set_metadata("title", "start") end)
      pump(all, function() return #titles == 4 end, 10, "reset")
    end
    assert.are.equal(suppressed0, bob:stats().duplicates_suppressed)
  end)

  it("shows a peer's new name on messages already received once their profile changes", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local got
    bob:on("message", function(m) got = m end)
    run(all, alice, function() return conv:send("hi") end)
    pump(all, function() return got ~= nil end, 10, "the message")
    assert.are.equal("ALICE", got.sender.display_name)
    server:admin("identities", { user_id = "alice", display_name = "Alice Liddell" })
    pump(all, function() return got.sender.display_name == "Alice Liddell" end, 10, "the new name on bob's side")
    assert.are.equal("alice", got.sender.user_id)
    assert.are.equal("Identity", got.sender.object_type)
  end)

  it("hands every identity.delete of a follow / unfollow / follow / unfollow to its handler", function()
    server:admin("identities", { user_id = "dora", display_name = "Dora" })
    local dora = assert(run(all, alice, function() return alice:identity("dora") end))
    local deletes, creates = 0, 0
    alice:on("identity.delete", function() deletes = deletes + 1 end)
    alice:on("identity.create", function() creates = creates + 1 end)
    for _ = 1, 2 do
      assert(run(all, alice, function() return dora:follow() end))
      assert(run(all, alice, function() return dora:unfollow() end))
    end
    pump(all, function() return deletes == 2 end, 10, "two identity.delete events")
    assert.are.equal(0, alice:stats().duplicates_suppressed)
  end)

  it("rides out 429 and 503 answers", function()
    server:admin("faults", { type = "http_error", status = 429, count = 2, seconds = 1 })
    local list, err = run(all, alice, function() return alice:conversations() end, 15)
    assert.is_nil(err)
    assert.are.equal(0, #list)
    server:admin("faults", { type = "http_error", status = 503, count = 1, seconds = 1 })
    local conv
    conv, err = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end, 15)
    assert.is_nil(err)
    assert.is_truthy(conv.id)
  end)

  it("re-authenticates transparently when the session expires", function()
    local challenges = 0
    local c = new_client(server, "carol", {
      identity = function(nonce)
        challenges = challenges + 1
        return layer.dev_token({ secret = srv.SECRET, user_id = "carol", nonce = nonce })
      end,
    })
    all[#all + 1] = c
    ready({ c })
    server:admin("faults", { type = "expire_session", user_id = "carol" })
    local list, err = run(all, c, function() return c:conversations() end, 15)
    assert.is_nil(err)
    assert.is_table(list)
    assert.are.equal(2, challenges)
  end)

  it("delivers packets held by a stalled socket, in order", function()
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local got = {}
    bob:on("message", function(m) got[#got + 1] = m.parts[1].body end)
    server:admin("faults", { type = "stall_socket", user_id = "bob", seconds = 1 })
    for i = 1, 3 do run({ alice }, alice, function() return conv:send("s" .. i) end) end
    pump(all, function() return #got == 3 end, 10, "stalled packets")
    assert.are.same({ "s1", "s2", "s3" }, got)
  end)

  it("sends parts over 2 KB as rich content, and part:download() returns them byte for byte", function()
    local bytes = {}
    for i = 0, 12287 do bytes[#bytes + 1] = string.char(i % 256) end
    local blob = table.concat(bytes) -- every byte value, NULs included: 12 KB
    local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
    local got
    bob:on("message", function(m)
      local part = m.parts[1]
      got = { part.content, part:download(), m.parts[2]:download() }
    end)
    local sent, err = run(all, alice, function()
      return conv:send({ parts = { { body = blob, mime_type = "application/octet-stream" }, "caption" } })
    end)
    assert.is_nil(err)
    assert.is_table(sent.parts[1].content)
    pump(all, function() return got ~= nil end, 10, "the download")
    assert.are.equal(#blob, got[1].size)
    assert.are.equal("layer:///content/", got[1].id:sub(1, 17))
    assert.is_true(got[2] == blob, "downloaded data differs")
    assert.are.equal("caption", got[3])
  end)

  it("receives announcements, lists, reads and deletes them", function()
    local created
    bob:on("announcement.create", function(a) created = a end)
    local st = server:admin("announcements", { recipients = { "bob" }, parts = { { body = "maintenance at noon", mime_type = "text/plain" } } })
    assert.are.equal(201, st)
    pump(all, function() return created ~= nil end, 10, "the announcement")
    assert.are.equal("Announcement", created.object_type)
    assert.are.equal("maintenance at noon", created.parts[1].body)
    local list = run(all, bob, function() return bob:announcements() end)
    assert.are.equal(1, #list)
    assert.are.equal(created, list[1])
    local ok, err = run(all, bob, function() return created:mark_read() end)
    assert.is_nil(err)
    ok, err = run(all, bob, function() return created:delete() end)
    assert.is_nil(err)
    assert.is_true(ok)
  end)

  it("looks up identities and follows them", function()
    server:admin("identities", { user_id = "dora", display_name = "Dora" })
    local dora, err = run(all, alice, function() return alice:identity("dora") end)
    assert.is_nil(err)
    assert.are.equal("Dora", dora.display_name)
    assert.are.equal("Identity", dora.object_type)
    local ok
    ok, err = run(all, alice, function() return dora:follow() end)
    assert.is_nil(err)
    ok, err = run(all, alice, function() return dora:unfollow() end)
    assert.is_nil(err)
    assert.is_true(ok)
    local missing
    missing, err = run(all, alice, function() return alice:identity("nobody-at-all") end)
    assert.is_nil(missing)
    assert.are.equal(404, err.http_status)
  end)

  it("refuses bad ids before anything reaches a URL", function()
    assert.has_error(function() alice:conversation("layer:///conversations/../../admin/faults", function() end) end)
    assert.has_error(function() alice:identity("bob\r\nX-Evil: 1", function() end) end)
  end)
end)

describe("layer.client across a server restart", function()
  it("sees every message exactly once after the server restarts on the same file", function()
    local db = os.tmpname()
    local server = srv.start({ db = db, lifetime = 90 })
    local port = server.port
    local alice, bob = new_client(server, "alice"), new_client(server, "bob")
    local all = { alice, bob }
    local ok, err = pcall(function()
      ready(all)
      local conv = run(all, alice, function() return alice:create_conversation({ participants = { "bob" } }) end)
      local counts, total = {}, { n = 0 }
      bob:on("message", function(m) counts[m.id] = (counts[m.id] or 0) + 1; total.n = total.n + 1 end)
      for i = 1, 3 do run(all, alice, function() return conv:send("a" .. i) end) end
      pump(all, function() return total.n == 3 end, 10, "first messages")
      server:stop()
      server = srv.start({ db = db, lifetime = 90, port = port })
      for i = 1, 3 do run(all, alice, function() return conv:send("b" .. i) end, 20) end
      pump(all, function() return total.n == 6 end, 20, "messages after the restart")
      for _, v in pairs(counts) do assert.are.equal(1, v) end
    end)
    alice:close()
    bob:close()
    server:stop()
    os.remove(db)
    assert(ok, err)
  end)
end)
