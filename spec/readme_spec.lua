-- The README's echo bot, exactly as printed there (only the server's address
-- and secret swapped for the test server's), run the way a user runs it: in
-- its own directory, killed with kill -9 and started again.
local layer = require "layer"
local srv = require "support.layer_server"
local socket = require "socket"

local LUA = arg and arg[-1] or "lua5.4"

local function readme_bot()
  local f = assert(io.open("README.md"))
  local text = f:read("*a")
  f:close()
  for block in text:gmatch("```lua\n(.-)```") do
    if block:find("layer.client", 1, true) and block:find(":run()", 1, true) then return block end
  end
  error("README.md has no bot example")
end

describe("the README's echo bot", function()
  local server, alice, dir
  after_each(function()
    if alice then alice:close() end
    if server then server:stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  it("answers each message once, also what arrived while it was killed", function()
    server = srv.start({ lifetime = 90 })
    local code = readme_bot()
    assert.truthy(code:find("http://127.0.0.1:7480", 1, true) and code:find('"dev-secret"', 1, true),
      "the README example changed: update this spec")
    code = code:gsub("http://127%.0%.0%.1:7480", server.base):gsub('"dev%-secret"', '"' .. srv.SECRET .. '"')
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    local f = assert(io.open(dir .. "/bot.lua", "w"))
    f:write(code)
    f:close()
    -- the bot runs in its own directory: the spec's relative search paths made absolute
    local here = io.popen("pwd"):read("*l") -- not $PWD, which make -C leaves stale
    local function absolute(paths)
      return (paths:gsub("[^;]+", function(t) return t:sub(1, 1) == "/" and t or (here .. "/" .. t) end))
    end
    local function start()
      local lua = LUA:find("/", 1, true) and LUA:sub(1, 1) ~= "/" and (here .. "/" .. LUA) or LUA -- build/asan/lua-asan
      local p = assert(io.popen(("cd '%s' && LUA_PATH=%q LUA_CPATH=%q timeout 60 %s bot.lua >>bot.log 2>&1 & echo $!")
        :format(dir, absolute(package.path), absolute(package.cpath), lua)))
      local pid = tonumber(p:read("*l"))
      p:close()
      return pid
    end

    alice = layer.client({ url = server.base, app_id = "layer:///apps/staging/bot", backoff_base = 0.1,
      identity = function(nonce) return layer.dev_token({ secret = srv.SECRET, user_id = "alice", nonce = nonce }) end })
    local echoes, conv = {}, nil
    alice:on("message", function(msg)
      local n = msg:text():match("^echo: (.*)$")
      if n then echoes[n] = (echoes[n] or 0) + 1 end
    end)
    alice:on("ready", function()
      conv = assert(alice:create_conversation({ participants = { "alice", "bot" } }))
    end)
    local function pump_until(done, seconds, what)
      local deadline = socket.gettime() + seconds
      while not done() do
        assert(socket.gettime() < deadline, "timed out: " .. what)
        alice:step(0.01)
      end
    end
    -- the bot runs under timeout (so it stops by itself): kill -9 the bot, then timeout
    local function kill9(pid) os.execute("pkill -9 -P " .. pid .. "; kill -9 " .. pid .. " 2>/dev/null") end
    pump_until(function() return conv end, 10, "alice's conversation")
    local pid = start()
    -- the bot has no catch_up: it answers once it is logged in
    local pings = 0
    pump_until(function()
      if not next(echoes) and socket.gettime() % 0.5 < 0.02 then
        pings = pings + 1
        conv:send("ping " .. pings, function() end)
      end
      return next(echoes) ~= nil
    end, 20, "the bot's first answer")
    conv:send("1", function() end)
    pump_until(function() return echoes["1"] end, 10, "echo: 1")
    kill9(pid)
    conv:send("2", function() end) -- while the bot is down
    local t = socket.gettime() + 0.5
    while socket.gettime() < t do alice:step(0.01) end
    pid = start()
    pump_until(function() return echoes["2"] end, 15, "echo: 2 after the restart")
    conv:send("3", function() end)
    pump_until(function() return echoes["3"] end, 10, "echo: 3")
    t = socket.gettime() + 0.5
    while socket.gettime() < t do alice:step(0.01) end
    kill9(pid)
    assert.are.same({ 1, 1, 1 }, { echoes["1"], echoes["2"], echoes["3"] })
    local state = io.open(dir .. "/bot.db")
    assert.truthy(state, "the bot's state file is where the README says")
    state:close()
  end)
end)
