-- spec/server/limits_spec.lua - layer-server against resource abuse over real sockets: slow or half-open requests and too many connections from one address.
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
