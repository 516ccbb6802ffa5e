-- layer.loop(): many clients on one loop against the local server: they log
-- in and talk, one closing leaves the others working, the loop's fd works
-- with a plain poll (luasocket's select), and closing or collecting the loop
-- and its clients in any order is safe.
local layer = require "layer"
local srv = require "support.layer_server"
local live = require "support.live"
local socket = require "socket"

local function on_loop(server, loop, user)
  return live.client(server, user, { loop = loop })
end

-- Step the loop until done() or the time limit.
local function pump(loop, done, seconds, what)
  local deadline = socket.gettime() + (seconds or 10)
  while not done() do
    if socket.gettime() > deadline then error("timed out waiting for " .. (what or "a condition"), 2) end
    loop:step(0.01)
  end
end

local function all_ready(loop, clients)
  local n = 0
  for _, c in ipairs(clients) do c:once("ready", function() n = n + 1 end) end
  pump(loop, function() return n == #clients end, 15, "every client to be ready")
end

describe("layer.loop", function()
  local server
  setup(function() server = srv.start({ lifetime = 90 }) end)
  teardown(function() if server then server:stop() end end)

  it("carries several clients on one fd that log in and exchange messages", function()
    local loop = layer.loop()
    local a, b, c = on_loop(server, loop, "sl-alice"), on_loop(server, loop, "sl-bob"), on_loop(server, loop, "sl-carol")
    -- one fd for all, not one per client
    assert.are.equal(loop:pollfd(), a:pollfd())
    assert.are.equal(loop:pollfd(), b:pollfd())
    assert.are.equal(3, #loop:clients())
    all_ready(loop, { a, b, c })
    local got = { a = {}, b = {}, c = {} }
    for k, cl in pairs({ a = a, b = b, c = c }) do
      cl:on("message", function(m) got[k][#got[k] + 1] = m.sender.user_id .. ":" .. m:text() end)
    end
    local conv
    a:spawn(function()
      conv = assert(a:create_conversation({ participants = { "sl-bob", "sl-carol" }, distinct = false }))
      assert(conv:send("hi from alice"))
    end)
    pump(loop, function() return #got.b == 1 and #got.c == 1 and #got.a == 1 end, 10, "alice's message")
    assert.are.same({ "sl-alice:hi from alice" }, got.b)
    -- bob answers from his handler: another client's request made inside the loop's step
    b:on("message", function(m)
      if m.sender.user_id == "sl-alice" then m.conversation:send("bob got: " .. m:text()) end
    end)
    a:spawn(function() assert(conv:send("second")) end)
    pump(loop, function() return #got.c == 3 end, 10, "the answer")
    assert.are.same({ "sl-alice:hi from alice", "sl-alice:second", "sl-bob:bob got: second" }, got.c)
    for _, cl in ipairs({ a, b, c }) do assert.are.same({}, cl.errors) end
    loop:close()
    assert.is_true(a:closed() and b:closed() and c:closed())
  end)

  it("keeps the other clients working when one closes", function()
    local loop = layer.loop()
    local a, b, c = on_loop(server, loop, "sl2-a"), on_loop(server, loop, "sl2-b"), on_loop(server, loop, "sl2-c")
    all_ready(loop, { a, b, c })
    local got_c = {}
    c:on("message", function(m) got_c[#got_c + 1] = m:text() end)
    local conv
    a:spawn(function() conv = assert(a:create_conversation({ participants = { "sl2-b", "sl2-c" }, distinct = false })) end)
    pump(loop, function() return conv ~= nil and c:stats().conversations == 1 and b:stats().conversations == 1 end, 10,
      "the conversation")
    local conv_c = c:engine():object(conv.id) -- carol's own copy: alice's objects go with her
    b:close()
    assert.is_true(b:closed())
    assert.are.equal(2, #loop:clients())
    -- b's step now says closed; the loop and the others go on
    assert.are.same({ nil, "closed" }, { b:step(0) })
    a:spawn(function() assert(conv:send("after bob left")) end)
    pump(loop, function() return #got_c == 1 end, 10, "a message after one client closed")
    assert.are.equal("after bob left", got_c[1])
    -- a client closing from inside its own handler, during the loop's step
    a:on("message", function() a:close() end)
    c:spawn(function() assert(conv_c:send("close, alice")) end)
    pump(loop, function() return a:closed() end, 10, "alice to close from her handler")
    c:spawn(function() assert(conv_c:send("still here")) end)
    pump(loop, function() return got_c[#got_c] == "still here" end, 10, "carol alone")
    -- an engine closed under its client (client:engine():close()) does not take the loop down
    local d = on_loop(server, loop, "sl2-d")
    all_ready(loop, { d })
    d:engine():close()
    c:spawn(function() assert(conv_c:send("after an engine closed")) end)
    pump(loop, function() return got_c[#got_c] == "after an engine closed" end, 10, "carol after d's engine closed")
    -- d notices at its own next step (or when its socket or a deadline of its has work)
    assert.are.same({ nil, "closed" }, { d:step(0) })
    assert.is_true(d:closed())
    assert.are.equal(1, #loop:clients())
    assert.are.same({}, c.errors)
    loop:close()
  end)

  it("is pollable: socket.select on loop:getfd() wakes for the clients' traffic", function()
    local loop = layer.loop()
    local a, b = on_loop(server, loop, "sl3-a"), on_loop(server, loop, "sl3-b")
    local fd = loop:pollfd()
    assert.is_number(fd)
    -- a host loop that only steps when select says the fd is readable or the timeout ran out
    local polled, readable = 0, 0
    local function host_until(done, seconds, what)
      local deadline = socket.gettime() + seconds
      while not done() do
        if socket.gettime() > deadline then error("timed out waiting for " .. what, 2) end
        local r = socket.select({ loop }, nil, math.min(loop:timeout() or 1, 1))
        polled = polled + 1
        if #r > 0 then readable = readable + 1 end
        loop:step(0)
      end
    end
    local n = 0
    for _, c in ipairs({ a, b }) do c:once("ready", function() n = n + 1 end) end
    host_until(function() return n == 2 end, 15, "ready")
    local got
    b:on("message", function(m) got = m:text() end)
    a:spawn(function()
      local conv = assert(a:create_conversation({ participants = { "sl3-b" }, distinct = false }))
      assert(conv:send("polled"))
    end)
    host_until(function() return got == "polled" end, 10, "the message")
    assert.is_true(readable > 0, "select never saw the fd readable")
    -- a request queued outside a step makes the fd readable at once
    local idle_until = socket.gettime() + 0.3
    while socket.gettime() < idle_until do loop:step(0.05) end
    local sent = false
    a:identity("sl3-b", function() sent = true end)
    local r = socket.select({ loop }, nil, 0)
    assert.are.equal(1, #r)
    host_until(function() return sent end, 10, "the identity")
    loop:close()
    assert.is_nil(loop:pollfd())
    assert.are.same({ nil, "closed" }, { loop:step(0) })
  end)

  it("steps a client again while its budget leaves events queued", function()
    local loop = layer.loop()
    local a = live.client(server, "sl7-a") -- on a loop of its own: it sends while the shared loop stands still
    local b = live.client(server, "sl7-b", { loop = loop, max_events_per_step = 1 })
    all_ready(loop, { b })
    live.pump({ a }, function() return a._ready end, 10, "a ready")
    local got = {}
    b:on("message", function(m) got[#got + 1] = m:text() end)
    live.run({ a }, a, function()
      local conv = assert(a:create_conversation({ participants = { "sl7-b" }, distinct = false }))
      for i = 1, 5 do assert(conv:send("m" .. i)) end
    end)
    socket.sleep(0.3) -- the server has pushed all of it onto b's socket: one read takes it all
    local saw_pending = false
    pump(loop, function()
      if b:engine():pending() > 0 then
        saw_pending = true
        assert.are.equal(0, loop:timeout()) -- queued events count as work: no waiting
      end
      return #got == 5
    end, 10, "five messages, one event a step")
    assert.are.same({ "m1", "m2", "m3", "m4", "m5" }, got)
    assert.is_true(saw_pending)
    a:close()
    loop:close()
  end)

  it("raises a handler error from loop:step, and the other clients go on", function()
    local loop = layer.loop()
    local a = on_loop(server, loop, "sl8-a")
    local raw = layer.client({ -- no error handler: its step raises the handler's error
      url = server.base, app_id = live.APP, loop = loop,
      identity = function(nonce) return layer.dev_token({ secret = srv.SECRET, user_id = "sl8-raw", nonce = nonce }) end,
    })
    local b = on_loop(server, loop, "sl8-b")
    local n = 0
    for _, c in ipairs({ a, b }) do c:once("ready", function() n = n + 1 end) end
    raw:once("ready", function() error("boom from a handler") end)
    local raised
    local deadline = socket.gettime() + 15
    while not raised and socket.gettime() < deadline do
      local ok, err = pcall(loop.step, loop, 0.01)
      if not ok then raised = err end
    end
    assert.matches("boom from a handler", tostring(raised))
    pump(loop, function() return n == 2 end, 15, "the other clients")
    assert.is_falsy(raw:closed())
    local found
    raw:identity("sl8-a", function(ident) found = ident end)
    pump(loop, function() return found ~= nil end, 10, "a request of the client whose handler raised")
    assert.are.equal("layer:///identities/sl8-a", found.id)
    loop:close()
  end)

  it("keeps a client without the option on a loop of its own", function()
    local loop = layer.loop()
    local shared = on_loop(server, loop, "sl4-a")
    local own = live.client(server, "sl4-b")
    assert.are_not.equal(loop:pollfd(), own:pollfd())
    assert.are.equal(1, #loop:clients())
    own:close()
    loop:close()
    assert.is_true(shared:closed())
  end)

  it("refuses new clients once closed, and a loop that is not one", function()
    local loop = layer.loop()
    loop:close()
    assert.has_error(function() on_loop(server, loop, "sl5-a") end, "layer.client: the loop is closed")
    assert.has_error(function() live.client(server, "sl5-b", { loop = {} }) end)
  end)

  it("survives the loop closed from a handler, and every order of collection", function()
    -- closed from inside one client's handler while the loop steps
    local loop = layer.loop()
    local a, b = on_loop(server, loop, "sl6-a"), on_loop(server, loop, "sl6-b")
    a:once("ready", function() loop:close() end)
    pump(loop, function() return loop:closed() end, 15, "the loop to close")
    assert.is_true(a:closed() and b:closed())

    -- the loop and its clients unreachable together, connected and mid-traffic
    for round = 1, 3 do
      local l2 = layer.loop()
      local cs = {}
      for i = 1, 3 do cs[i] = on_loop(server, l2, ("sl6-%d-%d"):format(round, i)) end
      if round > 1 then all_ready(l2, cs) end
      if round == 3 then cs[1]:identity("sl6-3-2", function() end) end
      if round == 2 then l2:close() end
      l2, cs = nil, nil
      collectgarbage()
      collectgarbage()
    end

    -- clients kept, loop object dropped: they keep it alive and still work
    local l3 = layer.loop()
    local x, y = on_loop(server, l3, "sl6-x"), on_loop(server, l3, "sl6-y")
    l3 = nil
    collectgarbage()
    collectgarbage()
    local n = 0
    x:once("ready", function() n = n + 1 end)
    y:once("ready", function() n = n + 1 end)
    local deadline = socket.gettime() + 15
    while n < 2 and socket.gettime() < deadline do x:step(0.01) end
    assert.are.equal(2, n)
    -- the clients dropped, the loop closed after they are collected
    local l4 = layer.loop()
    local z = on_loop(server, l4, "sl6-z")
    all_ready(l4, { z })
    assert.are.equal(1, l4._u:count())
    z = nil
    x:close(); y:close()
    collectgarbage()
    collectgarbage()
    assert.are.equal(0, l4._u:count()) -- z's transport was collected and left the loop
    assert.is_true(l4:step(0))
    l4:close()
    collectgarbage()
  end)
end)
