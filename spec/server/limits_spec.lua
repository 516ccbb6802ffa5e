-- spec/server/limits_spec.lua - layer-server against resource abuse over real sockets: slow or half-open requests, too many connections from one address, and conversation metadata that would grow without bound.
local L = require("support.layer_server")
local socket = require("socket")

-- A connection from another loopback address (Linux routes all of 127/8 to lo),
-- so the attacker and the honest client count as different peers.
local function connect_from(addr, port)
  local c = assert(socket.tcp())
  assert(c:bind(addr, 0))
  c:settimeout(2)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then c:close() return nil, err end
  return c
end

-- Whether the server has closed c: "closed" once the peer hung up, nil while it is still open.
local function closed_by_server(c, wait)
  c:settimeout(wait or 0)
  local _, err = c:receive(1)
  return err == "closed"
end

local function half_open(addr, port, n)
  local held = {}
  for _ = 1, n do
    local c = connect_from(addr, port)
    if c then
      c:send("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n") -- the head never ends
      held[#held + 1] = c
    end
  end
  return held
end

local function close_all(list)
  for _, c in ipairs(list) do c:close() end
end

describe("layer-server under slow and crowding clients", function()
  local srv
  after_each(function()
    if srv then srv:stop_checked() end
    srv = nil
  end)

  it("keeps answering /ping while one address holds 300 half-open connections", function()
    srv = L.start { log_level = "error" }
    local held = half_open("127.0.0.2", srv.port, 300)
    local failed = 0
    for _ = 1, 8 do
      local st = srv:request { path = "/ping", timeout = 3 }
      if st ~= 204 then failed = failed + 1 end
    end
    close_all(held)
    assert.equal(0, failed)
  end)

  it("keeps answering /ping while five addresses hold 60 half-open connections each", function()
    srv = L.start { log_level = "error" }
    local held = {}
    for a = 2, 6 do
      for _, c in ipairs(half_open("127.0.0." .. a, srv.port, 60)) do held[#held + 1] = c end
    end
    assert.equal(300, #held)
    local failed = 0
    for _ = 1, 8 do
      local st = srv:request { path = "/ping", timeout = 3 }
      if st ~= 204 then failed = failed + 1 end
    end
    close_all(held)
    assert.equal(0, failed)
  end)

  it("closes a request head that does not arrive within --request-timeout", function()
    srv = L.start { log_level = "error", args = "--request-timeout 1" }
    local c = assert(connect_from("127.0.0.2", srv.port))
    c:send("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    local t0 = socket.gettime()
    socket.sleep(0.4)
    assert.is_false(closed_by_server(c), "closed before the timeout")
    -- trickling more of the head does not buy time
    c:send("X-A: 1\r\n")
    assert.is_true(closed_by_server(c, 4), "still open 4 s after a 1 s head timeout")
    assert.is_true(socket.gettime() - t0 < 3.5)
    c:close()
    assert.equal(204, (srv:request { path = "/ping" }))
  end)

  it("closes a request body trickled slower than --request-timeout", function()
    srv = L.start { log_level = "error", args = "--request-timeout 1" }
    local ta = srv:session("alice")
    local c = assert(connect_from("127.0.0.2", srv.port))
    c:send("POST /conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: " .. L.ACCEPT3 ..
      "\r\nAuthorization: Layer session-token=\"" .. ta .. "\"\r\nContent-Type: application/json\r\n" ..
      "Content-Length: 1000\r\n\r\n{")
    local t0, cut = socket.gettime(), false
    -- one byte every 0.3 s would take 5 minutes; the server must cut it off at its deadline
    for _ = 1, 20 do
      socket.sleep(0.3)
      if closed_by_server(c) or not c:send(" ") then cut = true break end
    end
    c:close()
    assert.is_true(cut, "the trickled body was never cut off")
    assert.is_true(socket.gettime() - t0 < 4)
    assert.equal(204, (srv:request { path = "/ping" }))
  end)

  it("refuses connections from one address past --max-conns-per-ip and counts closed ones out", function()
    srv = L.start { log_level = "error", args = "--max-conns-per-ip 8" }
    local held = half_open("127.0.0.2", srv.port, 8)
    local extra = assert(connect_from("127.0.0.2", srv.port))
    assert.is_true(closed_by_server(extra, 2), "the 9th connection from one address was kept")
    extra:close()
    for _, c in ipairs(held) do assert.is_false(closed_by_server(c, 0.05)) end
    -- another address is not affected
    assert.equal(204, (srv:request { path = "/ping" }))
    -- a slot freed by the client is available again
    held[1]:close()
    socket.sleep(0.3)
    local again = assert(connect_from("127.0.0.2", srv.port))
    again:send("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    again:settimeout(3)
    local line = again:receive("*l")
    again:close()
    assert.matches("^HTTP/1%.1 204", line)
    for i = 2, #held do held[i]:close() end
  end)

  it("counts out every kind of closed connection, so an address is never locked out", function()
    srv = L.start { log_level = "error", args = "--max-conns-per-ip 4 --request-timeout 1" }
    local ta = srv:session("alice")
    for _ = 1, 3 do
      assert.equal(204, (srv:request { path = "/ping" }))                              -- answered, closed
      assert.equal(413, (srv:request { method = "POST", path = "/conversations", token = ta,
        body = string.rep(" ", 300 * 1024) }))                                          -- body too large
      local w = assert(srv:ws(ta)); w:close()                                           -- WebSocket
      assert.is_nil(srv:ws("not-a-session"))                                            -- refused upgrade
      local c = assert(connect_from("127.0.0.1", srv.port))                             -- abandoned mid-body
      c:send("POST /conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
      c:close()
      local k = assert(connect_from("127.0.0.1", srv.port))                             -- keep-alive, twice
      k:send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
      k:settimeout(2)
      assert.matches("^HTTP/1%.1 204", k:receive("*l"))
      k:close()
    end
    local slow = half_open("127.0.0.1", srv.port, 2)                                    -- closed by the timeout
    for _, c in ipairs(slow) do assert.is_true(closed_by_server(c, 4)) end
    close_all(slow)
    socket.sleep(0.3)
    local held = half_open("127.0.0.1", srv.port, 3)
    assert.equal(204, (srv:request { path = "/ping" })) -- the 4th of 4 slots is still free
    close_all(held)
  end)

  it("keeps a WebSocket within the per-address count after its upgrade", function()
    srv = L.start { log_level = "error", args = "--max-conns-per-ip 3" }
    local ta = srv:session("alice") -- one short request, closed again
    socket.sleep(0.2)
    local w1, w2 = assert(srv:ws(ta)), assert(srv:ws(ta))
    local held = half_open("127.0.0.1", srv.port, 1)
    local extra = assert(connect_from("127.0.0.1", srv.port))
    assert.is_true(closed_by_server(extra, 2), "a 4th connection was kept")
    extra:close()
    w1:close()
    w2:close()
    close_all(held)
    socket.sleep(0.3)
    assert.equal(204, (srv:request { path = "/ping" }))
  end)
end)

describe("layer-server conversation bounds", function()
  local srv, ta, tb
  setup(function()
    srv = L.start { log_level = "error" }
    ta, tb = srv:session("alice"), srv:session("bob")
  end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  local function create(body, token)
    return srv:request { method = "POST", path = "/conversations", token = token or ta, body = body }
  end

  local function new_conv()
    local st, _, body, j = create { participants = { "bob" }, distinct = false, metadata = { title = "t" } }
    assert.equal(201, st, body)
    return j.id:match("([%x%-]+)$")
  end

  local function patch(cid, body, token)
    return srv:request { method = "PATCH", path = "/conversations/" .. cid, token = token or ta,
      content_type = "application/vnd.layer-patch+json", body = body, timeout = 30 }
  end

  local function get(cid, token)
    local st, _, _, j = srv:request { path = "/conversations/" .. cid, token = token or ta }
    return st, j
  end

  local function assert_422(st, j, pattern)
    assert.equal(422, st)
    assert.equal("invalid_property", j.id)
    assert.equal(105, j.code)
    assert.matches(pattern, j.message)
  end

  local function peak_rss_kb()
    local f = assert(io.open("/proc/" .. srv.pid .. "/status"))
    local t = f:read("*a")
    f:close()
    return tonumber(t:match("VmHWM:%s*(%d+)"))
  end

  -- n set operations adding new keys, tag keeps each patch's keys distinct
  local function key_ops(tag, n)
    local ops = {}
    for i = 1, n do
      ops[i] = string.format('{"operation":"set","property":"metadata.k%s%04d","value":"%04d"}', tag, i, i)
    end
    return "[" .. table.concat(ops, ",") .. "]"
  end

  it("refuses four patches of 4,000 new keys each with 422, at a memory cost bounded by their size", function()
    local cid = new_conv()
    local before = peak_rss_kb()
    for p = 1, 4 do
      local body = key_ops(p, 4000)
      assert.is_true(#body < 256 * 1024)
      local st, _, _, j = patch(cid, body)
      assert_422(st, j, "metadata")
    end
    -- four bodies of 250 KB; copying the keys for each added key took 1.5 GB here
    assert.is_true(peak_rss_kb() - before < 64 * 1024, "peak RSS grew by " .. (peak_rss_kb() - before) .. " kB")
    local st, c = get(cid)
    assert.equal(200, st)
    assert.same({ title = "t" }, c.metadata) -- a refused patch changes nothing
  end)

  it("accepts metadata up to 1,024 keys and refuses the key beyond", function()
    local cid = new_conv()
    local st = patch(cid, key_ops("a", 1023)) -- with title: 1,024 keys
    assert.equal(204, st)
    local st2, _, _, j = patch(cid, '[{"operation":"set","property":"metadata.one_more","value":"x"}]')
    assert_422(st2, j, "1024 keys")
    -- replacing a key is no new key
    assert.equal(204, (patch(cid, '[{"operation":"set","property":"metadata.title","value":"u"}]')))
    local _, c = get(cid)
    assert.equal("u", c.metadata.title)
    assert.is_nil(c.metadata.one_more)
    local n = 0
    for _ in pairs(c.metadata) do n = n + 1 end
    assert.equal(1024, n)
    assert.equal("0001", c.metadata.ka0001)
    assert.equal("1023", c.metadata.ka1023)
  end)

  it("bounds metadata bytes on create and on patch", function()
    local big = string.rep("x", 40 * 1024)
    local st, _, _, j = create { participants = { "bob" }, distinct = false, metadata = { a = big, b = big } }
    assert_422(st, j, "64 KiB")
    local cid = new_conv()
    assert.equal(204, (patch(cid, '[{"operation":"set","property":"metadata.a","value":"' .. big .. '"}]')))
    local st2, _, _, j2 = patch(cid, '[{"operation":"set","property":"metadata.b","value":"' .. big .. '"}]')
    assert_422(st2, j2, "64 KiB")
    local _, c = get(cid)
    assert.is_nil(c.metadata.b)
  end)

  it("bounds metadata nesting on create, on WebSocket create and on patch", function()
    local deep = "v"
    for _ = 1, 9 do deep = { d = deep } end
    local st, _, _, j = create { participants = { "bob" }, distinct = false, metadata = { x = deep } }
    assert_422(st, j, "deeper than 8")
    local w = assert(srv:ws(ta))
    local r = w:request("Conversation.create", { participants = { "bob" }, distinct = false, metadata = { x = deep } })
    assert.is_false(r.body.success)
    assert.equal("invalid_property", r.body.data.id)
    w:close()
    local cid = new_conv()
    local path = "metadata" .. string.rep(".d", 9)
    local st2, _, _, j2 = patch(cid, '[{"operation":"set","property":"' .. path .. '","value":"v"}]')
    assert_422(st2, j2, "deeper than 8")
    assert.equal(204, (patch(cid, '[{"operation":"set","property":"metadata' .. string.rep(".d", 8) .. '","value":"v"}]')))
  end)

  it("refuses a conversation left with no participants, on create and on patch", function()
    local st, _, _, j = create { participants = {}, distinct = false }
    assert_422(st, j, "participants")
    local cid = new_conv()
    local st2, _, _, j2 = patch(cid, '[{"operation":"set","property":"participants","value":[]}]')
    assert_422(st2, j2, "participants")
    local st3, _, _, j3 = patch(cid, '[{"operation":"remove","property":"participants","id":"layer:///identities/alice"},' ..
      '{"operation":"remove","property":"participants","id":"layer:///identities/bob"}]')
    assert_422(st3, j3, "participants")
    local st4, c = get(cid)
    assert.equal(200, st4)
    assert.equal(2, #c.participants)
    assert.equal(200, (get(cid, tb)))
  end)

  it("survives the last participant leaving a distinct conversation", function()
    local st, _, body, c = create { participants = { "bob" }, distinct = true, metadata = { x = "last" } }
    assert.is_true(st == 201 or st == 200, body)
    local cid = c.id:match("([%x%-]+)$")
    assert.equal(204, (srv:request { method = "DELETE", path = "/conversations/" .. cid .. "?mode=my_devices&leave=true", token = tb }))
    assert.equal(204, (srv:request { method = "DELETE", path = "/conversations/" .. cid .. "?mode=my_devices&leave=true", token = ta }))
    assert.is_true(srv:alive())
    -- the same distinct create now makes a new conversation
    local st2, _, _, c2 = create { participants = { "bob" }, distinct = true, metadata = { x = "last" } }
    assert.equal(201, st2)
    assert.are_not.equal(c.id, c2.id)
  end)
end)
