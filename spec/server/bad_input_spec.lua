-- spec/server/bad_input_spec.lua - layer-server under bad input: every case gets a documented error or a clean close, and the server keeps serving.
local L = require("support.layer_server")
local socket = require("socket")

describe("layer-server bad input", function()
  local srv, ta, cid
  setup(function()
    srv = L.start()
    ta = srv:session("alice")
    local _, _, _, c = srv:request { method = "POST", path = "/conversations", token = ta,
      body = { participants = { "bob" }, distinct = false } }
    cid = c.id:match("([%x%-]+)$")
  end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  local function healthy()
    local st = srv:request { path = "/conversations", token = ta }
    assert.equal(200, st)
  end

  it("rejects malformed JSON bodies with 400 invalid_property", function()
    for _, body in ipairs { "{", "[1,]", "{\"a\":}", "nul", "{\"participants\":[\"x\"]} trailing", "\"\\ud800\"", "\255\254" } do
      local st, h, _, j = srv:request { method = "POST", path = "/conversations", token = ta, body = body }
      assert.equal(400, st, body)
      assert.matches("^application/json", h["content-type"])
      assert.equal("invalid_property", j.id)
      assert.equal(105, j.code)
    end
    healthy()
  end)

  it("rejects JSON of the wrong shape with 422", function()
    for _, body in ipairs { "[]", "42", "\"x\"", "null", '{"participants":"bob"}', '{"participants":[1,2]}',
      '{"participants":["bob"],"metadata":[1]}', '{"participants":["bob"],"distinct":"yes"}', '{"participants":["bob"],"id":"nope"}' } do
      local st, _, _, j = srv:request { method = "POST", path = "/conversations", token = ta, body = body }
      assert.equal(422, st, body)
      assert.truthy(j.id == "invalid_property" or j.id == "missing_property")
    end
    healthy()
  end)

  it("rejects wrong content types with 415 invalid_header", function()
    for _, ct in ipairs { "text/plain", "application/x-www-form-urlencoded", "application/vnd.layer-patch+json" } do
      local st, _, _, j = srv:request { method = "POST", path = "/conversations", token = ta, content_type = ct,
        body = '{"participants":["bob"]}' }
      assert.equal(415, st)
      assert.equal("invalid_header", j.id)
      assert.equal(107, j.code)
    end
    local st = srv:request { method = "PATCH", path = "/conversations/" .. cid, token = ta, content_type = "application/json", body = "[]" }
    assert.equal(415, st)
    healthy()
  end)

  it("rejects bodies over the size cap with 413", function()
    local big = '{"participants":["bob"],"metadata":{"x":"' .. string.rep("a", 300 * 1024) .. '"}}'
    local st, _, _, j = srv:request { method = "POST", path = "/conversations", token = ta, body = big, timeout = 10 }
    assert.equal(413, st)
    assert.equal("invalid_property", j.id)
    healthy()
  end)

  it("answers ids with .., /, CR/LF, percent tricks or non-UUID text with 404 and no leak", function()
    local paths = {
      "/conversations/not-a-uuid", "/conversations/..", "/conversations/../messages",
      "/conversations/%2e%2e%2f%2e%2e",
      "/conversations/" .. cid .. "x", "/messages/../../etc/passwd", "/messages/%00", "/conversations/" .. cid .. "/messages/extra",
      "/identities/a%2fb", "/identities/..", "/announcements/zzz",
    }
    for _, p in ipairs(paths) do
      local st, h, _, j = srv:request { path = p, token = ta }
      assert.truthy(st == 404 or st == 400 or st == 403, p .. " -> " .. tostring(st))
      assert.is_nil(h and h["x-injected"])
      if st == 404 and j then assert.truthy(j.id == "not_found" or j.id == "invalid_endpoint") end
    end
    -- libwebsockets ends a path at a percent-encoded CR/LF and drops the rest: never a header.
    local st0, h0 = srv:request { path = "/conversations/" .. cid .. "%0d%0aX-Injected:%20yes", token = ta }
    assert.truthy(st0 == 200 or st0 == 404)
    assert.is_nil(h0["x-injected"])
    -- a raw CR/LF inside the request line breaks the request: the connection gets an error or is closed
    local st1, h1 = srv:raw("GET /conversations/" .. cid .. "\r\nX-Injected: yes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
    assert.truthy(st1 == nil or st1 >= 400)
    assert.is_nil(h1 and h1["x-injected"])
    for _, id in ipairs { "layer:///messages/../x", "layer:///messages/a/b", "layer:///messages/x\r\ny", "../../x" } do
      local st, _, _, j = srv:request { method = "POST", path = "/conversations/" .. cid .. "/messages", token = ta,
        body = { id = id, parts = { { mime_type = "text/plain", body = "x" } } } }
      assert.equal(422, st)
      assert.equal("invalid_property", j.id)
    end
    healthy()
  end)

  it("answers unknown endpoints (404 invalid_endpoint) and methods (405)", function()
    assert.equal(404, (srv:request { path = "/v1/whatever", token = ta }))
    assert.equal(404, (srv:request { path = "/", token = ta }))
    assert.equal(405, (srv:request { method = "DELETE", path = "/conversations", token = ta }))
    assert.equal(405, (srv:request { method = "PUT", path = "/messages/" .. L.uuid(), token = ta }))
    local st = srv:raw("BREW /conversations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.truthy(st == nil or st >= 400)
    healthy()
  end)

  it("survives garbage on the wire, truncated requests and huge headers", function()
    local junk = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "\0\1\2\3\r\n\r\n",
      "GET /conversations HTTP/1.1\r\nHost: x\r\nAuthorization: " .. string.rep("A", 20000) .. "\r\n\r\n",
      "POST /conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"partial\":",
      "POST /conversations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    }
    for _, j in ipairs(junk) do
      local c = socket.tcp()
      c:settimeout(0.5)
      assert(c:connect("127.0.0.1", srv.port))
      c:send(j)
      c:receive("*a") -- whatever comes back, until close or timeout
      c:close()
    end
    healthy()
    assert.is_true(srv:alive())
  end)

  it("survives bad websocket traffic: non-JSON, binary, wrong shapes, huge frames", function()
    local other = assert(srv:ws(srv:session("bob")))
    local w = assert(srv:ws(ta))
    for _, t in ipairs { "[]", "{}", '{"type":"request"}', '{"type":"request","body":[]}', '{"type":"signal","body":{"type":"typing_indicator","object":{"id":"layer:///conversations/../x"},"data":{"action":"started"}}}',
      '{"type":"request","body":{"method":"Message.create","object_id":"../../x","data":{"parts":[{"mime_type":"text/plain","body":"x"}]},"request_id":"q"}}' } do
      w:send_text(t)
    end
    assert.is_true(w:request("Counter.read").body.success)
    w:send_text(string.rep("x", 300 * 1024))
    local _, err, code = w:wait(function() return false end, 3)
    assert.equal("closed", err)
    assert.truthy(code == 1009 or code == 1007, tostring(code))
    assert.is_true(other:request("Counter.read").body.success)
    other:close()
    healthy()
  end)
end)
