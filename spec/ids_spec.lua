-- layer.ids: id checks, URL escaping, identity ids and the user inside a token.
local layer = require "layer"
local ids = require "layer.ids"

local U = "f3cc7b32-3c92-11e4-baad-164230d1df67"

describe("layer.ids", function()
  it("takes a full id or a bare uuid of the right kind", function()
    assert.equal(U, ids.check_uuid("layer:///conversations/" .. U, "conversations"))
    assert.equal(U, ids.check_uuid(U, "messages"))
    assert.is_nil(ids.uuid_of("layer:///messages/" .. U, "conversations"))
    assert.is_nil(ids.uuid_of(42, "messages"))
  end)

  it("refuses anything else with a message naming the kind", function()
    local ok, err = pcall(ids.check_uuid, "layer:///conversations/../x", "conversations", 1)
    assert.is_false(ok)
    assert.matches("expected a conversation id", err, 1, true)
  end)

  it("escapes user ids for a URL path and refuses control characters", function()
    assert.equal("a%20b%2Fc~d.e-f_g", ids.check_user_id("a b/c~d.e-f_g"))
    assert.is_false(pcall(ids.check_user_id, "a\nb", 1))
    assert.is_false(pcall(ids.check_user_id, "", 1))
  end)

  it("encodes identity ids as the server and layer-websdk do", function()
    -- * stays and ~ is encoded there, unlike in url_escape
    assert.equal("layer:///identities/a*b%7Ec%20d", ids.identity_id("a*b~c d"))
    assert.equal("a%2Ab~c%20d", ids.url_escape("a*b~c d"))
  end)

  it("builds query strings leaving out nil values", function()
    assert.equal("?page_size=5&sort_by=last%20message",
      ids.query({ { "page_size", 5 }, { "from_id", nil }, { "sort_by", "last message" } }))
    assert.equal("", ids.query({ { "from_id", nil } }))
  end)

  it("reads the user out of an identity token", function()
    assert.equal("alice", ids.token_user(layer.dev_token{ secret = "s", user_id = "alice", nonce = "n" }))
    assert.is_nil(ids.token_user("not a token"))
    assert.is_nil(ids.token_user(nil))
  end)

  it("decodes base64url once, in the core, for every length and byte", function()
    local core = require "layer.core"
    -- dev_token encodes with the same core codec; its claims decode back whole
    for n = 0, 9 do
      local name = ("é~?"):rep(n) -- 4 bytes a time: every length mod 3
      local token = layer.dev_token{ secret = "s", user_id = "u" .. name, nonce = "n" }
      local header, claims, sig = token:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      assert.equal('{"typ":"JWT","alg":"HS256"}', core.base64url_decode(header))
      assert.equal("u" .. name, core.json_decode(core.base64url_decode(claims)).prn)
      assert.equal(32, #core.base64url_decode(sig))
    end
    assert.equal("\251\255", core.base64url_decode("-_8"))
    assert.equal("\251\255", core.base64url_decode("+/8=")) -- plain base64 and padding, as the server reads
    assert.equal("", core.base64url_decode(""))
    assert.is_nil(core.base64url_decode("ab.c"))
    assert.is_nil(core.base64url_decode("a b"))
  end)
end)
