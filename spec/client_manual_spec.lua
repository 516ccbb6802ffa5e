-- The client's logic without a network: a scripted server feeds the engine
-- (manual transport, manual clock) and the specs watch handlers, objects,
-- requests, replays, re-authentication, retries and reconnects.
local layer = require "layer"

local peer = require "support.scripted_peer" -- the scripted server around a manual client
local CONV, msg_id, harness = peer.CONV, peer.msg_id, peer.new

describe("client, manual transport", function()
  it("re-fetches an object once for a burst of failing patches, not once per packet", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:step()
    h:take_http()
    local errors = 0
    h.client:on("error", function() errors = errors + 1 end)
    for _ = 1, 20 do
      h:change({ operation = "update", object = { type = "Conversation", id = CONV },
        data = layer.array({ { operation = "add", property = "metadata.title", value = "x" } }) })
    end
    h:step()
    local gets = 0
    for _, r in ipairs(h:take_http()) do
      if r.method == "GET" and r.path:find("/conversations/", 1, true) then gets = gets + 1 end
    end
    assert.are.equal(1, gets)
    assert.is_true(errors >= 1)
  end)

  it("pays for a failing patch of 10,000 operations in proportion to its size", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:step()
    h:take_http()
    h.client:on("error", function() end)
    local before = h.client:stats().bytes
    local ops = {}
    for i = 1, 9999 do ops[i] = { operation = "set", property = ("metadata.k%05d"):format(i), value = "v" } end
    ops[10000] = { operation = "add", property = "metadata.title", value = "x" } -- fails: title is a string
    local packet = h:change({ operation = "update", object = { type = "Conversation", id = CONV }, data = layer.array(ops) })
    h:step()
    -- each added key copied the whole members array: 1.2 GB held for a 600 kB packet
    local grown = h.client:stats().bytes - before
    assert.is_true(grown < 4 * #packet, ("cache grew by %d bytes for a %d-byte packet"):format(grown, #packet))
    local conv = h.client:conversation(CONV)
    assert.are.equal("t", conv.metadata.title) -- and the failed patch changed nothing
    assert.is_nil(conv.metadata.k00001)
  end)

  it("logs in through the challenge, with the identity callback, and becomes ready", function()
    local h = harness()
    local seen = {}
    h.client:on("ready", function() seen[#seen + 1] = "ready" end)
    h.client:on("connected", function() seen[#seen + 1] = "connected" end)
    h:login()
    assert.are.same({ "ready", "connected" }, seen)
    assert.are.equal(1, h.nonces)
    assert.are.equal("alice", h.client.user.user_id)
    assert.are.equal("tok-1", h.client.session_token)
    local body = layer.json_decode(h.session_request.body)
    assert.are.equal("layer:///apps/staging/test", body.app_id)
    assert.is_truthy(body.identity_token:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$"))
  end)

  it("keeps a change that arrived before the answer to the create it follows", function()
    local h = harness()
    h:login()
    local sent
    h.client:on("conversation.create", function(conv) sent = conv:send("quick") end)
    h:create_conv()
    h:step()
    local frames = h:take_frames()
    local req
    for _, f in ipairs(frames) do if f.type == "request" then req = f.body end end
    local id = req.data.id
    local created = { id = id, position = 1, conversation = { id = CONV }, parts = req.data.parts,
      sender = { id = "layer:///identities/alice", user_id = "alice" },
      recipient_status = { ["layer:///identities/alice"] = "read", ["layer:///identities/bob"] = "sent" } }
    -- the peer reads it so fast that its receipt comes in the same read as the answer
    h:change({ operation = "create", object = { type = "Message", id = id }, data = created })
    h:push("response", { request_id = req.request_id, method = req.method, success = true, data = created })
    h:change({ operation = "patch", object = { type = "Message", id = id }, data = layer.array({
      { operation = "set", property = "recipient_status.layer:///identities/bob", value = "read" } }) })
    h:step()
    h:step()
    assert.are.equal(id, sent.id)
    assert.are.equal("read", sent.recipient_status["layer:///identities/bob"])
    assert.are.equal("read", h.client:engine():object(id).recipient_status["layer:///identities/bob"])
  end)

  it("gives a conversation's participants as the live Identities it holds", function()
    local h = harness()
    h:login()
    h:change({ operation = "create", object = { type = "Identity", id = "layer:///identities/alice" }, data = {
      id = "layer:///identities/alice", user_id = "alice", display_name = "Alice" } })
    h:create_conv()
    h:step()
    local conv = h.client:engine():object(CONV)
    local alice = conv.participants[1]
    assert.are.equal("userdata", type(alice))
    assert.are.equal("Identity", alice.object_type)
    h:change({ operation = "patch", object = { type = "Identity", id = "layer:///identities/alice" },
      data = layer.array({ { operation = "set", property = "display_name", value = "Alice B." } }) })
    h:step()
    assert.are.equal("Alice B.", conv.participants[1].display_name)
    assert.are.equal("Alice B.", alice.display_name)
  end)

  it("hands objects to handlers as userdata with live fields", function()
    local h = harness()
    h:login()
    local got = {}
    h.client:on("conversation.create", function(conv) got.conv = conv end)
    h.client:on("message", function(msg)
      got.msg = msg
      got.body = msg.parts[1].body
      got.sender = msg.sender.display_name
      got.same_conv = msg.conversation == got.conv
    end)
    h:create_conv()
    h:create_msg(1, "hello")
    h:step()
    assert.are.equal("userdata", type(got.conv))
    assert.are.equal(CONV, got.conv.id)
    assert.are.equal("t", got.conv.metadata.title)
    assert.are.equal("Conversation", got.conv.object_type)
    assert.are.equal("hello", got.body)
    assert.are.equal("Bob", got.sender)
    assert.is_true(got.same_conv)
    assert.is_false(got.msg.deleted)
    assert.has_error(function() got.conv.metadata = {} end)
    -- the same id gives the same userdata, so it can key a table
    local seen = { [got.conv] = true }
    assert.is_true(seen[h.client:conversation(CONV)])
  end)

  it("reports updates with their change list, and deletes leave objects readable", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:create_msg(1)
    local changes, deleted
    h.client:on("conversation.update", function(conv, list)
      changes = { conv = conv, list = list, old = list[1].old, new = list[1].new } -- values are read in the handler
    end)
    h.client:on("message.delete", function(msg, mode) deleted = { msg = msg, mode = mode } end)
    h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
      { operation = "set", property = "metadata.title", value = "new" } }) })
    h:change({ operation = "delete", object = { type = "Message", id = msg_id(1) }, data = { mode = "all_participants" } })
    h:step()
    assert.are.equal("metadata", changes.list[1].property)
    assert.are.equal("t", changes.old.title)
    assert.are.equal("new", changes.new.title)
    assert.are.equal(changes.old, changes.list[1].old) -- converted once, then kept by the list
    assert.are.equal("new", changes.conv.metadata.title)
    assert.is_true(deleted.msg.deleted)
    assert.are.equal("all_participants", deleted.mode)
    assert.are.equal("m1", deleted.msg.parts[1].body) -- still readable
  end)

  it("lets handlers send and get the result back, in straight-line code", function()
    local h = harness()
    h:login()
    local result, err_seen
    h.client:on("conversation.create", function(conv)
      local msg, err = conv:send("echo")
      result, err_seen = msg, err
    end)
    h:create_conv()
    h:step()
    assert.is_nil(result) -- waiting for the server
    local frames = h:take_frames()
    assert.are.equal(1, #frames)
    assert.are.equal("Message.create", frames[1].body.method)
    assert.are.equal(CONV, frames[1].body.object_id)
    local data = frames[1].body.data
    assert.is_truthy(data.id:match("^layer:///messages/"))
    assert.are.equal("echo", data.parts[1].body)
    h:answer(frames, function(req)
      return true, { id = req.data.id, position = 5, conversation = { id = CONV }, parts = req.data.parts }
    end)
    h:step()
    assert.is_nil(err_seen)
    assert.are.equal("userdata", type(result))
    assert.are.equal("echo", result.parts[1].body)
  end)

  it("answers in a conversation it never saw created: msg.conversation has its methods (a restarted bot)", function()
    local h = harness()
    h:login()
    local sent, fields
    h.client:on("message", function(msg)
      local conv = msg.conversation
      fields = { id = conv.id, title = conv.metadata }
      sent = { conv:send("echo: " .. msg:text()) }
    end)
    h:create_msg(1, "hi") -- no create of CONV was ever seen
    h:step()
    assert.are.equal(CONV, fields.id)
    assert.is_nil(fields.title) -- not cached yet: reading it starts a fetch
    local frames = h:take_frames()
    assert.are.equal(1, #frames)
    assert.are.equal("Message.create", frames[1].body.method)
    assert.are.equal(CONV, frames[1].body.object_id)
    assert.are.equal("echo: hi", frames[1].body.data.parts[1].body)
    local gets = h:take_http()
    assert.are.equal(1, #gets)
    assert.are.equal("GET", gets[1].method)
    assert.is_truthy(gets[1].path:find(CONV:match("[^/]+$"), 1, true))
    h:respond(gets[1], 200, { id = CONV, participants = layer.array({}), metadata = { title = "t" } })
    h:answer(frames, function(req)
      return true, { id = req.data.id, position = 2, conversation = { id = CONV }, parts = req.data.parts }
    end)
    h:step()
    assert.are.equal("userdata", type(sent[1]))
    -- once fetched, the reference reads the cached conversation
    local msg = h.client._c:object(msg_id(1))
    assert.are.equal("t", msg.conversation.metadata.title)
  end)

  it("treats id_in_use (a resend) as success, and returns typed errors", function()
    local h = harness()
    h:login()
    local outcomes = {}
    h.client:on("conversation.create", function(conv)
      outcomes[1] = { conv:send("a") }
      outcomes[2] = { conv:send("b") }
    end)
    h:create_conv()
    h:step()
    h:answer(h:take_frames(), function(req)
      return false, { id = "id_in_use", code = 111, message = "exists", data = { id = req.data.id, conversation = { id = CONV }, parts = req.data.parts } }
    end)
    h:step()
    assert.are.equal("a", outcomes[1][1].parts[1].body)
    h:answer(h:take_frames(), function()
      return false, { id = "not_found", code = 102, message = "The Conversation could not be found." }
    end)
    h:step()
    local err = outcomes[2][2]
    assert.is_nil(outcomes[2][1])
    assert.is_true(layer.is_error(err))
    assert.are.equal("not_found", err.id)
    assert.are.equal(102, err.code)
    assert.is_false(err.retryable)
    assert.is_truthy(tostring(err):find("not_found", 1, true))
  end)

  it("takes callbacks outside handlers, and refuses a bare call there", function()
    local h = harness()
    h:login()
    local got
    local id = h.client:request("GET", "/conversations?page_size=1", function(list, err) got = { list, err } end)
    assert.is_number(id)
    local reqs = h:take_http()
    assert.are.equal("/conversations?page_size=1", reqs[1].path)
    assert.is_true(reqs[1].authenticated)
    h:respond(reqs[1], 200, layer.array({}), nil, 7)
    h:step()
    assert.are.equal(0, #got[1])
    assert.has_error(function() h.client:conversations() end)
    assert.has_error(function() h.client:conversation("layer:///conversations/../../admin") end)
    assert.has_error(function() h.client:message("layer:///messages/x\r\ny") end)
  end)

  it("asks for a replay on a counter gap and fires each change once", function()
    local h = harness()
    h:login()
    local creates, updates = 0, 0
    h.client:on("message", function() creates = creates + 1 end)
    h.client:on("message.update", function() updates = updates + 1 end)
    h:create_conv()
    h:create_msg(1)
    local lost = h:create_msg(2) -- sent, then "lost"
    h.counter = h.counter + 1    -- the server skips a counter
    h:create_msg(3)
    h:step()
    local frames = h:take_frames()
    assert.are.equal("Event.replay", frames[1].body.method)
    assert.is_string(frames[1].body.data.from_timestamp)
    -- the replay resends 2 and 3 (already seen: applied idempotently, no new events)
    h.engine:feed((lost:gsub('"counter":%d+', '"counter":' .. h.counter)))
    h.counter = h.counter + 1
    h:create_msg(3)
    local synced
    h.client:on("synced", function(n) synced = n end)
    h:push("response", { request_id = frames[1].body.request_id, method = "Event.replay", success = true })
    h:step()
    assert.are.equal(3, creates)
    assert.are.equal(0, updates) -- the replayed creates changed nothing
    assert.is_number(synced)
    assert.is_true(h.client:stats().duplicates_suppressed >= 2)
  end)

  it("re-authenticates on a 401 with a nonce and retries the request unseen", function()
    local h = harness()
    h:login()
    local got
    h.client:request("GET", "/conversations", function(list, err) got = { list, err } end)
    local reqs = h:take_http()
    h:respond(reqs[1], 401, { id = "authentication_required", code = 4, data = { nonce = "n2" } })
    h:step() -- challenge with n2 -> identity -> POST /sessions
    reqs = h:take_http()
    assert.are.equal("/sessions", reqs[1].path)
    h:respond(reqs[1], 201, { session_token = "tok-2" })
    h:step()
    reqs = h:take_http()
    assert.are.equal("/conversations", reqs[1].path) -- the retry
    h:respond(reqs[1], 200, layer.array({}))
    h:step()
    assert.is_nil(got[2])
    assert.are.equal(2, h.nonces)
    assert.are.equal("tok-2", h.client.session_token)
  end)

  it("honours Retry-After on 429 and backs off on 503", function()
    local h = harness()
    h:login()
    local got
    h.client:request("GET", "/conversations", function(list, err) got = { list, err } end)
    local reqs = h:take_http()
    h:respond(reqs[1], 429, { id = "rate_limit_exceeded", code = 7 }, "3")
    h:step()
    h:advance(2.9)
    h:step()
    assert.are.equal(0, #h:take_http())
    h:advance(0.2)
    h:step()
    reqs = h:take_http()
    assert.are.equal(1, #reqs)
    h:respond(reqs[1], 503, { id = "service_unavailable", code = 1 })
    h:advance(10)
    h:step()
    reqs = h:take_http()
    assert.are.equal(1, #reqs)
    h:respond(reqs[1], 404, { id = "not_found", code = 102, message = "nope" })
    h:step()
    assert.are.equal("not_found", got[2].id)
    assert.are.equal(404, got[2].http_status)
  end)

  -- next_event's non-object events name what they carry; nothing is a bare number or text.
  it("gives non-object events named fields", function()
    local h = harness()
    h:login()
    local function next_details()
      local name, object_type, object, extra, ev = h.engine:next_event()
      assert.is_nil(object_type); assert.is_nil(object); assert.is_nil(extra)
      assert.equal(name, ev.name)
      for _, k in ipairs({ "number", "text", "value" }) do assert.is_nil(ev[k], k) end
      return ev
    end
    h.engine:feed("not json")
    local ev = next_details()
    assert.equal("error", ev.name)
    assert.equal("client", ev.kind)
    assert.matches("^bad packet from server", ev.message)
    h.engine:ws_closed("going away")
    ev = next_details()
    assert.equal("disconnected", ev.name)
    assert.equal("going away", ev.reason)
    assert.equal(1600, ev.delay_ms) -- backoff_base 1.6 s, no jitter
    h:advance(1.7)
    h.engine:tick()
    ev = next_details()
    assert.equal("reconnecting", ev.name)
    assert.equal(1, ev.attempt)
    h.client:step(0)
    -- the client reads them: disconnected's delay in seconds, synced's count
    local seen = {}
    h.client:on("disconnected", function(reason, delay) seen.reason, seen.delay = reason, delay end)
    h.engine:ws_closed("again")
    h:step()
    assert.equal("again", seen.reason)
    assert.is_true(seen.delay >= 1.6)
  end)

  it("takes interest bits from the engine, for every object event and type", function()
    local core = require "layer.core"
    local seen = {}
    for _, change in ipairs({ "create", "update", "delete" }) do
      for _, t in ipairs({ "Conversation", "Message", "Announcement", "Identity" }) do
        local bit = core.interest_bit(change, t)
        assert.is_number(bit)
        assert.equal(bit, core.interest_bit(change, t:lower()))
        assert.is_nil(seen[bit], "one bit per pair")
        seen[bit] = true
      end
    end
    assert.is_nil(core.interest_bit("truncate", "Conversation"))
    assert.is_nil(core.interest_bit("create", "Part"))
    -- a client with one handler asks the engine for that event only
    local h = harness()
    h:login()
    local got = 0
    h.client:on("conversation.delete", function() got = got + 1 end)
    local created = 0
    h.client:on("message", function() created = created + 1 end)
    h:create_conv()
    h:create_msg(1)
    h:step()
    assert.equal(1, created)
    h:change({ operation = "delete", object = { type = "Conversation", id = CONV }, data = { mode = "all_participants" } })
    h:step()
    assert.equal(1, got)
  end)

  -- Request retries and reconnects share one backoff: capped, and jittered.
  it("retries a failed request on the reconnect backoff, cap and jitter included", function()
    local function retry_gaps(opts)
      local h = harness(opts)
      h:login()
      h.client:request("GET", "/conversations", function() end)
      local gaps, waited = {}, 0
      local reqs = h:take_http()
      for _ = 1, 3 do
        h:respond(reqs[1], 503, { id = "service_unavailable", code = 1 })
        h:step()
        waited = 0
        repeat
          h:advance(0.05)
          waited = waited + 0.05
          h:step()
          reqs = h:take_http()
        until #reqs > 0 or waited > 60
        gaps[#gaps + 1] = waited
      end
      return gaps
    end
    -- base 1 s, cap 1.5 s: 1, then 2 capped to 1.5, then 1.5
    local capped = retry_gaps({ backoff_base = 1, backoff_cap = 1.5 })
    for i, want in ipairs({ 1, 1.5, 1.5 }) do
      assert.is_true(math.abs(capped[i] - want) < 0.08, "gap " .. i .. ": " .. capped[i])
    end
    -- jitter adds up to half of each delay, differently per seed
    local a = retry_gaps({ backoff_base = 1, backoff_cap = 100, backoff_jitter = 0.5, random_seed = 7 })
    for i, gap in ipairs(a) do
      assert.is_true(gap >= 2 ^ (i - 1) - 0.01 and gap <= 1.5 * 2 ^ (i - 1) + 0.08, "gap " .. i .. ": " .. gap)
    end
    local b = retry_gaps({ backoff_base = 1, backoff_cap = 100, backoff_jitter = 0.5, random_seed = 8 })
    assert.are_not.same(a, b)
  end)

  -- Two identical receipts in one millisecond are two changes; their replay
  -- copies after a reconnect are not.
  it("skips only the replayed copies of packets sharing the cursor's timestamp", function()
    local h = harness()
    h:login()
    local updates, created = {}, 0
    h.client:on("message", function() created = created + 1 end)
    h.client:on("conversation.update", function(_, list) updates[#updates + 1] = list[1].new.title end)
    h:create_conv()
    h:step()
    local ts = "2015-01-19T09:16:00.000Z"
    local function title(t) -- the same patch text each time
      return { operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
        { operation = "set", property = "metadata.title", value = t } }) }
    end
    local a = h:change(title("x"), ts)
    local b = h:change(title("y"), ts)
    local c = h:change(title("x"), ts) -- identical to a in body and timestamp: a change of its own
    h:step()
    assert.are.same({ "x", "y", "x" }, updates)
    h.engine:ws_closed("network")
    h:advance(5)
    h:step()
    h.engine:ws_opened()
    h.counter = 0
    h:step()
    local frames = h:take_frames()
    assert.are.equal("Event.replay", frames[1].body.method)
    assert.are.equal(ts, frames[1].body.data.from_timestamp)
    for _, f in ipairs({ a, b, c }) do -- the replay resends all three, then one that is new
      h.engine:feed((f:gsub('"counter":%d+', '"counter":' .. h.counter)))
      h.counter = h.counter + 1
    end
    h:change(title("z"), "2015-01-19T09:16:00.500Z")
    h:push("response", { request_id = frames[1].body.request_id, method = "Event.replay", success = true })
    h:step()
    assert.are.same({ "x", "y", "x", "z" }, updates)
    assert.are.equal("z", h.client:conversation(CONV).metadata.title)
  end)

  it("sends Counter.read after silence, reconnects a dead socket with backoff and replays", function()
    local h = harness({ keepalive = 30, dead_after = 45, backoff_base = 2 })
    h:login()
    h:create_conv()
    h:step()
    h:advance(31)
    h:step()
    local frames = h:take_frames()
    assert.are.equal("Counter.read", frames[1].body.method)
    local events = {}
    h.client:on("disconnected", function(reason, retry_in) events[#events + 1] = { "disconnected", reason, retry_in } end)
    h.client:on("reconnecting", function(n) events[#events + 1] = { "reconnecting", n } end)
    h:advance(15)
    h:step()
    assert.is_false(h.engine:ws_wanted()) -- dead: the transport should close it
    h.engine:ws_closed("closed by the client")
    h:step()
    assert.are.equal("disconnected", events[1][1])
    assert.are.equal(2, events[1][3])
    h:advance(2.1)
    h:step()
    local reqs = h:take_http()
    assert.are.equal("/?action=validateConnectionForWebsocket", reqs[1].path)
    h:respond(reqs[1], 200, {})
    h:step()
    assert.is_true(h.engine:ws_wanted())
    h.engine:ws_opened()
    h:step()
    frames = h:take_frames()
    assert.are.equal("Event.replay", frames[1].body.method)
    assert.are.equal("reconnecting", events[2][1])
  end)

  it("relays typing indicators and forgets a typist after 6 s", function()
    local h = harness()
    h:login()
    h:create_conv()
    local seen = {}
    h.client:on("typing", function(conv, sender, action) seen[#seen + 1] = { conv, sender and sender.id, action } end)
    h:push("signal", { type = "typing_indicator", object = { id = CONV }, data = { action = "started", sender = { id = "layer:///identities/bob" } } })
    h:step()
    h:advance(6.5)
    h:step()
    assert.are.equal("started", seen[1][3])
    assert.are.equal("layer:///identities/bob", seen[1][2])
    assert.are.equal("finished", seen[2][3])
    assert.are.equal(h.client:conversation(CONV), seen[1][1])
  end)

  it("gives the typing event of a 6 s expiry the same sender fields as the live one", function()
    local h = harness()
    h:login()
    h:create_conv()
    local seen = {}
    h.client:on("typing", function(_, sender, action)
      seen[#seen + 1] = { action = action, user_id = sender.user_id, display_name = sender.display_name }
    end)
    h:push("signal", { type = "typing_indicator", object = { id = CONV }, data = { action = "started",
      sender = { id = "layer:///identities/bob", user_id = "bob", display_name = "Bob B." } } })
    h:step()
    h:advance(6.5)
    h:step()
    assert.are.equal(2, #seen)
    assert.are.equal("finished", seen[2].action)
    assert.are.equal("bob", seen[2].user_id)
    assert.are.equal("Bob B.", seen[2].display_name)
    assert.are.same(seen[1].display_name, seen[2].display_name)
  end)

  it("routes handler errors to the error handler, else raises from step with the queue intact", function()
    local h = harness()
    h:login()
    local count = 0
    h.client:on("message", function(msg)
      count = count + 1
      if msg.position == 1 then error("boom") end
    end)
    h:create_conv()
    h:create_msg(1)
    h:create_msg(2)
    assert.has_error(function() h:step() end)
    assert.are.equal(1, count)
    h:step() -- the second message was still queued
    assert.are.equal(2, count)
    local errors = {}
    h.client:on("error", function(e) errors[#errors + 1] = e end)
    h:create_msg(1) -- position 1 again: a replace, no create event
    h:change({ operation = "create", object = { type = "Message", id = msg_id(9) }, data = { id = msg_id(9), position = 1, conversation = { id = CONV } } })
    h:step()
    assert.are.equal(1, #errors)
    assert.is_truthy(tostring(errors[1].message):find("boom", 1, true))
  end)

  it("keeps one userdata per object while held, and a new one after a delete and re-create", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:create_msg(1)
    h:step()
    local a = h.client:message(msg_id(1))
    assert.are.equal(a, h.client:message(msg_id(1)))
    a = nil
    collectgarbage()
    collectgarbage()
    local b = h.client:message(msg_id(1)) -- a fresh userdata once the old one was collected
    assert.are.equal("m1", b.parts[1].body)
    assert.are.equal(0, h.client:stats().pinned - 1) -- only b pins it
    h:change({ operation = "delete", object = { type = "Message", id = msg_id(1) }, data = { mode = "all_participants" } })
    h:create_msg(1, "again")
    h:step()
    local c = h.client:message(msg_id(1))
    assert.are_not.equal(b, c)
    assert.is_true(b.deleted)
    assert.are.equal("m1", b.parts[1].body)
    assert.is_false(c.deleted)
    assert.are.equal("again", c.parts[1].body)
  end)

  it("dispatches within a per-step budget of events or milliseconds", function()
    local h = harness()
    h:login()
    local n = 0
    h.client:on("message", function() n = n + 1 end)
    h:create_conv()
    for i = 1, 30 do h:create_msg(i) end
    h.client:step(0, 10) -- 10 messages (no conversation handler: no conversation event)
    assert.are.equal(10, n)
    h.client:on("message", function() local t = require("layer.core").clock() + 0.003; while require("layer.core").clock() < t do end end)
    h.client:step(0, { events = 100, ms = 5 }) -- each handler pair takes ~3 ms: two fit in 5 ms
    assert.is_true(n >= 11 and n <= 14, "dispatched " .. n)
    h.client:step(0)
    assert.are.equal(30, n)
  end)

  it("can be closed from inside a handler", function()
    local h = harness()
    h:login()
    h.client:on("message", function() h.client:close() end)
    h:create_conv()
    h:create_msg(1)
    h:create_msg(2)
    assert.has_no.errors(function() h:step() end)
    assert.is_true(h.client:closed())
    local ok, err = h.client:step(0)
    assert.is_nil(ok)
    assert.are.equal("closed", err)
    assert.has_error(function() h.client:request("GET", "/conversations", function() end) end)
  end)

  it("builds events only for changes somebody listens to, and still applies the rest", function()
    local h = harness()
    h:login()
    local created = 0
    h:create_conv() -- nobody listens yet: applied, no event
    h.client:on("message", function() created = created + 1 end)
    h:create_msg(1)
    h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
      { operation = "set", property = "metadata.title", value = "quiet" } }) })
    h:step()
    assert.are.equal(1, created)
    assert.are.equal(0, h.engine:pending())
    assert.are.equal("quiet", h.client:conversation(CONV).metadata.title) -- applied all the same
  end)

  -- Which patches fire conversation.update, with and without change lists:
  -- exactly those that leave the object different, judged by JSON value.
  for _, with_lists in ipairs({ false, true }) do
    it("fires an update only for a patch that changes something (change lists " .. tostring(with_lists) .. ")", function()
      local h = harness()
      h:login()
      h:create_conv()
      local fired = {}
      local label
      if with_lists then
        h.client:on("conversation.update", function(_, changes) fired[#fired + 1] = label .. ":" .. #changes end)
      else
        h.client:on("conversation.update", function(conv) fired[#fired + 1] = label end)
      end
      local function patch(name, ops)
        label = name
        h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array(ops) })
        h:step()
      end
      local alice, bob = { id = "layer:///identities/alice" }, { id = "layer:///identities/bob", user_id = "bob" }
      patch("title", { { operation = "set", property = "metadata.title", value = "one" } })
      patch("same title", { { operation = "set", property = "metadata.title", value = "one" } })
      patch("there and back", { { operation = "set", property = "metadata.title", value = "x" },
        { operation = "set", property = "metadata.title", value = "one" } })
      patch("delete absent", { { operation = "delete", property = "metadata.nope" } })
      patch("add present", { { operation = "add", property = "participants", id = alice.id } })
      patch("remove absent", { { operation = "remove", property = "participants", id = bob.id } })
      patch("equal object", { { operation = "set", property = "metadata", value = { title = "one" } } })
      patch("new intermediate", { { operation = "delete", property = "metadata.a.b" } })
      patch("add bob", { { operation = "add", property = "participants", id = bob.id, value = bob } })
      patch("two properties", { { operation = "set", property = "metadata.title", value = "two" },
        { operation = "set", property = "distinct", value = false } })
      patch("one of two", { { operation = "set", property = "metadata.title", value = "two" },
        { operation = "set", property = "distinct", value = true } })
      patch("members, one new", { { operation = "set", property = "metadata.title", value = "two" },
        { operation = "set", property = "metadata.extra", value = "e" } })
      patch("members, none new", { { operation = "set", property = "metadata.title", value = "two" },
        { operation = "set", property = "metadata.extra", value = "e" } })
      patch("parent, then child back", { { operation = "set", property = "metadata", value = { title = "zz", extra = "e",
        a = {} } }, { operation = "set", property = "metadata.title", value = "two" } })
      local want = { "title", "new intermediate", "add bob", "two properties", "one of two", "members, one new" }
      if with_lists then
        want = { "title:1", "new intermediate:1", "add bob:1", "two properties:2", "one of two:1", "members, one new:1" }
      end
      assert.are.same(want, fired)
      local conv = h.client:conversation(CONV)
      assert.are.equal("two", conv.metadata.title)
      assert.are.equal(2, #conv.participants)
      assert.is_true(conv.distinct)
    end)
  end

  it("builds change lists while an update handler is registered, whatever its signature", function()
    local h = harness()
    h:login()
    h:create_conv()
    local c = h.client._c
    assert.is_false(c:change_lists()) -- nobody listens to updates yet
    local lists = {}
    local function obj_only(conv) lists[#lists + 1] = select("#", conv) end -- declared with one parameter
    h.client:on("conversation.update", function(...) lists[#lists + 1] = (select(2, ...))[1].new.title end)
    h.client:on("conversation.update", obj_only)
    assert.is_true(c:change_lists())
    h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
      { operation = "set", property = "metadata.title", value = "one" } }) })
    h:step()
    assert.are.same({ "one", 1 }, lists)
    h.client:off("conversation.update")
    assert.is_false(c:change_lists())
    h.client:once("message.update", function() end)
    assert.is_true(c:change_lists())
  end)

  it("skips change lists with change_lists = false, and update handlers get nil", function()
    local h = harness({ change_lists = false })
    h:login()
    h:create_conv()
    local got = {}
    h.client:on("conversation.update", function(conv, list) got[#got + 1] = { conv.metadata.title, list } end)
    assert.is_false(h.client._c:change_lists())
    h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
      { operation = "set", property = "metadata.title", value = "one" } }) })
    h:step()
    assert.are.same({ { "one", nil } }, got)
    assert.has_error(function() layer.client({ transport = "manual", session_token = "t", change_lists = "yes" }) end,
      "change_lists must be true or false")
  end)

  it("converts a change list's values when read, keeps what was read, and refuses the rest after its handlers", function()
    local h = harness()
    h:login()
    h:create_conv()
    local kept, early
    h.client:on("conversation.update", function(_, list)
      kept = list
      early = list[1].new -- read now: stays readable
    end)
    h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
      { operation = "set", property = "metadata.title", value = "one" },
      { operation = "set", property = "distinct", value = false } }) })
    h:step()
    assert.are.equal(2, #kept)
    assert.are.equal("metadata", kept[1].property)
    assert.are.equal("one", early.title)
    assert.are.equal(early, kept[1].new)
    assert.are.equal("t", kept[1].old.title) -- the same entry: converted whole when first read
    assert.are.same({ "metadata.title" }, kept[1].paths)
    assert.are.equal("distinct", kept[2].property) -- properties are plain values
    local ok, err = pcall(function() return kept[2].old end)
    assert.is_false(ok)
    assert.matches("released when its handlers finished", tostring(err))
    assert.is_nil(kept[2].whatever) -- other keys are simply absent
  end)

  it("lets a change list outlive its client and the collector, unread values refused", function()
    local h = harness()
    h:login()
    h:create_conv()
    local kept, read
    h.client:on("conversation.update", function(_, list)
      kept = list
      read = list[1].new
    end)
    for i = 1, 40 do -- enough patches for the entry's document to be repacked while held
      h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
        { operation = "set", property = "metadata.title", value = ("t%d"):format(i) },
        { operation = "set", property = "distinct", value = i % 2 == 0 } }) })
    end
    h:step()
    h.client:close()
    h = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal("t40", read.title)
    assert.are.equal("metadata", kept[1].property)
    assert.are.equal("t39", kept[1].old.title) -- read in the handler, so kept
    assert.has_error(function() return kept[2].new end)
  end)

  -- Handlers of one step are called from one coroutine (scheduler.lua's batches)
  -- unless they wait: then the rest of the event, and the events after it, still
  -- run in order within the step.
  it("runs every handler of an event, in order, when one of them waits mid-step", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:step()
    local log = {}
    h.client:on("message.create", function(m)
      log[#log + 1] = "create " .. m:text()
      if m:text() == "m2" then
        local sent = m.conversation:send("answer to m2") -- waits for the server
        log[#log + 1] = "sent " .. tostring(sent and sent:text())
      end
    end)
    h.client:on("message.create", function(m) log[#log + 1] = "second " .. m:text() end)
    h.client:on("message", function(m) log[#log + 1] = "message " .. m:text() end)
    for i = 1, 3 do h:create_msg(i) end
    h:step()
    assert.are.same({ "create m1", "second m1", "message m1", "create m2", "second m2", "message m2",
      "create m3", "second m3", "message m3" }, log)
    h:answer(h:take_frames(), function(req) return true, { id = req.data.id, parts = req.data.parts,
      conversation = { id = CONV }, position = 9, recipient_status = {} } end)
    h:step()
    assert.are.equal("sent answer to m2", log[10])
  end)

  it("reports a handler's error and dispatches the other events of the step", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:step()
    local seen, errors = {}, {}
    h.client:on("error", function(e) errors[#errors + 1] = tostring(e) end)
    h.client:on("message", function(m)
      if m:text() == "m2" or m:text() == "m5" then error("boom on " .. m:text()) end
      seen[#seen + 1] = m:text()
    end)
    for i = 1, 3 do h:create_msg(i) end
    h:step()
    assert.are.same({ "m1", "m3" }, seen)
    assert.are.equal(1, #errors)
    assert.matches("boom on m2", errors[1])
    -- without an error handler, step() raises it and the rest waits for the next step
    h.client:off("error")
    for i = 4, 6 do h:create_msg(i) end
    assert.has_error(function() h:step() end, nil) -- m5's error
    assert.are.same({ "m1", "m3", "m4" }, seen)
    assert.are.equal(1, h.engine:pending()) -- m6 waits for the next step
    h:step()
    assert.are.same({ "m1", "m3", "m4", "m6" }, seen)
  end)

  it("keeps to max_events_per_step while dispatching from one coroutine", function()
    local h = harness({ max_events_per_step = 2 })
    h:login()
    h:create_conv()
    h:step()
    local seen = {}
    h.client:on("message", function(m) seen[#seen + 1] = m:text() end)
    for i = 1, 5 do h:create_msg(i) end
    h:step()
    assert.are.same({ "m1", "m2" }, seen)
    h:step()
    h:step()
    assert.are.same({ "m1", "m2", "m3", "m4", "m5" }, seen)
  end)

  it("keeps a change list's values while a handler waits on a request", function()
    local h = harness()
    h:login()
    h:create_conv()
    local before, after
    h.client:on("conversation.update", function(conv, list)
      before = list[1].property
      conv:send("seen") -- waits for the server's answer
      after = list[1].new.title
    end)
    h:change({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
      { operation = "set", property = "metadata.title", value = "waited" } }) })
    h:step()
    assert.are.equal("metadata", before)
    assert.is_nil(after)
    h:answer(h:take_frames(), function(req) return true, { id = req.data.id, parts = req.data.parts,
      conversation = { id = CONV }, position = 1, recipient_status = {} } end)
    h:step()
    assert.are.equal("waited", after)
  end)

  it("stays within its memory bounds through a flood of 100,000 messages", function()
    local h = harness({ max_messages_per_conversation = 200, max_bytes = 2 * 1024 * 1024 })
    h:login()
    local kept, seen, recent = nil, 0, {}
    h.client:on("message", function(msg)
      seen = seen + 1
      if seen == 10 then kept = msg end -- Lua holds this one: it must survive eviction
      if seen > 100000 - 2500 then recent[#recent + 1] = msg end -- and, for a while, more than the bound
    end)
    local convs = {}
    for c = 1, 10 do
      local id = ("layer:///conversations/00000000-0000-4000-8000-%012d"):format(c)
      convs[c] = id
      h:change({ operation = "create", object = { type = "Conversation", id = id }, data = { id = id, participants = layer.array({}) } })
    end
    local peak = 0
    for i = 1, 100000 do
      local conv = convs[i % 10 + 1]
      h:change({ operation = "create", object = { type = "Message", id = msg_id(i) }, data = {
        id = msg_id(i), position = i, conversation = { id = conv }, recipient_status = {},
        sender = { id = "layer:///identities/bob", user_id = "bob" },
        parts = layer.array({ { body = ("message number %d with some text"):format(i), mime_type = "text/plain" } }) } })
      if i % 1000 == 0 then
        h:step()
        -- what the handlers were given is garbage now; once collected, the
        -- next tick brings the cache back under its bound
        collectgarbage()
        h.client:step(0)
        local st = h.client:stats()
        if st.bytes > peak then peak = st.bytes end
      end
    end
    h:step()
    assert.is_true(h.client:stats().messages > 10 * 200, "held messages stay cached")
    recent = nil
    collectgarbage()
    h:step() -- released messages leave at the next step, not at the next arrival
    local st = h.client:stats()
    assert.are.equal(100000, seen)
    assert.is_true(peak <= 2 * 1024 * 1024, "peak " .. peak)
    assert.is_true(st.messages <= 10 * 200, "messages " .. st.messages)
    assert.is_true(st.evicted >= 100000 - 10 * 200)
    assert.are.equal("message number 10 with some text", kept.parts[1].body)
    assert.is_false(kept.deleted)
  end)

  it("hands every handler of a burst its whole message, even past max_messages_per_conversation", function()
    local h = harness({ max_messages_per_conversation = 5 })
    h:login()
    h:create_conv()
    local seen = {}
    h.client:on("message", function(msg)
      seen[#seen + 1] = { id = msg.id, position = msg.position, body = msg.parts and msg.parts[1] and msg.parts[1].body }
    end)
    for i = 1, 40 do h:create_msg(i) end -- one burst: all 40 queued before any handler runs
    h:step()
    assert.are.equal(40, #seen)
    for i, m in ipairs(seen) do
      assert.are.same({ id = msg_id(i), position = i, body = "m" .. i }, m)
    end
    seen = nil
    collectgarbage() -- nothing references the old ones now: the bound holds again
    for _ = 1, 20 do h:step() end -- idle steps sweep the cache a few slots at a time
    assert.is_true(h.client:stats().messages <= 5, "bound restored: " .. h.client:stats().messages)
  end)

  it("hands a transport written in Lua the extra headers of a rich content upload", function()
    local h = harness()
    h:login()
    h:create_conv()
    h:step()
    h:take_http()
    h.client:spawn(function() h.client:conversation(CONV):send(("x"):rep(3000)) end)
    h:step()
    local reqs = h:take_http()
    assert.are.equal(1, #reqs)
    assert.are.equal("/content", reqs[1].path)
    assert.are.equal("Upload-Content-Type: text/plain\nUpload-Content-Length: 3000", reqs[1].headers)
  end)

  it("refuses unknown options and missing credentials", function()
    assert.has_error(function() layer.client({ transport = "manual", identity = function() end, colour = "red" }) end)
    assert.has_error(function() layer.client({ transport = "manual" }) end)
    assert.has_error(function() layer.client({ url = "ftp://x", session_token = "t" }) end)
  end)
end)
