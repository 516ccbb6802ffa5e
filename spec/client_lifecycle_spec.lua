-- spec/client_lifecycle_spec.lua - the client's lifecycle edges: closing from a
-- handler, a closed engine under its transport, servers that cannot be reached,
-- errors in spawned functions, unknown event names, integer counts and error
-- values that behave like strings.
local layer = require "layer"
local core = require "layer.core"
local srv = require "support.layer_server"
local socket = require "socket"

local APP = "layer:///apps/staging/00000000-0000-0000-0000-000000000001"

local function identity_for(user)
  return function(nonce) return layer.dev_token({ secret = srv.SECRET, user_id = user, nonce = nonce }) end
end

local function client_for(url, extra)
  local opts = { url = url, app_id = APP, identity = identity_for("alice"), backoff_base = 0.2, backoff_cap = 1,
    backoff_jitter = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return layer.client(opts)
end

-- Step clients until done() or `seconds`; returns whether done() held.
local function pump(clients, done, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if done() then return true end
    for _, c in ipairs(clients) do
      if not c:closed() then c:step(0.005) end
    end
  end
  return done()
end

-- Run fn, raising if it is still running after `seconds` (so a loop that never ends fails).
local function within(seconds, fn)
  local deadline = socket.gettime() + seconds
  debug.sethook(function()
    if socket.gettime() > deadline then
      debug.sethook()
      error("still running after " .. seconds .. " s", 2)
    end
  end, "", 1000)
  local ok, err = pcall(fn)
  debug.sethook()
  if not ok then error(err, 0) end
end

-- A port nothing listens on.
local function closed_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- Records error, disconnected, reconnecting and log events.
local function watch(c)
  local seen = { errors = {}, disconnects = {}, logs = {}, reconnects = 0 }
  c:on("error", function(e) seen.errors[#seen.errors + 1] = tostring(e) end)
  c:on("disconnected", function(reason) seen.disconnects[#seen.disconnects + 1] = reason end)
  c:on("reconnecting", function() seen.reconnects = seen.reconnects + 1 end)
  c:on("log", function(level, text) seen.logs[#seen.logs + 1] = tostring(level) .. " " .. tostring(text) end)
  return seen
end

local function any_match(list, pattern)
  for _, s in ipairs(list) do
    if tostring(s):lower():find(pattern) then return true end
  end
  return false
end

-- An integer: a Lua integer on 5.3/5.4, a whole number on 5.1.
local function is_count(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v % 1 == 0
end

describe("client lifecycle", function()
  local server, clients
  before_each(function() clients = {} end)
  after_each(function()
    for _, c in ipairs(clients) do c:close() end
    if server then server:stop() end
    server = nil
  end)

  describe("closing", function()
    it("closes from a handler after a request returned, and run() returns", function()
      server = srv.start({ lifetime = 60 })
      local c = client_for(server.base)
      clients[#clients + 1] = c
      local conv, err
      c:on("ready", function()
        conv, err = c:create_conversation({ participants = { "alice", "bob" } })
        c:close()
      end)
      within(10, function() c:run() end)
      assert.is_nil(err)
      assert.is_truthy(conv)
      assert.is_true(c:closed())
      assert.are.same({ nil, "closed" }, { c:step(0) })
    end)

    it("treats a closed engine as a closed client instead of reading freed memory", function()
      local c = client_for("http://127.0.0.1:" .. closed_port())
      clients[#clients + 1] = c
      c:step(0)
      c:engine():close()
      assert.are.same({ nil, "closed" }, { c:step(0) })
      assert.is_true(c:closed())
    end)

    it("refuses to drive a transport whose engine was closed", function()
      local engine = core.client({})
      local transport = core.transport(engine, { url = "http://127.0.0.1:" .. closed_port() })
      engine:start()
      engine:close()
      assert.has_error(function() transport:service(nil, 0) end, "attempt to use a transport whose engine is closed")
      assert.has_error(function() transport:pump() end, "attempt to use a transport whose engine is closed")
      transport:close()
    end)
  end)

  describe("an unreachable server", function()
    it("says at once that the connection was refused, while retrying", function()
      local c = client_for("http://127.0.0.1:" .. closed_port())
      clients[#clients + 1] = c
      local seen = watch(c)
      local t0 = socket.gettime()
      assert.is_true(pump({ c }, function() return #seen.errors > 0 and #seen.disconnects > 0 end, 3),
        "no error/disconnected event within 3 s")
      assert.is_true(socket.gettime() - t0 < 1.5, "took " .. (socket.gettime() - t0) .. " s")
      assert.is_true(any_match(seen.errors, "refused"), table.concat(seen.errors, " | "))
      assert.is_true(any_match(seen.disconnects, "refused"), table.concat(seen.disconnects, " | "))
      assert.is_true(any_match(seen.logs, "refused"), table.concat(seen.logs, " | "))
      -- and it keeps trying
      assert.is_true(pump({ c }, function() return seen.reconnects >= 2 end, 5), "no reconnect attempts")
      assert.is_true(#seen.disconnects >= 2)
    end)

    it("says at once that the host name was not found", function()
      local c = client_for("http://no-such-host.invalid:7480")
      clients[#clients + 1] = c
      local seen = watch(c)
      assert.is_true(pump({ c }, function() return #seen.errors > 0 and #seen.disconnects > 0 end, 3),
        "no error/disconnected event within 3 s")
      assert.is_true(any_match(seen.errors, "not found"), table.concat(seen.errors, " | "))
      assert.is_true(any_match(seen.disconnects, "not found"), table.concat(seen.disconnects, " | "))
    end)

    it("says at once that TLS failed", function()
      -- a server that answers a TLS hello with plain HTTP
      local listener = assert(socket.bind("127.0.0.1", 0))
      listener:settimeout(0)
      local _, port = listener:getsockname()
      local c = client_for("https://127.0.0.1:" .. port)
      clients[#clients + 1] = c
      local seen = watch(c)
      local ok = pump({ c }, function()
        local peer = listener:accept()
        if peer then
          peer:send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
          peer:close()
        end
        return #seen.errors > 0 and #seen.disconnects > 0
      end, 3)
      listener:close()
      assert.is_true(ok, "no error/disconnected event within 3 s")
      assert.is_true(any_match(seen.errors, "tls"), table.concat(seen.errors, " | "))
      assert.is_true(any_match(seen.disconnects, "tls"), table.concat(seen.disconnects, " | "))
    end)
  end)

  describe("errors in spawned functions", function()
    local function manual()
      local c = layer.client({ transport = "manual", manual_clock = 1000, app_id = "layer:///apps/staging/test",
        identity = identity_for("alice") })
      clients[#clients + 1] = c
      return c
    end

    it("raises from spawn when the function fails before waiting and no error handler exists", function()
      local c = manual()
      assert.has_error(function() c:spawn(function() error("boom in spawn") end) end)
      local ok, err = pcall(c.spawn, c, function() error("boom again") end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("boom again", 1, true))
      -- nothing left over for the next step
      assert.is_true(c:step(0))
    end)

    it("raises from the outer spawn for a nested spawn that failed", function()
      local c = manual()
      local ok, err = pcall(c.spawn, c, function()
        c:spawn(function() error("nested boom") end) -- inside a client coroutine: held, not raised here
      end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("nested boom", 1, true))
      assert.is_true(c:step(0))
    end)

    it("raises from the step that resumed a function which then failed", function()
      local c = manual()
      local got
      c:spawn(function()
        got = { c:request("GET", "/conversations") }
        error("late boom")
      end)
      c:engine():set_time(1000 + 60) -- past request_timeout: the request resolves with an error
      local ok, err = pcall(c.step, c, 0)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("late boom", 1, true))
      assert.are.equal("request_timeout", got[2].id)
      assert.is_true(c:step(0))
    end)

    it("goes to the error handlers when there are some", function()
      local c = manual()
      local got
      c:on("error", function(e) got = e end)
      c:spawn(function() error("handled boom") end)
      assert.is_truthy(got)
      assert.are.equal("handler_error", got.id)
      assert.is_truthy(got.message:find("handled boom", 1, true))
    end)
  end)

  describe("event names", function()
    it("refuses an unknown event name and lists the known ones", function()
      local c = client_for("http://127.0.0.1:1")
      clients[#clients + 1] = c
      local ok, err = pcall(c.on, c, "no.such.event", function() end)
      assert.is_false(ok)
      assert.is_truthy(err:find("unknown event", 1, true), err)
      assert.is_truthy(err:find("no.such.event", 1, true), err)
      assert.is_truthy(err:find("message.create", 1, true), err)
      assert.is_truthy(err:find("disconnected", 1, true), err)
      assert.is_false(pcall(c.once, c, "redy", function() end))
      assert.is_false(pcall(c.off, c, "mesage"))
      -- every documented name is accepted
      for _, name in ipairs({ "ready", "connected", "disconnected", "reconnecting", "synced", "message",
        "conversation.create", "conversation.update", "conversation.delete", "conversation.truncate",
        "conversation.mark_read", "message.create", "message.update", "message.delete", "identity.create",
        "identity.update", "identity.delete", "announcement.create", "announcement.update", "announcement.delete",
        "typing", "error", "log" }) do
        local fn = function() end
        c:on(name, fn)
        assert.is_true(c:off(name, fn))
      end
    end)
  end)

  describe("counts", function()
    it("are integers: page.total, stats(), reconnecting and synced", function()
      server = srv.start({ lifetime = 60 })
      local c = client_for(server.base, { backoff_base = 0.1 })
      clients[#clients + 1] = c
      local ready, attempts, replayed = false, {}, {}
      c:on("ready", function() ready = true end)
      c:on("reconnecting", function(n) attempts[#attempts + 1] = n end)
      c:on("synced", function(n) replayed[#replayed + 1] = n end)
      assert.is_true(pump({ c }, function() return ready end, 10), "not ready")
      local page, done
      c:spawn(function()
        assert(c:create_conversation({ participants = { "alice", "bob" } }))
        page = c:conversations()
        done = true
      end)
      assert.is_true(pump({ c }, function() return done end, 10), "no page")
      assert.is_true(is_count(page.total), "page.total " .. tostring(page.total))
      assert.are.equal(1, page.total)
      for k, v in pairs(c:stats()) do
        assert.is_true(is_count(v), "stats()." .. k .. " = " .. tostring(v))
      end
      server:admin("faults", { type = "close_sockets", user_id = "alice" })
      assert.is_true(pump({ c }, function() return #attempts > 0 and #replayed > 0 end, 10), "no reconnect")
      assert.is_true(is_count(attempts[1]), "reconnecting " .. tostring(attempts[1]))
      assert.is_true(is_count(replayed[1]), "synced " .. tostring(replayed[1]))
    end)
  end)

  describe("error values", function()
    local err = require("layer.client").make_error({ id = "not_found", code = 102, message = "no such thing" }, 404)

    it("keep their fields", function()
      assert.are.equal("not_found", err.id)
      assert.are.equal(102, err.code)
      assert.are.equal(404, err.http_status)
      assert.is_true(layer.is_error(err))
    end)

    it("concatenate like strings, on either side", function()
      local text = tostring(err)
      assert.is_truthy(text:find("no such thing", 1, true))
      assert.are.equal("failed: " .. text, "failed: " .. err)
      assert.are.equal(text, err .. "")
      assert.are.equal(text .. " (again)", err .. " (again)")
      assert.are.equal("[" .. text .. "]", "[" .. err .. "]")
      assert.are.equal(text .. text, err .. err)
    end)

    it("raise with their fields", function()
      local ok, raised = pcall(error, err)
      assert.is_false(ok)
      assert.are.equal(err, raised)
    end)

    -- busted replaces the global assert, so the stock interpreter runs these in a child
    -- process; layer.core is stubbed there (the error type needs none of it), so a
    -- sanitizer build of it need not load into a plain interpreter.
    local interpreter = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
    local function uncaught(code)
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write('package.preload["layer.core"] = function() return {} end\n',
        'local err = require("layer.client").make_error({ id = "not_found", message = "no such thing" }, 404)\n',
        code, "\n")
      f:close()
      local p = assert(io.popen(interpreter .. " " .. script .. " 2>&1"))
      local out = p:read("*a")
      p:close()
      os.remove(script)
      return out
    end

    it("print their message when raised uncaught, where the interpreter allows it", function()
      local out = uncaught("error(err)")
      if _VERSION == "Lua 5.1" and not jit then -- the 5.1 interpreter prints only strings (docs/client.md)
        assert.is_truthy(out:find("error object is not a string", 1, true), out)
      else
        assert.is_truthy(out:find("no such thing", 1, true), out)
      end
      out = uncaught("assert(nil, err)")
      if _VERSION >= "Lua 5.3" or jit then
        assert.is_truthy(out:find("no such thing", 1, true), out)
      else -- PUC 5.1 and 5.2: assert takes string messages only (docs/client.md)
        assert.is_truthy(out:find("string expected", 1, true), out)
      end
    end)
  end)
end)
