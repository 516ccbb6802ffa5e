-- layer.identity: the client's identity, follow and unfollow.
local identity = require "layer.identity"
local manual = require "support.manual_client"

describe("layer.identity", function()
  it("gives layer.client its identity calls, the same functions", function()
    local h = manual.new()
    for _, name in ipairs({ "identity", "follow", "unfollow" }) do
      assert.equal(identity.client_methods[name], h.client[name])
    end
    h.client:close()
  end)

  it("escapes the user id into the path", function()
    local h = manual.new()
    h.client:follow("a b/c", function() end)
    local req = h.take_http()
    assert.same({ "PUT", "/following/users/a%20b%2Fc" }, { req.method, req.path })
    h.client:identity("bob", function() end)
    req = h.take_http()
    assert.same({ "GET", "/identities/bob" }, { req.method, req.path })
    assert.has_error(function() h.client:unfollow("", function() end) end)
    h.client:close()
  end)

  it("gives Identity objects follow and unfollow by their user id", function()
    local h = manual.new()
    local called = {}
    local fake = { follow = function(_, user_id) called[#called + 1] = "follow " .. user_id end,
      unfollow = function(_, user_id) called[#called + 1] = "unfollow " .. user_id end }
    local methods = identity.methods(fake)
    methods.follow({ user_id = "bob" })
    methods.unfollow({ user_id = "bob" })
    assert.same({ "follow bob", "unfollow bob" }, called)
    h.client:close()
  end)
end)
