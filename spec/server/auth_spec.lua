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

  it("writes identity ids as layer-websdk's strictEncodeURI does (only letters, digits and -_.* stay)", function()
    local tok = srv:login("o'brien (~ok!)")
    local want = "o%27brien%20%28%7Eok%21%29"
    -- the path may use either encoding; the answer uses the one layer-websdk gives its own user
    for _, path in ipairs({ "/identities/" .. want, "/identities/o'brien%20(~ok!)" }) do
      local st, _, body, j = srv:request { path = path, token = tok }
      assert.equal(200, st, body)
      assert.equal("layer:///identities/" .. want, j.id)
      assert.equal(srv.base .. "/identities/" .. want, j.url)
      assert.equal("o'brien (~ok!)", j.user_id)
    end
    local _, _, _, star = srv:request { path = "/identities/a*b.c-d_e%C3%A9", token = srv:login("a*b.c-d_e\195\169") }
    assert.equal("layer:///identities/a*b.c-d_e%C3%A9", star.id)
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

  -- POST /sessions with an identity token whose claims are prn=bob, a fresh nonce and the raw JSON
  -- members in extra (written as given, so they can hold what cjson would not write).
  local function session_with_claims(extra)
    local _, _, _, n = srv:request { method = "POST", path = "/nonces" }
    local json = string.format('{"prn":"bob","nce":"%s"%s}', n.nonce, extra ~= "" and "," .. extra or "")
    local st, _, body, j = srv:request { method = "POST", path = "/sessions",
      body = { identity_token = L.jwt_raw(json), app_id = "x" } }
    return st, j, body, n.nonce
  end

  it("refuses time claims that are not a NumericDate in range, and an nbf still to come", function()
    local now = os.time()
    local not_dates = { '"2001-01-01T00:00:00Z"', '"' .. (now + 600) .. '"', "true", "false", "null", "{}", "[]",
      "[" .. (now + 600) .. "]", "-1", "-0.5", "1e999", "-1e999", "1e300", "253402300800", "9223372036854775808" }
    for _, claim in ipairs { "exp", "nbf", "iat" } do
      for _, v in ipairs(not_dates) do
        local st, j, body, nonce = session_with_claims('"' .. claim .. '":' .. v)
        assert.equal(401, st, claim .. "=" .. v .. " was accepted: " .. tostring(body))
        assert.equal("authentication_required", j.id)
        assert.equal(4, j.code)
        assert.truthy(j.data.nonce)
        assert.truthy(j.message:find(claim, 1, true), j.message)
        -- a refused token does not use up its nonce
        local ok = L.jwt { prn = "bob", nce = nonce }
        assert.equal(201, (srv:request { method = "POST", path = "/sessions", body = { identity_token = ok } }))
      end
    end
    local st, j = session_with_claims('"nbf":' .. (now + 3600))
    assert.equal(401, st)
    assert.truthy(j.message:find("nbf", 1, true), j.message)
    assert.equal(401, (session_with_claims('"exp":' .. (now - 10))))
  end)

  it("refuses claims it reads that have the wrong type", function()
    local claims = { "prn", "nce", "display_name", "avatar_url", "first_name", "last_name" }
    for _, claim in ipairs(claims) do
      for _, v in ipairs { "42", "true", "null", "{}", '["x"]' } do
        local _, _, _, n = srv:request { method = "POST", path = "/nonces" }
        local t = { prn = '"bob"', nce = '"' .. n.nonce .. '"' }
        t[claim] = v
        local parts = {}
        for k, val in pairs(t) do parts[#parts + 1] = '"' .. k .. '":' .. val end
        local st, _, body, j = srv:request { method = "POST", path = "/sessions",
          body = { identity_token = L.jwt_raw("{" .. table.concat(parts, ",") .. "}") } }
        assert.equal(401, st, claim .. "=" .. v .. " was accepted: " .. tostring(body))
        assert.equal("authentication_required", j.id)
        assert.truthy(j.message:find(claim, 1, true), j.message)
      end
    end
  end)

  it("keeps accepting valid time and profile claims", function()
    local now = os.time()
    for _, extra in ipairs {
      "",
      string.format('"iat":%d,"exp":%d', now, now + 600),
      string.format('"iat":%d.25,"exp":%d.5,"nbf":%d', now, now + 600, now - 10),
      string.format('"nbf":%d,"iat":0', now),
      '"display_name":"Bob B","avatar_url":"http://x/a.png","first_name":"Bob","last_name":"B","iss":42,"sub":true',
    } do
      local st, _, body = session_with_claims(extra)
      assert.equal(201, st, extra .. ": " .. tostring(body))
    end
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
