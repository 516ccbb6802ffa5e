-- support/live.lua - layer.client against the local test server, for specs:
-- a client that logs in as a user, and pumping several clients until a
-- condition holds or time runs out.
local layer = require "layer"
local srv = require "support.layer_server"
local socket = require "socket"

local M = {}

M.APP = "layer:///apps/staging/00000000-0000-0000-0000-000000000001"

-- A client for user on server; extra options override. Its error events
-- collect in c.errors.
function M.client(server, user, extra)
  local opts = {
    url = server.base, app_id = M.APP, backoff_base = 0.1, backoff_cap = 1, backoff_jitter = 0.1,
    identity = function(nonce)
      return layer.dev_token({ secret = srv.SECRET, user_id = user, nonce = nonce, display_name = user:upper() })
    end,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local c = layer.client(opts)
  c.errors = {}
  c:on("error", function(e) c.errors[#c.errors + 1] = tostring(e) end)
  return c
end

-- Step every client until done() or the time limit; fail with a message on timeout.
function M.pump(clients, done, seconds, what)
  local deadline = socket.gettime() + (seconds or 10)
  while not done() do
    if socket.gettime() > deadline then error("timed out waiting for " .. (what or "a condition"), 2) end
    for _, c in ipairs(clients) do
      if not c:closed() then c:step(0.005) end
    end
  end
end

-- Pump until every client has fired "ready".
function M.ready(clients, seconds)
  local n = 0
  for _, c in ipairs(clients) do c:once("ready", function() n = n + 1 end) end
  M.pump(clients, function() return n == #clients end, seconds or 10, "ready")
end

-- Run fn as a client coroutine and pump until it returns; its results.
function M.run(clients, c, fn, seconds)
  local finished, results = false, nil
  c:spawn(function() results = { fn() }; finished = true end)
  M.pump(clients, function() return finished end, seconds or 10, "a request")
  return (table.unpack or unpack)(results)
end

return M
