-- spec/server/admin_spec.lua - layer-server admin interface (PROTOCOL.md §8): admin token and fault injection.
local L = require("support.layer_server")

describe("layer-server admin and faults", function()
  local srv, ta
  setup(function()
    srv = L.start()
    ta = srv:session("alice")
  end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  it("requires the admin token", function()
    for _, tok in ipairs { false, "wrong", L.ADMIN .. "x" } do
      local st, _, _, j = srv:request { method = "POST", path = "/admin/identities", admin = tok or nil, body = { user_id = "x" } }
      assert.equal(403, st)
      assert.equal("access_denied", j.id)
    end
    local st, _, _, j = srv:request { method = "POST", path = "/admin/identities", token = ta, body = { user_id = "x" } }
    assert.equal(403, st)
    assert.equal(101, j.code)
    assert.equal(404, (srv:admin("nope", {})))
    assert.equal(422, (srv:admin("faults", { type = "explode" })))
  end)

  it("answers the next N requests with 429 + Retry-After, then serves normally", function()
    local st, _, _, j = srv:admin("faults", { type = "http_error", status = 429, count = 2, seconds = 7 })
    assert.equal(200, st)
    assert.equal(2, j.affected)
    for _ = 1, 2 do
      local s2, h, _, e = srv:request { path = "/conversations", token = ta }
      assert.equal(429, s2)
      assert.equal("7", h["retry-after"])
      assert.equal("rate_limit_exceeded", e.id)
      assert.equal(7, e.code)
    end
    assert.equal(200, (srv:request { path = "/conversations", token = ta }))
  end)

  it("answers the next request with 503 service_unavailable", function()
    srv:admin("faults", { type = "http_error", status = 503, count = 1 })
    local st, _, _, e = srv:request { method = "POST", path = "/nonces" }
    assert.equal(503, st)
    assert.equal("service_unavailable", e.id)
    assert.equal(1, e.code)
    assert.equal(201, (srv:request { method = "POST", path = "/nonces" }))
  end)

  it("closes every socket of a user", function()
    local w1, w2 = assert(srv:ws(ta)), assert(srv:ws(ta))
    local other = assert(srv:ws(srv:session("bob")))
    local _, _, _, j = srv:admin("faults", { type = "close_sockets", user_id = "alice" })
    assert.equal(2, j.affected)
    for _, w in ipairs { w1, w2 } do
      local p, err, code = w:receive(3)
      assert.is_nil(p)
      assert.equal("closed", err)
      assert.equal(1001, code)
    end
    assert.is_true(other:request("Counter.read").body.success)
    other:close()
  end)

  it("skips a counter on a user's sockets", function()
    local w = assert(srv:ws(ta))
    assert.equal(0, w:request("Counter.read").counter)
    srv:admin("faults", { type = "skip_counter", user_id = "alice" })
    assert.equal(2, w:request("Counter.read").counter)
    assert.equal(3, w:request("Counter.read").counter)
    w:close()
  end)

  it("stalls a socket and then delivers what was held, in order", function()
    local w = assert(srv:ws(ta))
    srv:admin("faults", { type = "stall_socket", user_id = "alice", seconds = 0.6 })
    local t0 = require("socket").gettime()
    w:send_json { type = "request", body = { method = "Counter.read", request_id = "s1" } }
    w:send_json { type = "request", body = { method = "Counter.read", request_id = "s2" } }
    local p1 = assert(w:receive(3))
    assert.truthy(require("socket").gettime() - t0 >= 0.5)
    local p2 = assert(w:receive(3))
    assert.equal("s1", p1.body.request_id)
    assert.equal("s2", p2.body.request_id)
    assert.equal(p1.counter + 1, p2.counter)
    w:close()
  end)

  it("expires all sessions of a user", function()
    local t1, t2 = srv:session("carl"), srv:session("carl")
    local w = assert(srv:ws(t1))
    local _, _, _, j = srv:admin("faults", { type = "expire_session", user_id = "carl" })
    local _, err = w:receive(3)
    assert.equal("closed", err)
    assert.equal(2, j.affected)
    assert.equal(401, (srv:request { path = "/conversations", token = t1 }))
    assert.equal(401, (srv:request { path = "/conversations", token = t2 }))
    assert.is_nil((srv:ws(t1)))
  end)
end)
