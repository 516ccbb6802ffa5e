-- spec/openresty_spec.lua - the client inside OpenResty: Debian's nginx and its Lua
-- module on 127.0.0.1 against the local server. Requests from content handlers
-- and timers, the cosocket transport (layer.ngx) and the worker's survival.
local layer = require "layer"
local dev = require "layer.dev"
local socket = require "socket"
local L = require "support.layer_server"
local N = require "support.nginx"

local APP = "layer:///apps/staging/openresty"

-- The bot's configuration: a client made in init_worker, an endpoint that sends
-- in straight-line code, and a message handler that answers.
local function bot_http(make_client)
  return [[
  init_worker_by_lua_block {
    local layer = require "layer"
    local dev = require "layer.dev"
    local opts = { url = os.getenv("LAYER_URL"), app_id = "]] .. APP .. [[",
      identity = dev.identity(os.getenv("LAYER_SECRET"), "ngx-bot", { display_name = "Nginx Bot" }) }
    local bot = ]] .. make_client .. [[
    package.loaded.spec_bot = bot
    bot:on("message", function(msg)
      if msg.sender.user_id ~= "ngx-bot" then
        if msg:text():find("^nap ") then ngx.sleep(0.2) end -- nginx's own wait, in a handler
        local reply, err = msg.conversation:send("echo: " .. msg:text())
        if not reply then ngx.log(ngx.ERR, "could not answer: ", tostring(err)) end
      end
    end)
  }
  server {
    listen 127.0.0.1:{{port}};
    location /refuse { content_by_lua_block {
      local layer_ngx = require "layer.ngx"
      local base = { url = os.getenv("LAYER_URL"), session_token = "t", user_id = "u" }
      for _, extra in ipairs({ { proxy = "http://127.0.0.1:1" }, { ca_file = "/x.pem" }, { url = "ftp://x" } }) do
        local o = {}
        for k, v in pairs(base) do o[k] = v end
        for k, v in pairs(extra) do o[k] = v end
        local ok, err = pcall(layer_ngx.client, o)
        ngx.say(ok and "accepted" or tostring(err))
      end
    } }
    location /threads { content_by_lua_block { ngx.say(require("layer.ngx").tracked_threads()) } }
    location /spawn { content_by_lua_block {
      package.loaded.spec_bot:spawn(function() end)
      ngx.say("spawned")
    } }
    location /send { content_by_lua_block {
      local bot = package.loaded.spec_bot
      ngx.update_time()
      local started = ngx.now()
      local conv, err = bot:create_conversation({ participants = { ngx.var.arg_to }, distinct = true })
      if not conv then ngx.status = 502; ngx.say(tostring(err)); return end
      local msg
      msg, err = conv:send(ngx.unescape_uri(ngx.var.arg_text or "hello"))
      if not msg then ngx.status = 502; ngx.say(tostring(err)); return end
      ngx.update_time()
      ngx.say(require("cjson").encode({ id = msg.id, position = msg.position, conversation = conv.id,
        ms = (ngx.now() - started) * 1000 }))
    } }
  }
]]
end

-- The recipe docs/client.md gave before layer.ngx: the C transport polled from a timer.
local POLLED = [[layer.client(opts)
    ngx.timer.at(0, function()
      while not bot:closed() do bot:step(0); ngx.sleep(math.min(bot:timeout() or 0.05, 0.05)) end
    end)]]

local function person(srv, user_id)
  return layer.client({ url = srv.base, app_id = APP, identity = dev.identity(L.SECRET, user_id) })
end

local function step_until(clients, pred, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    for _, c in ipairs(clients) do c:step(0.005) end
    if pred() then return true end
  end
  return false
end

-- Ada, logged in, hands record() every message the nginx bot sends her.
local function ada_hearing(srv, record)
  local ada, ready = person(srv, "ada"), false
  ada:on("ready", function() ready = true end)
  ada:on("message", function(msg)
    if msg.sender.user_id == "ngx-bot" then record(msg) end
  end)
  assert.is_true(step_until({ ada }, function() return ready end))
  return ada
end

describe("openresty", function()
  local srv, web
  after_each(function()
    if web then web:stop() end
    if srv then srv:stop() end
    web, srv = nil, nil
  end)

  local function start(make_client)
    srv = L.start({ log_level = "error" })
    web = N.start({ http = bot_http(make_client), env = { LAYER_URL = srv.base, LAYER_SECRET = L.SECRET } })
  end

  it("keeps the worker alive when a content handler calls client:spawn on a polled C-transport client", function()
    start(POLLED)
    socket.sleep(0.3) -- let the timer log in, so its coroutines exist
    for _ = 1, 3 do
      local status, body = web:get("/spawn")
      assert.are.equal(200, status)
      assert.are.equal("spawned\n", body)
    end
    socket.sleep(0.2)
    assert.are.equal(0, web:crashes(), web:error_log())
  end)

  it("sends from a content handler in straight-line code, and the timer-driven bot answers", function()
    start([[require("layer.ngx").client(opts)]])
    local answers = {}
    local ada = ada_hearing(srv, function(msg) answers[#answers + 1] = msg:text() end)
    local status, body = web:get("/send?to=ada&text=hi%20from%20nginx")
    assert.are.equal(200, status, body)
    local sent = layer.json_decode(body)
    assert.is_truthy(sent.id:match("^layer:///messages/"))
    assert.is_truthy(sent.position)
    -- ada sees the bot's message and answers; the bot answers her in its timer
    local conv
    assert.is_true(step_until({ ada }, function()
      conv = ada:conversation(sent.conversation)
      return conv ~= nil and answers[1] == "hi from nginx"
    end), "ada never saw the message from nginx")
    ada:spawn(function() assert(conv:send("ping")) end)
    assert.is_true(step_until({ ada }, function() return answers[2] == "echo: ping" end),
      "the nginx bot did not answer; its log:\n" .. web:error_log())
    assert.are.equal(0, web:crashes())
    assert.are.same({}, web:lua_errors())
    ada:close()
  end)

  it("answers a content handler without waiting for a poll interval", function()
    start([[require("layer.ngx").client(opts)]])
    local times = {}
    for i = 1, 21 do
      local status, body = web:get("/send?to=bob&text=n" .. i)
      assert.are.equal(200, status, body)
      times[#times + 1] = layer.json_decode(body).ms
    end
    table.remove(times, 1) -- the first one also logs in and creates the conversation
    table.sort(times)
    -- a 50 ms poll makes the median about 50 ms; the cosocket transport is a few ms
    assert.is_true(times[10] < 25, "median send " .. times[10] .. " ms")
    assert.are.equal(0, web:crashes())
  end)

  it("logs in over https and wss by sslhandshake, and refuses a certificate it does not trust", function()
    srv = L.start({ log_level = "error" })
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir) ~= false)
    for _, name in ipairs({ "trusted", "other" }) do
      os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 " ..
        "-addext subjectAltName=IP:127.0.0.1 -keyout %s/%s.key -out %s/%s.pem >/dev/null 2>&1"):format(dir, name, dir, name))
    end
    -- nginx itself terminates TLS in front of the local server, once per certificate
    local function tls_server(port, name)
      return ([[
  server {
    listen 127.0.0.1:%s ssl;
    ssl_certificate %s/%s.pem;
    ssl_certificate_key %s/%s.key;
    location / {
      proxy_pass http://127.0.0.1:%d;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }
  }]]):format(port, dir, name, dir, name, srv.port)
    end
    local untrusted_port = N.free_port()
    web = N.start({ env = { LAYER_SECRET = L.SECRET }, http = [[
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  lua_ssl_trusted_certificate ]] .. dir .. [[/trusted.pem;
  init_worker_by_lua_block {
    local layer_ngx, dev = require "layer.ngx", require "layer.dev"
    local seen = { errors = {} }
    package.loaded.spec_seen = seen
    local function make(url, name)
      local c = layer_ngx.client({ url = url, app_id = "]] .. APP .. [[",
        identity = dev.identity(os.getenv("LAYER_SECRET"), name), backoff_base = 30 })
      c:on("ready", function() seen[name] = true end)
      c:on("error", function(err) seen.errors[#seen.errors + 1] = name .. ": " .. tostring(err) end)
      return c
    end
    package.loaded.spec_bot = make("https://127.0.0.1:{{port2}}", "tls-bot")
    make("https://127.0.0.1:]] .. untrusted_port .. [[", "refused-bot")
  }
  server {
    listen 127.0.0.1:{{port}};
    location /seen { content_by_lua_block { ngx.say(require("cjson").encode(package.loaded.spec_seen)) } }
    location /send { content_by_lua_block {
      local conv = assert(package.loaded.spec_bot:create_conversation({ participants = { "ada" }, distinct = true }))
      local msg, err = conv:send("over TLS")
      ngx.say(msg and msg.id or tostring(err))
    } }
  }
]] .. tls_server("{{port2}}", "trusted") .. tls_server(untrusted_port, "other") })
    local seen
    local deadline = socket.gettime() + 10
    repeat
      socket.sleep(0.05)
      seen = layer.json_decode(select(2, web:get("/seen")))
    until (seen["tls-bot"] and #seen.errors > 0) or socket.gettime() > deadline
    os.execute("rm -rf " .. dir)
    assert.is_true(seen["tls-bot"], web:error_log())
    assert.is_nil(seen["refused-bot"])
    assert.is_truthy(seen.errors[1]:find("refused%-bot: .*TLS failure"), seen.errors[1])
    local status, body = web:get("/send")
    assert.are.equal(200, status)
    assert.is_truthy(body:match("^layer:///messages/"), body)
    assert.are.equal(0, web:crashes())
  end)

  it("reconnects its WebSocket after the server closes it, and answers again", function()
    start([[require("layer.ngx").client(opts)]])
    local answers = {}
    local ada = ada_hearing(srv, function(msg) answers[#answers + 1] = msg:text() end)
    local status, body = web:get("/send?to=ada&text=first")
    assert.are.equal(200, status, body)
    local conv_id = layer.json_decode(body).conversation
    assert.is_true(step_until({ ada }, function() return answers[1] == "first" end))
    local _, _, _, j = srv:admin("faults", { type = "close_sockets", user_id = "ngx-bot" })
    assert.are.equal(1, j.affected)
    ada:spawn(function() assert(ada:conversation(conv_id):send("after the close")) end)
    assert.is_true(step_until({ ada }, function() return answers[2] == "echo: after the close" end, 15),
      "no answer after the close; nginx log:\n" .. web:error_log())
    assert.are.equal(0, web:crashes())
    assert.are.same({}, web:lua_errors())
    ada:close()
  end)

  it("reaps the light threads of finished handlers and requests, so a long-lived loop does not pile them up", function()
    start([[require("layer.ngx").client(opts)]])
    local answers = 0
    local ada = ada_hearing(srv, function(msg) if msg:text():find("^echo: ") then answers = answers + 1 end end)
    local status, body = web:get("/send?to=ada&text=start")
    assert.are.equal(200, status, body)
    local conv_id = layer.json_decode(body).conversation
    assert.is_true(step_until({ ada }, function() return ada:conversation(conv_id) ~= nil end))
    for i = 1, 60 do
      ada:spawn(function() assert(ada:conversation(conv_id):send("n" .. i)) end)
      assert.is_true(step_until({ ada }, function() return answers == i end), "no answer to n" .. i)
    end
    -- each answer took a handler thread (126 tracked after 60 when nothing reaped them)
    local threads = tonumber((select(2, web:get("/threads"))))
    assert.is_true(threads < 10, threads .. " threads tracked after 60 answers")
    ada:close()
  end)

  it("reads chunked, close-delimited and kept-alive HTTP responses on its cosockets", function()
    web = N.start({ http = [[
  init_worker_by_lua_block {
    package.loaded.spec_fake = require("layer.ngx").client({ url = "http://127.0.0.1:{{port}}/fake",
      session_token = "t", user_id = "u", backoff_base = 30 })
  }
  server {
    listen 127.0.0.1:{{port}};
    location /fake/chunked { content_by_lua_block {
      ngx.header["Content-Type"] = "application/json"
      ngx.print('{"parts": ["one", ')
      ngx.flush(true)
      ngx.print('"two"]}')
    } }
    location /fake/close {
      chunked_transfer_encoding off;
      content_by_lua_block { ngx.header["Content-Type"] = "application/json"; ngx.print('{"closed": true}') }
    }
    location /fake/length { content_by_lua_block {
      ngx.header["Content-Type"] = "application/json"
      ngx.header["Content-Length"] = 13
      ngx.print('{"length": 1}')
    } }
    location /check { content_by_lua_block {
      local c = package.loaded.spec_fake
      local out = {}
      for _, path in ipairs({ "/chunked", "/close", "/length", "/length", "/chunked" }) do
        local v, err = c:request("GET", path)
        out[#out + 1] = v and require("cjson").encode(v) or ("error: " .. tostring(err))
      end
      ngx.say(table.concat(out, "\n"))
    } }
  }
]] })
    local status, body = web:get("/check")
    assert.are.equal(200, status, body)
    assert.are.equal(table.concat({ '{"parts":["one","two"]}', '{"closed":true}', '{"length":1}', '{"length":1}',
      '{"parts":["one","two"]}' }, "\n") .. "\n", body)
    assert.are.equal(0, web:crashes())
  end)

  it("lets handlers wait nginx's way (ngx.sleep) without holding up other handlers", function()
    start([[require("layer.ngx").client(opts)]])
    local answers = {}
    local ada = ada_hearing(srv, function(msg) answers[msg:text()] = socket.gettime() end)
    local status, body = web:get("/send?to=ada&text=start")
    assert.are.equal(200, status, body)
    local conv_id = layer.json_decode(body).conversation
    assert.is_true(step_until({ ada }, function() return ada:conversation(conv_id) ~= nil end))
    local t0 = socket.gettime()
    ada:spawn(function()
      assert(ada:conversation(conv_id):send("nap 1"))
      assert(ada:conversation(conv_id):send("nap 2"))
    end)
    assert.is_true(step_until({ ada }, function() return answers["echo: nap 1"] and answers["echo: nap 2"] end))
    -- one after the other would take 0.4 s
    assert.is_true(answers["echo: nap 2"] - t0 < 0.35, ("second answer after %.3f s"):format(answers["echo: nap 2"] - t0))
    assert.are.same({}, web:lua_errors())
    ada:close()
  end)

  it("refuses, with a clear error, options cosockets cannot honour", function()
    start([[require("layer.ngx").client(opts)]])
    local status, body = web:get("/refuse")
    assert.are.equal(200, status)
    local lines = {}
    for line in body:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(3, #lines, body)
    assert.is_truthy(lines[1]:find("proxy option is not supported", 1, true), lines[1])
    assert.is_truthy(lines[2]:find("lua_ssl_trusted_certificate", 1, true), lines[2])
    assert.is_truthy(lines[3]:find("url (http:// or https://) is required", 1, true), lines[3])
    assert.are.equal(0, web:crashes())
  end)

  it("sends a long message as rich content (POST /content, then the upload URL) over cosockets", function()
    start([[require("layer.ngx").client(opts)]])
    local text = ("0123456789"):rep(300)
    local status, body = web:get("/send?to=bob&text=" .. text)
    assert.are.equal(200, status, body)
    local sent = layer.json_decode(body)
    local token = srv:session("bob")
    local uuid = sent.id:match("([%x-]+)$")
    local st, _, _, msg = srv:request({ path = "/messages/" .. uuid, token = token })
    assert.are.equal(200, st)
    local part = msg.parts[1]
    assert.is_truthy(part.content, "the part was sent inline, not as rich content")
    assert.are.equal(#text, part.content.size)
  end)

  it("survives client:spawn from a content handler on the cosocket client", function()
    start([[require("layer.ngx").client(opts)]])
    socket.sleep(0.3)
    for _ = 1, 3 do assert.are.equal(200, (web:get("/spawn"))) end
    socket.sleep(0.2)
    assert.are.equal(0, web:crashes(), web:error_log())
  end)
end)
