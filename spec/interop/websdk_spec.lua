-- spec/interop/websdk_spec.lua - runs Layer's own JavaScript client (npm layer-websdk@3.4.18, two users in two Node processes) against layer-server.
local L = require("support.layer_server")

local DIR = "spec/interop"
local MODULES = DIR .. "/node/node_modules"
local INSTALL = "npm install --prefix " .. DIR .. "/node --no-audit --no-fund --loglevel=error "
  .. "layer-websdk@3.4.18 websocket@1.0.35 xhr2@0.2.1"

local function exists(p)
  local f = io.open(p)
  if f then f:close() return true end
  return false
end

local function run(cmd)
  local h = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = h:read("*a")
  h:close()
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

describe("layer-websdk 3.4.18 interop", function()
  local ready, why = true, nil
  setup(function()
    if not exists(MODULES .. "/layer-websdk/package.json") then
      local out, code = run("timeout 300 " .. INSTALL)
      if code ~= 0 then
        ready, why = false, out
      end
    end
    if ready and run("node --version") == nil then ready, why = false, "node not found" end
  end)

  it("two SDK users chat, patch metadata, send receipts, delete, and catch up by Event.replay", function()
    if not ready then
      io.stderr:write("\n\n*** INTEROP TEST SKIPPED: npm could not install layer-websdk@3.4.18 ***\n" .. tostring(why) .. "\n\n")
      pending("npm install failed: interop with layer-websdk NOT verified")
      return
    end
    local srv = L.start { lifetime = 120 }
    local ok, err = pcall(function()
      local out, code = run(string.format("timeout 90 node %s/run.js %s %s", DIR, srv.base, L.SECRET))
      assert.equal(0, code, out)
      assert.truthy(out:find("INTEROP OK", 1, true), out)
      for _, step in ipairs {
        "logged in through the nonce/identity-token challenge",
        "distinct conversation created",
        "messages exchanged through change packets",
        "metadata change seen by the other user",
        "recipient_status \"read\"",
        "message deleted for all participants",
        "received the missed messages through Event.replay",
      } do
        assert.truthy(out:find(step, 1, true), "missing step: " .. step .. "\n" .. out)
      end
    end)
    srv:stop()
    assert(ok, err)
  end)
end)
