-- The client inside other event loops (docs/client.md "The loop"): the cqueues
-- and luv recipes as documented, handlers that yield to the host's scheduler
-- (a cqueues sleep or socket, a luv timer) and come back, and request methods
-- called from the host's own coroutines, which wait the host's way.
local layer = require "layer"
local srv = require "support.layer_server"
local cqueues = require "cqueues"
local uv = require "luv"

local APP = "layer:///apps/staging/00000000-0000-0000-0000-000000000001"

local function new_client(server, user)
  local c = layer.client({
    url = server.base, app_id = APP, backoff_base = 0.1, backoff_cap = 1, backoff_jitter = 0.1,
    identity = function(nonce) return layer.dev_token({ secret = srv.SECRET, user_id = user, nonce = nonce }) end,
  })
  c.errors = {}
  c:on("error", function(e) c.errors[#c.errors + 1] = tostring(e) end)
  return c
end

-- The cqueues recipe from docs/client.md, plus a guard that gives up after
-- `seconds`; returns what cq:loop() returned.
local function cqueues_loop(c, body, seconds)
  local cq = cqueues.new()
  cq:wrap(function() while not c:closed() do cqueues.poll(c); c:step(0) end end)
  cq:wrap(function()
    local deadline = cqueues.monotime() + (seconds or 10)
    while not c:closed() and cqueues.monotime() < deadline do cqueues.sleep(0.05) end
    if not c:closed() then
      c.errors[#c.errors + 1] = "the cqueues loop timed out"
      c:close()
    end
  end)
  if body then cq:wrap(body) end
  return { cq:loop() }
end

-- The luv recipe from docs/client.md: a poll on the client's fd and a timer
-- rearmed to c:timeout() after each step; stops once the client is closed.
local function luv_loop(c, seconds)
  local poll, timer, guard = uv.new_poll(c:pollfd()), uv.new_timer(), uv.new_timer()
  local function drive()
    if not c:closed() then c:step(0) end
    if c:closed() then
      for _, h in ipairs({ poll, timer, guard }) do if not h:is_closing() then h:close() end end
      return
    end
    timer:stop()
    timer:start(math.floor((c:timeout() or 1) * 1000), 0, drive)
  end
  poll:start("r", drive)
  timer:start(0, 0, drive)
  -- a close outside step() (from a luv callback) is noticed here
  uv.update_time() -- uv.now() is as old as the last loop run
  local deadline = uv.now() + (seconds or 10) * 1000
  guard:start(50, 50, function()
    if not c:closed() and uv.now() > deadline then
      c.errors[#c.errors + 1] = "the luv loop timed out"
      c:close()
    end
    if c:closed() then drive() end
  end)
  uv.run()
end

-- Resumes the running coroutine from a luv timer after ms: a luv coroutine wait.
local function luv_sleep(ms)
  local co = coroutine.running()
  local t = uv.new_timer()
  t:start(ms, 0, function()
    t:close()
    assert(coroutine.resume(co, "woken"))
  end)
  return coroutine.yield()
end

describe("layer.client under cqueues", function()
  local server
  before_each(function() server = srv.start({ lifetime = 60 }) end)
  after_each(function() server:stop() end)

  it("ends cq:loop() cleanly when a handler closes the client", function()
    local c = new_client(server, "alice")
    local created
    c:on("ready", function()
      created = assert(c:create_conversation({ participants = { "bob" } })).id
      c:close()
    end)
    local result = cqueues_loop(c)
    assert.are.same({}, c.errors)
    assert.matches("^layer:///conversations/", created)
    assert.are.same({ true }, result)
  end)

  it("ends cq:loop() cleanly when another coroutine closes the client while the loop polls", function()
    local c = new_client(server, "alice")
    local ready = false
    c:on("ready", function() ready = true end)
    local result = cqueues_loop(c, function()
      while not ready do cqueues.sleep(0.01) end
      cqueues.sleep(0.05) -- the loop is back in cqueues.poll(c) now
      c:close()
    end)
    assert.are.same({}, c.errors)
    assert.are.same({ true }, result)
  end)

  it("lets a handler sleep with cqueues: the yield reaches the controller and comes back", function()
    local c = new_client(server, "alice")
    local ticks, slept, ticks_during, sent = 0, nil, nil, nil
    local listed_during_sleep = false
    c:on("ready", function()
      local t0, before = cqueues.monotime(), ticks
      c:spawn(function() -- the client goes on meanwhile: this request completes during the sleep
        cqueues.sleep(0.02)
        assert(c:conversations())
        listed_during_sleep = slept == nil
      end)
      cqueues.sleep(0.2)
      slept, ticks_during = cqueues.monotime() - t0, ticks - before
      local conv = assert(c:create_conversation({ participants = { "bob" } }))
      sent = assert(conv:send("after a cqueues sleep")):text()
      c:close()
    end)
    local result = cqueues_loop(c, function()
      while not c:closed() do
        ticks = ticks + 1
        cqueues.sleep(0.02)
      end
    end)
    assert.are.same({}, c.errors)
    assert.are.same({ true }, result)
    assert.is_true(slept >= 0.19, "slept " .. tostring(slept))
    assert.is_true(ticks_during >= 3, "other coroutines ran " .. tostring(ticks_during) .. " times")
    assert.is_true(listed_during_sleep)
    assert.are.equal("after a cqueues sleep", sent)
  end)

  it("lets a handler call another service over a cqueues socket", function()
    local csocket = require "cqueues.socket"
    local listener = assert(csocket.listen({ host = "127.0.0.1", port = 0 }))
    local _, _, port = listener:localname()
    local c = new_client(server, "alice")
    local answer
    c:on("ready", function()
      local s = assert(csocket.connect({ host = "127.0.0.1", port = port }))
      assert(s:write("weather?\n"))
      local line = s:read("*l")
      s:close()
      local conv = assert(c:create_conversation({ participants = { "bob" } }))
      answer = assert(conv:send("the service said: " .. tostring(line))):text()
      c:close()
    end)
    local result = cqueues_loop(c, function()
      local peer = listener:accept()
      local question = peer:read("*l")
      cqueues.sleep(0.05) -- answer later, so the handler really waits
      peer:write("sunny, you asked " .. question .. "\n")
      peer:close()
      listener:close()
    end)
    assert.are.same({}, c.errors)
    assert.are.same({ true }, result)
    assert.are.equal("the service said: sunny, you asked weather?", answer)
  end)

  it("lets a cqueues coroutine call request methods, which wait for their results", function()
    local c = new_client(server, "alice")
    local ready, got = false, nil
    c:on("ready", function() ready = true end)
    local result = cqueues_loop(c, function()
      while not ready do cqueues.sleep(0.01) end
      local conv = assert(c:create_conversation({ participants = { "bob" } }))
      local msg = assert(conv:send("from a cqueues coroutine"))
      local page = assert(conv:messages())
      got = { msg:text(), #page, page[1] and page[1].id == msg.id }
      c:close()
    end)
    assert.are.same({}, c.errors)
    assert.are.same({ true }, result)
    assert.are.same({ "from a cqueues coroutine", 1, true }, got)
  end)

  it("wakes a cqueues coroutine waiting on a request with an error when the client closes", function()
    local c = new_client(server, "alice")
    local ready, got = false, nil
    c:on("ready", function() ready = true end)
    local result = cqueues_loop(c, function()
      while not ready do cqueues.sleep(0.01) end
      server:stop() -- so the request below is retried, not answered
      cqueues.running():wrap(function()
        cqueues.sleep(0.1)
        c:close()
      end)
      local v, err = c:conversations()
      got = { v, err and err.id }
    end)
    assert.are.same({ true }, result)
    assert.are.same({ nil, "client_closed" }, got)
  end)

  it("raises when the coroutine that runs step() calls a request method, which would wait forever", function()
    local c = new_client(server, "alice")
    local cq, ok, err = cqueues.new(), nil, nil
    cq:wrap(function()
      c:step(0)
      ok, err = pcall(c.conversations, c)
      c:close()
    end)
    assert.is_true((cq:loop()))
    assert.is_false(ok)
    assert.matches("would wait forever", err)
  end)
end)

describe("layer.client under luv", function()
  local server
  before_each(function() server = srv.start({ lifetime = 60 }) end)
  after_each(function() server:stop() end)

  it("lets a handler wait on a luv timer, resumed by its callback, then make requests", function()
    local c = new_client(server, "alice")
    local woke, got = nil, {}
    c:on("ready", function()
      local conv = assert(c:create_conversation({ participants = { "bob" } }))
      woke = luv_sleep(10) -- the handler itself waits on luv
      for i = 1, 2 do c:spawn(function() -- and coroutines it starts after that
        local v = luv_sleep(30 * i)
        got[i] = { v, assert(conv:send("after luv wait " .. i)):text() }
        if got[1] and got[2] then c:close() end
      end) end
    end)
    luv_loop(c)
    assert.are.same({}, c.errors)
    assert.are.equal("woken", woke)
    assert.are.same({ { "woken", "after luv wait 1" }, { "woken", "after luv wait 2" } }, got)
  end)

  it("lets a luv-driven coroutine call request methods, which wait for their results", function()
    local c = new_client(server, "alice")
    local got
    c:on("ready", function()
      local t = uv.new_timer()
      t:start(10, 0, function() -- a coroutine of the host's, started by a luv callback
        t:close()
        coroutine.wrap(function()
          local conv = assert(c:create_conversation({ participants = { "bob" } }))
          local msg = assert(conv:send("from a luv coroutine"))
          got = msg:text()
          c:close()
        end)()
      end)
    end)
    luv_loop(c)
    assert.are.same({}, c.errors)
    assert.are.equal("from a luv coroutine", got)
  end)
end)
