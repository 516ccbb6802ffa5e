-- spec/server/lifecycle_spec.lua - layer-server process life: clean stop on SIGTERM/SIGINT, --max-lifetime, refusing bad options.
local L = require("support.layer_server")
local socket = require("socket")

local function wait_dead(srv, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if not srv:alive() then return true end
    socket.sleep(0.05)
  end
  return false
end

describe("layer-server lifecycle", function()
  it("stops cleanly on SIGTERM and on SIGINT", function()
    for _, sig in ipairs { "TERM", "INT" } do
      local srv = L.start()
      assert.is_true(srv:alive())
      os.execute("kill -" .. sig .. " " .. srv.pid)
      local dead = wait_dead(srv, 3)
      srv:stop()
      assert.is_true(dead)
      local log = srv:read_log()
      os.remove(srv.log)
      assert.truthy(log:find("layer-server: stopping", 1, true))
    end
  end)

  it("exits by itself after --max-lifetime", function()
    local srv = L.start { lifetime = 1 }
    assert.equal(201, (srv:request { method = "POST", path = "/nonces" }))
    local dead = wait_dead(srv, 4)
    srv:stop()
    os.remove(srv.log)
    assert.is_true(dead)
  end)

  it("refuses unknown options and a port in use", function()
    local h = io.popen(L.binary .. " --bogus 1 2>&1; echo \"exit=$?\"")
    local out = h:read("*a")
    h:close()
    assert.truthy(out:find("usage", 1, true))
    assert.equal("2", out:match("exit=(%d+)"))
    local srv = L.start()
    local h2 = io.popen(L.binary .. " --port " .. srv.port .. " --db :memory: --max-lifetime 5 2>&1; echo \"exit=$?\"")
    local out2 = h2:read("*a")
    h2:close()
    srv:stop()
    assert.equal("1", out2:match("exit=(%d+)"))
  end)
end)
