-- spec/server/auth_spec.lua - layer-server authentication: nonces, HS256 identity tokens, sessions, 401 with a fresh nonce.
local L = require("support.layer_server")

describe("layer-server auth", function()
  local srv
  setup(function() srv = L.start() end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  it("prints a banner and binds 127.0.0.1", function()
    assert.truthy(srv.port > 0)
    assert.equal("http://127.0.0.1:" .. srv.port, srv.base)
  end)

  it("issues nonces with application/json", function()
    local st, h, _, j = srv:request { method = "POST", path = "/nonces" }
    assert.equal(201, st)
    assert.matches("^application/json", h["content-type"])
    assert.equal("string", type(j.nonce))
    assert.truthy(#j.nonce >= 32)
  end)

  it("logs in through the challenge flow and uses the session", function()
    local tok = srv:login("alice", { display_name = "Alice A" })
    assert.truthy(#tok >= 32)
    local st, _, _, j = srv:request { path = "/identities/alice", token = tok }
    assert.equal(200, st)
    assert.equal("layer:///identities/alice", j.id)
    assert.equal("Alice A", j.display_name)
    assert.equal(srv.base .. "/identities/alice", j.url)
    assert.same({}, j.metadata)
  end)

  it("rejects a replayed identity token (nonce used once)", function()
    local _, _, _, n = srv:request { method = "POST", path = "/nonces" }
    local jwt = L.jwt { prn = "bob", nce = n.nonce, iat = os.time(), exp = os.time() + 600 }
    local st = srv:request { method = "POST", path = "/sessions", body = { identity_token = jwt, app_id = "x" } }
    assert.equal(201, st)
    local st2, _, _, j = srv:request { method = "POST", path = "/sessions", body = { identity_token = jwt, app_id = "x" } }
    assert.equal(401, st2)
    assert.equal("authentication_required", j.id)
    assert.equal(4, j.code)
    assert.equal("string", type(j.data.nonce))
  end)

  it("rejects a bad signature, an unknown nonce, a missing prn, unsigned tokens and garbage", function()
    local _, _, _, n = srv:request { method = "POST", path = "/nonces" }
    local cases = {
      L.jwt({ prn = "bob", nce = n.nonce }, "wrong-secret"),
      L.jwt { prn = "bob", nce = "not-a-nonce" },
      L.jwt { nce = n.nonce },
      L.jwt({ prn = "bob", nce = n.nonce }, nil, "none"),
      L.jwt { prn = "bob", nce = n.nonce, exp = os.time() - 10 },
      "not.a.jwt",
      "abc",
      "..",
    }
    for _, t in ipairs(cases) do
      local st, _, _, j = srv:request { method = "POST", path = "/sessions", body = { identity_token = t } }
      assert.equal(401, st)
      assert.equal("authentication_required", j.id)
      assert.truthy(j.data.nonce)
    end
    local st, _, _, j = srv:request { method = "POST", path = "/sessions", body = { app_id = "x" } }
    assert.equal(422, st)
    assert.equal("missing_property", j.id)
    -- the nonce was not consumed by failures: it still works
    local jwt = L.jwt { prn = "bob", nce = n.nonce }
    assert.equal(201, (srv:request { method = "POST", path = "/sessions", body = { identity_token = jwt } }))
  end)

  it("answers 401 with a fresh nonce for missing, bad and expired sessions", function()
    for _, tok in ipairs { false, "deadbeef" } do
      local st, _, _, j = srv:request { path = "/conversations", token = tok or nil }
      assert.equal(401, st)
      assert.equal("authentication_required", j.id)
      assert.truthy(j.data.nonce)
    end
    local tok = srv:session("carol")
    assert.equal(200, (srv:request { path = "/conversations", token = tok }))
    local st = srv:admin("faults", { type = "expire_session", session_token = tok })
    assert.equal(200, st)
    local st2, _, _, j = srv:request { path = "/conversations", token = tok }
    assert.equal(401, st2)
    assert.truthy(j.data.nonce)
  end)

  it("validates sessions for websocket reconnects", function()
    local tok = srv:session("dave")
    assert.equal(200, (srv:request { path = "/?action=validateConnectionForWebsocket&client=3.4.18", token = tok }))
    assert.equal(401, (srv:request { path = "/?action=validateConnectionForWebsocket", token = "nope" }))
  end)

  it("logs out with DELETE /sessions/<token>", function()
    local tok = srv:session("erin")
    assert.equal(204, (srv:request { method = "DELETE", path = "/sessions/" .. tok, token = tok }))
    assert.equal(401, (srv:request { path = "/conversations", token = tok }))
  end)

  it("needs a Layer Accept header with version 2.0 or 3.0 (406 invalid_header)", function()
    local tok = srv:session("frank")
    assert.equal(200, (srv:request { path = "/conversations", token = tok, accept = L.ACCEPT2 }))
    for _, a in ipairs { false, "application/json", "application/vnd.layer+json; version=1.0" } do
      local st, _, _, j = srv:request { path = "/conversations", token = tok, accept = a }
      assert.equal(406, st)
      assert.equal("invalid_header", j.id)
      assert.equal(107, j.code)
    end
  end)

  it("never writes session tokens to its log", function()
    local tok = srv:login("gina")
    srv:request { path = "/conversations", token = tok }
    srv:request { method = "DELETE", path = "/sessions/" .. tok }
    local wtok = srv:session("gina")
    local w = srv:ws(wtok)
    w:request("Counter.read")
    w:close()
    L.sleep(0.1)
    local log = srv:read_log()
    assert.truthy(log:find("GET /conversations 200", 1, true))
    assert.truthy(log:find("WS gina Counter.read", 1, true))
    assert.falsy(log:find(tok, 1, true))
    assert.falsy(log:find(wtok, 1, true))
  end)
end)
