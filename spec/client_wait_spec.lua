-- spec/client_wait_spec.lua - client:wait(fn [, seconds]) against the local server:
-- plain code gets fn's results (the loop is pumped meanwhile), a deadline gives
-- nil plus a timeout error while the request goes on, server errors come back
-- as nil, err, fn's errors are raised, handlers wait in their own coroutine,
-- and closed clients and the manual transport are refused clearly.
local layer = require "layer"
local srv = require "support.layer_server"
local live = require "support.live"
local socket = require "socket"

local new_client, pump = live.client, live.pump

local ready = live.ready

describe("client:wait", function()
  local server, alice, bob, all
  before_each(function()
    server = srv.start({ lifetime = 90 })
    alice, bob = new_client(server, "alice"), new_client(server, "bob")
    all = { alice, bob }
  end)
  after_each(function()
    for _, c in ipairs(all or {}) do c:close() end
    if server then server:stop() end
  end)

  it("runs a request from plain code on a client that has not logged in yet, and returns all of fn's results", function()
    local conv, extra, last = alice:wait(function()
      local c, err = alice:create_conversation({ participants = { "bob" }, metadata = { title = "w" } })
      return c, nil, err == nil and "no error" or err
    end, 10)
    assert.are.equal("layer:///conversations/", conv.id:sub(1, 23))
    assert.are.equal("w", conv.metadata.title)
    assert.is_nil(extra)
    assert.are.equal("no error", last)
    -- several requests in one fn, and the object methods too
    local sent = assert(alice:wait(function()
      assert(conv:send("one"))
      return conv:send("two")
    end, 10))
    assert.are.equal("two", sent:text())
    local page = assert(alice:wait(function() return conv:messages() end, 10))
    assert.are.equal(2, #page)
    -- a coroutine of the script's own (not the client's) pumps the loop the same way
    local from_co
    coroutine.wrap(function() from_co = alice:wait(function() return conv:messages() end, 10) end)()
    assert.are.equal(2, #from_co)
  end)

  it("returns nil and a timeout error once the deadline passes, and the request goes on", function()
    local conv = assert(bob:wait(function() return bob:create_conversation({ participants = { "alice" } }) end, 10))
    local got = {}
    alice:on("message", function(m) got[#got + 1] = m:text() end)
    ready({ alice })
    server:admin("faults", { type = "stall_socket", user_id = "bob", seconds = 1.5 })
    local went_on
    local t0 = socket.gettime()
    local sent, err = bob:wait(function()
      local m = conv:send("slow")
      went_on = m and m:text() or "failed"
      return m
    end, 0.3)
    local took = socket.gettime() - t0
    assert.is_nil(sent)
    assert.is_true(layer.is_error(err))
    assert.are.equal("timeout", err.id)
    assert.is_false(err.retryable)
    assert.matches("no result within 0.3 s", tostring(err))
    assert.is_true(took >= 0.29 and took < 1.2, "waited " .. took .. " s")
    assert.is_nil(went_on)
    -- the message reached the server, and fn finishes on later steps
    pump(all, function() return went_on ~= nil and #got == 1 end, 10, "the stalled send")
    assert.are.equal("slow", went_on)
    assert.are.same({ "slow" }, got)
    -- what fn raises after its wait gave up goes where a spawned function's error goes
    server:admin("faults", { type = "stall_socket", user_id = "bob", seconds = 1 })
    local _, late = bob:wait(function()
      conv:send("slow again")
      error("late trouble")
    end, 0.2)
    assert.are.equal("timeout", late.id)
    pump(all, function() return #bob.errors > 0 end, 10, "the late error")
    assert.matches("handler_error.*late trouble", bob.errors[1])
    -- a zero deadline: whatever is not there at once is a timeout
    local none, zero = bob:wait(function() return bob:conversations() end, 0)
    assert.is_nil(none)
    assert.are.equal("timeout", zero.id)
  end)

  it("gives a server's error as nil, err", function()
    local missing = "layer:///conversations/" .. layer.uuid()
    local conv, err = alice:wait(function() return alice:conversation(missing) end, 10)
    assert.is_nil(conv)
    assert.is_true(layer.is_error(err))
    assert.are.equal(404, err.http_status)
    assert.are.equal("not_found", err.id)
    local body, err2 = alice:wait(function()
      return alice:request("POST", "/conversations", { participants = "not a list" })
    end, 10)
    assert.is_nil(body)
    assert.are.equal(422, err2.http_status)
  end)

  it("raises what fn raises, before and after its first wait", function()
    assert.has_error(function() alice:wait(function() error("at once", 0) end, 5) end, "at once")
    local ok, msg = pcall(alice.wait, alice, function()
      alice:conversations()
      error("after a request")
    end, 10)
    assert.is_false(ok)
    assert.matches("after a request", msg)
    local value = { code = 7 }
    ok, msg = pcall(alice.wait, alice, function() alice:conversations(); error(value) end, 10)
    assert.is_false(ok)
    assert.are.equal(value, msg) -- raised as raised, so a table keeps its fields
    -- the client goes on working
    assert.is_table(alice:wait(function() return alice:conversations() end, 10))
  end)

  it("works from a handler: only the handler's coroutine waits, with its deadline", function()
    ready(all)
    local conv = assert(alice:wait(function() return alice:create_conversation({ participants = { "bob" } }) end, 10))
    local answers, stalled, others = {}, nil, 0
    bob:on("message", function(msg)
      if msg:text() == "stall" then
        server:admin("faults", { type = "stall_socket", user_id = "bob", seconds = 1.5 })
        local t0 = socket.gettime()
        local r, err = bob:wait(function() return msg.conversation:send("late") end, 0.3)
        stalled = { r, err, socket.gettime() - t0 }
        return
      end
      if msg.sender.user_id == "bob" then return end
      others = others + 1
      -- nested: the handler waits on fn, whose own request waits on the server
      local reply, err = bob:wait(function()
        return bob:wait(function() return msg.conversation:send("re: " .. msg:text()) end, 5)
      end, 5)
      answers[#answers + 1] = reply and reply:text() or tostring(err)
    end)
    assert(alice:wait(function() return conv:send("hi") end, 10))
    pump(all, function() return #answers == 1 end, 10, "the handler's answer")
    assert.are.same({ "re: hi" }, answers)
    assert(alice:wait(function() return conv:send("stall") end, 10))
    pump(all, function() return stalled ~= nil end, 10, "the handler's deadline")
    assert.is_nil(stalled[1])
    assert.are.equal("timeout", stalled[2].id)
    assert.is_true(stalled[3] >= 0.29 and stalled[3] < 1.2, "waited " .. stalled[3] .. " s")
    assert.are.equal(1, others)
  end)

  it("refuses a closed client, and returns client_closed when the client closes meanwhile", function()
    local conv = assert(bob:wait(function() return bob:create_conversation({ participants = { "alice" } }) end, 10))
    server:admin("faults", { type = "stall_socket", user_id = "bob", seconds = 3 })
    local r, err = bob:wait(function()
      bob:spawn(function()
        bob:identity("alice") -- over HTTP, which the stall does not hold
        bob:close()
      end)
      return conv:send("never answered")
    end, 10)
    assert.is_nil(r)
    assert.are.equal("client_closed", err.id)
    assert.is_true(bob:closed())
    assert.has_error(function() bob:wait(function() end, 1) end, "layer: the client is closed")
  end)

  it("refuses bad arguments, the manual transport at top level, and code that step() runs", function()
    assert.has_error(function() alice:wait(nil, 1) end, "client:wait(fn [, seconds]): fn must be a function")
    assert.has_error(function() alice:wait(function() end, -1) end,
      "client:wait(fn [, seconds]): seconds must be a number >= 0 or nil")
    assert.has_error(function() alice:wait(function() end, "5") end,
      "client:wait(fn [, seconds]): seconds must be a number >= 0 or nil")
    local manual = layer.client({ transport = "manual", session_token = "t", app_id = live.APP })
    all[#all + 1] = manual
    local ok, msg = pcall(manual.wait, manual, function() end, 1)
    assert.is_false(ok)
    assert.matches('cannot pump the loop of transport = "manual"', msg)
    -- a host coroutine that a handler resumes runs inside step(): waiting there would never end
    local raised
    alice:once("ready", function()
      local co = coroutine.create(function() return alice:wait(function() end, 1) end)
      local _, e = coroutine.resume(co)
      raised = e
    end)
    pump(all, function() return raised ~= nil end, 10, "ready")
    assert.matches("from code that step%(%) is running would wait forever", raised)
  end)

  it("waits inside a handler on the manual transport, with the deadline on its manual clock", function()
    local manual = layer.client({ transport = "manual", session_token = "t", app_id = live.APP, manual_clock = 100 })
    all[#all + 1] = manual
    local engine = manual:engine()
    manual:step(0)
    engine:ws_opened()
    manual:step(0)
    local result
    manual:spawn(function()
      result = { manual:wait(function() return manual:conversations() end, 5) }
    end)
    manual:step(0)
    assert(engine:take_http(), "the request went out")
    engine:set_time(104)
    manual:step(0)
    assert.is_nil(result)
    assert.is_true(manual:timeout() <= 1)
    engine:set_time(105.01)
    manual:step(0)
    assert.is_nil(result[1])
    assert.are.equal("timeout", result[2].id)
  end)
end)
