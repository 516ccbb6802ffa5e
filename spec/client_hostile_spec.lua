-- spec/client_hostile_spec.lua - layer.client against a broken or hostile server
-- (spec/support/hostile_server.lua): 401 forever, re-authentication loops.
-- Whatever the server does, every request resolves within request_timeout and the
-- client never logs in more than its backoff allows.
local layer = require "layer"
local hostile = require "support.hostile_server"
local socket = require "socket"


local live = require "support.live"

-- A client whose identity callback hands out a fake token (the hostile server reads none).
local function client_for(server, extra)
  local opts = { backoff_jitter = 0, request_timeout = 2,
    identity = function(nonce) return "identity-token-for-" .. nonce end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return live.client(server, "hostile", opts)
end

-- Start a REST request as a coroutine; returns a table filled when it resolves.
local function start_request(c, method, path)
  local out = { done = false }
  c:spawn(function()
    out.value, out.err = c:request(method, path)
    out.done = true
    out.at = socket.gettime()
  end)
  return out
end

describe("layer.client against a hostile server", function()
  local server, client
  after_each(function()
    if client then client:close() end
    if server then server:close() end
    client, server = nil, nil
  end)

  it("resolves a request within request_timeout when every answer is 401 without a nonce", function()
    server = hostile.start(function()
      return 401, '{"id":"authentication_required","code":4,"message":"no"}'
    end)
    client = client_for(server)
    local t0 = socket.gettime()
    local req = start_request(client, "GET", "/conversations")
    assert.is_true(hostile.pump(server, { client }, function() return req.done end, 6))
    assert.is_nil(req.value)
    assert.is_truthy(req.err)
    assert.is_true(req.at - t0 < 3, "resolved after " .. (req.at - t0) .. " s")
  end)

  it("backs off and gives up re-authenticating when every login is answered with a new 401", function()
    local n, login_times = 0, {}
    server = hostile.start(function(method, path)
      if method == "POST" and path == "/nonces" then
        n = n + 1
        return 201, '{"nonce":"n' .. n .. '"}'
      elseif method == "POST" and path == "/sessions" then
        n = n + 1
        login_times[#login_times + 1] = socket.gettime()
        return 201, '{"session_token":"s' .. n .. '"}'
      end
      n = n + 1
      return 401, '{"id":"authentication_required","code":4,"message":"again","data":{"nonce":"c' .. n .. '"}}'
    end)
    client = client_for(server, { request_timeout = 3 })
    local t0 = socket.gettime()
    local req = start_request(client, "GET", "/conversations")
    hostile.pump(server, { client }, function() return false end, 5)
    assert.is_true(req.done, "the request never resolved")
    assert.is_nil(req.value)
    assert.are.equal(401, req.err and req.err.http_status)
    local logins = server:count("POST", "^/sessions$")
    -- 939 logins in 30 s before; with a 0.1 s base doubling to a 1 s cap: 0, 0.1, 0.2, 0.4,
    -- 0.8, then about one a second
    assert.is_true(logins <= 12, logins .. " logins in 5 s")
    local late = 0
    for _, t in ipairs(login_times) do if t - t0 > 3 then late = late + 1 end end
    assert.is_true(late <= 3, late .. " logins in the last 2 s: not held to the backoff cap")
    local gave_up = false
    for _, e in ipairs(client.errors) do if e:find("re%-authenticat") then gave_up = true end end
    assert.is_true(gave_up, "no error event about re-authentication: " .. table.concat(client.errors, " | "))
  end)
end)
