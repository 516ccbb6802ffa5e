-- layer.requests: how requests leave and how their results come back
-- (callbacks outside coroutines, straight-line inside them, typed errors).
local layer = require "layer"
local requests = require "layer.requests"

local function manual_client()
  local client = layer.client{ transport = "manual", session_token = "t", app_id = "layer:///apps/staging/test" }
  local engine = client:engine()
  local function take_http()
    client:step(0)
    local r = engine:take_http()
    assert(r, "a request went out")
    return r
  end
  local function respond(req, status, body) engine:http_response(req.id, status, layer.json_encode(body)) end
  return client, take_http, respond
end

describe("layer.requests", function()
  it("gives layer.client its request methods, the same functions", function()
    local client = manual_client()
    for _, name in ipairs({ "request", "_rest", "_ws", "_await", "_resolve", "_http" }) do
      assert.equal(requests.methods[name], client[name])
    end
    client:close()
  end)

  it("hands a response to the callback outside a coroutine", function()
    local client, take_http, respond = manual_client()
    local got
    client:request("GET", "/announcements", function(value, err) got = { value, err } end)
    local req = take_http()
    assert.same({ "GET", "/announcements" }, { req.method, req.path })
    respond(req, 200, { a = 1 })
    client:step(0)
    assert.same({ a = 1 }, got[1])
    assert.is_nil(got[2])
    client:close()
  end)

  it("returns the result straight-line inside a coroutine, failures as typed errors", function()
    local client, take_http, respond = manual_client()
    local got
    client:spawn(function() got = { client:request("DELETE", "/x") } end)
    respond(take_http(), 404, { id = "not_found", code = 102, message = "no such thing" })
    client:step(0)
    assert.is_nil(got[1])
    assert.same({ "not_found", 404 }, { got[2].id, got[2].http_status })
    assert.is_true(layer.is_error(got[2]))
    client:close()
  end)

  it("refuses a wait from plain code and a path that is not one", function()
    local client = manual_client()
    local ok, err = pcall(client.request, client, "GET", "/x")
    assert.is_false(ok)
    assert.matches("call this from an event handler", err, 1, true)
    assert.is_false(pcall(client.request, client, "GET", "x", function() end))
    assert.is_false(pcall(client.request, client, "GET", "/a b", function() end))
    client:close()
  end)

  it("converts no-content answers to true", function()
    assert.is_true(requests.nothing())
    assert.equal("v", requests.identity("v"))
  end)
end)
