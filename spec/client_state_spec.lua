-- The state option: a bot's sync state in a SQLite file. A bot killed with
-- kill -9 at any moment and started again on the same file answers every
-- message exactly once, counted on the server; a first start can catch up;
-- a second process on the same file is refused.
local srv = require "support.layer_server"
local socket = require "socket"

local LUA = arg and arg[-1] or "lua5.4"

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".db"
end

local function remove_state(path)
  for _, suffix in ipairs({ "", "-wal", "-shm", "-journal" }) do os.remove(path .. suffix) end
end

local live = require "support.live"
local new_client, pump, run = live.client, live.pump, live.run

-- The bot as its own process: returns its pid.
local function start_bot(server, state, log, catch_up)
  local cmd = ("STATE_BOT_LIFETIME=60 STATE_BOT_WORK_MS=100 LUA_PATH=%q LUA_CPATH=%q %s spec/support/state_bot.lua %s %s bot %s %s 2>>%s & echo $!")
    :format(package.path, package.cpath, LUA, server.base, state, srv.SECRET, catch_up or "", log)
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

-- kill -9 the server and start it again on the same port and database
local function restart9(server, db)
  server:kill9()
  return srv.start({ lifetime = 120, db = db, port = server.port })
end

local function kill9(pid) os.execute("kill -9 " .. pid .. " 2>/dev/null") end

-- Every message of the conversation, as the server has them.
local function answers(server, token, conv_uuid)
  local counts, from = {}, nil
  repeat
    local status, body, list
    for _ = 1, 20 do -- the injected 503s hit this counting too
      status, _, body, list = server:request({ method = "GET", token = token,
        path = "/conversations/" .. conv_uuid .. "/messages?page_size=100" .. (from and ("&from_id=" .. from) or "") })
      if status ~= 503 then break end
    end
    assert(status == 200 and list, "messages: " .. tostring(status) .. " " .. tostring(body))
    for _, m in ipairs(list) do
      local n = m.parts[1].body:match("^echo: (%d+)$")
      if n then counts[tonumber(n)] = (counts[tonumber(n)] or 0) + 1 end
      from = m.id:match("[^/]+$")
    end
  until #list < 100
  return counts
end

describe("a client with a state file", function()
  local server, alice, state, log, db
  before_each(function()
    db = tmpname()
    server = srv.start({ lifetime = 120, db = db })
    alice = new_client(server, "alice")
    local up = false
    alice:once("ready", function() up = true end)
    pump({ alice }, function() return up end, 10, "ready")
    state, log = tmpname(), os.tmpname()
  end)
  after_each(function()
    if alice then alice:close() end
    if server then server:stop() end
    remove_state(state)
    remove_state(db)
    os.remove(log)
  end)

  it("is refused while another client holds it", function()
    local first = new_client(server, "bot", { state = state })
    local ok, err = pcall(new_client, server, "bot", { state = state })
    assert.is_false(ok)
    assert.matches("in use by another process", tostring(err), 1, true)
    first:close()
    new_client(server, "bot", { state = state }):close() -- free again once closed
  end)

  it("refuses a file that is not a state file, or cannot be opened, with the reason", function()
    local f = assert(io.open(state, "w"))
    f:write(("not sqlite "):rep(100))
    f:close()
    local ok, err = pcall(new_client, server, "bot", { state = state })
    assert.is_false(ok)
    assert.matches("state file " .. state .. ".*file is not a database", tostring(err))
    ok, err = pcall(new_client, server, "bot", { state = "/nonexistent-dir/bot.db" })
    assert.is_false(ok)
    assert.matches("state file /nonexistent%-dir/bot.db: cannot open", tostring(err))
    ok, err = pcall(new_client, server, "bot", { state = "bot.db", catch_up = "soon" })
    assert.is_false(ok)
    assert.matches("catch_up is a number of seconds", tostring(err), 1, true)
  end)

  it("refuses catch_up without a state file", function()
    assert.has_error(function() new_client(server, "bot", { catch_up = 60 }) end,
      "catch_up needs a state file (the state option)")
  end)

  it("answers, on its first start with catch_up, what was sent while it was deploying", function()
    local conv = run({ alice }, alice, function()
      return assert(alice:create_conversation({ participants = { "alice", "bot" }, distinct = false }))
    end)
    for i = 1, 3 do run({ alice }, alice, function() return assert(conv:send(tostring(i))) end) end
    local without = tmpname()
    local pid1 = start_bot(server, without, log) -- no catch_up: starts from now
    local pid2
    local uuid = conv.id:match("[^/]+$")
    local token = server:session("alice")
    local deadline = socket.gettime() + 15
    repeat
      alice:step(0.05)
      if not pid2 and socket.gettime() > deadline - 12 then
        kill9(pid1)
        remove_state(without)
        pid2 = start_bot(server, state, log, 60)
      end
      local counts = answers(server, token, uuid)
    until (counts[1] and counts[2] and counts[3]) or socket.gettime() > deadline
    kill9(pid2 or pid1)
    local counts = answers(server, token, uuid)
    assert.are.same({ 1, 1, 1 }, { counts[1], counts[2], counts[3] })
  end)

  -- Alice sends N numbered messages; between them, at random moments, one of
  -- the disruptions runs. Counted on the server: every N answered once.
  local function exactly_once(disruptions, N)
    local conv = run({ alice }, alice, function()
      return assert(alice:create_conversation({ participants = { "alice", "bot" }, distinct = false }))
    end)
    local uuid = conv.id:match("[^/]+$")
    local token = server:session("alice")
    local pid = start_bot(server, state, log, 60) -- catch_up: message 0 may beat its first login
    local bot = { pid = function() return pid end, restart = function() pid = start_bot(server, state, log, 60) end }
    -- the bot is up once it answered message 0
    run({ alice }, alice, function() return assert(conv:send("0")) end)
    local deadline = socket.gettime() + 15
    while not answers(server, token, uuid)[0] do
      assert(socket.gettime() < deadline, "the bot never answered")
      alice:step(0.05)
    end
    math.randomseed(os.time())
    local done, sent, turn = {}, 0, 0
    -- every disruption in turn, in a shuffled order
    for i = #disruptions, 2, -1 do
      local j = math.random(i)
      disruptions[i], disruptions[j] = disruptions[j], disruptions[i]
    end
    local next_kill = socket.gettime() + 0.2 + math.random() * 0.5
    while sent < N do
      sent = sent + 1
      conv:send(tostring(sent), function(m, err) assert(m, err) end)
      local until_t = socket.gettime() + 0.03 + math.random() * 0.05
      while socket.gettime() < until_t do alice:step(0.005) end
      if socket.gettime() > next_kill then
        turn = turn + 1
        local d = disruptions[(turn - 1) % #disruptions + 1]
        d.run(bot)
        done[d.name] = (done[d.name] or 0) + 1
        next_kill = socket.gettime() + 0.15 + math.random() * 0.3
      end
    end
    deadline = socket.gettime() + 30
    local counts
    repeat
      alice:step(0.05)
      counts = answers(server, token, uuid)
      local all = true
      for i = 1, N do if not counts[i] then all = false break end end
    until all or socket.gettime() > deadline
    kill9(pid)
    local f = io.open(log)
    local bot_log = f and f:read("*a") or ""
    if f then f:close() end
    local missing, doubled, what = {}, {}, {}
    for i = 1, N do
      if not counts[i] then missing[#missing + 1] = i elseif counts[i] > 1 then doubled[#doubled + 1] = i end
    end
    for name, n in pairs(done) do what[#what + 1] = n .. " " .. name end
    what = table.concat(what, ", ")
    assert.is_true(turn >= #disruptions and (done["bot kill -9"] or 0) >= 3, "disruptions: " .. what)
    assert.are.same({}, missing, "missing answers after " .. what .. "; bot said:\n" .. bot_log:sub(-2000))
    assert.are.same({}, doubled, "doubled answers after " .. what .. "; bot said:\n" .. bot_log:sub(-2000))
    return done
  end

  local function bot_kill()
    return { name = "bot kill -9", run = function(bot)
      kill9(bot.pid())
      local down = socket.gettime() + math.random() * 0.3 -- messages arrive while it is down
      while socket.gettime() < down do alice:step(0.005) end
      bot.restart()
    end }
  end

  it("answers every message exactly once through kill -9 at random moments", function()
    exactly_once({ bot_kill() }, 40)
  end)

  it("answers every message exactly once through bot and server kill -9s and the server's faults", function()
    exactly_once({ bot_kill(), bot_kill(), bot_kill(),
      { name = "server kill -9", run = function()
        server = restart9(server, db)
      end },
      { name = "closed sockets", run = function()
        server:admin("faults", { type = "close_sockets", user_id = "bot" })
      end },
      { name = "skipped counters", run = function()
        server:admin("faults", { type = "skip_counter", user_id = "bot", count = 2 })
      end },
      { name = "503s", run = function()
        server:admin("faults", { type = "http_error", status = 503, count = 2 })
      end },
      { name = "expired bot session", run = function()
        server:admin("faults", { type = "expire_session", user_id = "bot" })
      end },
    }, 100)
  end)
end)
