-- spec/openresty_transport_spec.lua - the cosocket transport (layer.ngx) inside
-- Debian's nginx: WebSocket masking, a word at a time, against the RFC's byte
-- by byte definition; and TLS session resumption: the transport hands
-- sslhandshake the last session it had with a host, so a new connection (after
-- the server closed the previous one) resumes it. For that, nginx terminates
-- TLS in front of the local server with a certificate made for the test,
-- closes every connection after one response, and logs $ssl_session_reused.
local layer = require "layer"
local socket = require "socket"
local L = require "support.layer_server"
local N = require "support.nginx"

local APP = "layer:///apps/staging/openresty"

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

describe("openresty transport", function()
  local srv, web, dir
  after_each(function()
    if web then web:stop() end
    if srv then srv:stop() end
    if dir then os.execute("rm -rf " .. dir) end
    web, srv, dir = nil, nil, nil
  end)

  -- Handshakes on the TLS server (protocols as nginx's ssl_protocols): each a
  -- {reused = bool, protocol =, uri =} after the bot logged in and made `n` requests.
  local function handshakes(protocols, n)
    srv = L.start({ log_level = "error" })
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir) ~= false)
    os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/c.key -out %s/c.pem >/dev/null 2>&1"):format(dir, dir))
    web = N.start({ env = { LAYER_SECRET = L.SECRET }, http = [[
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  lua_ssl_trusted_certificate ]] .. dir .. [[/c.pem;
  lua_ssl_protocols TLSv1.2 TLSv1.3;
  log_format handshakes '$ssl_session_reused $ssl_protocol $request_uri';
  init_worker_by_lua_block {
    local layer_ngx, dev = require "layer.ngx", require "layer.dev"
    local seen = { errors = {} }
    package.loaded.spec_seen = seen
    local c = layer_ngx.client({ url = "https://127.0.0.1:{{port2}}", app_id = "]] .. APP .. [[",
      identity = dev.identity(os.getenv("LAYER_SECRET"), "tls-bot"), backoff_base = 30 })
    c:on("ready", function() seen.ready = true end)
    c:on("error", function(err) seen.errors[#seen.errors + 1] = tostring(err) end)
    package.loaded.spec_bot = c
  }
  server {
    listen 127.0.0.1:{{port}};
    location /seen { content_by_lua_block { ngx.say(require("cjson").encode(package.loaded.spec_seen)) } }
    location /requests { content_by_lua_block {
      local bot = package.loaded.spec_bot
      for _ = 1, tonumber(ngx.var.arg_n) do assert(bot:request("GET", "/conversations")) end
      ngx.say("done")
    } }
  }
  server {
    listen 127.0.0.1:{{port2}} ssl;
    ssl_certificate ]] .. dir .. [[/c.pem;
    ssl_certificate_key ]] .. dir .. [[/c.key;
    ssl_protocols ]] .. protocols .. [[;
    keepalive_timeout 0;
    access_log ]] .. dir .. [[/handshakes.log handshakes;
    location / {
      proxy_pass http://127.0.0.1:]] .. srv.port .. [[;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }
  }
]] })
    local seen
    local deadline = socket.gettime() + 10
    repeat
      socket.sleep(0.05)
      seen = layer.json_decode(select(2, web:get("/seen")))
    until seen.ready or #seen.errors > 0 or socket.gettime() > deadline
    assert.is_true(seen.ready, table.concat(seen.errors, "\n") .. web:error_log())
    local status, body = web:get("/requests?n=" .. n)
    assert.are.equal(200, status, body)
    local out = {}
    for reused, protocol, uri in read(dir .. "/handshakes.log"):gmatch("(%S+) (%S+) (%S*)\n") do
      out[#out + 1] = { reused = reused == "r", protocol = protocol, uri = uri }
    end
    assert.are.equal(0, web:crashes())
    return out
  end

  local function count_reused(list)
    local n = 0
    for _, h in ipairs(list) do if h.reused then n = n + 1 end end
    return n
  end

  it("masks WebSocket payloads as RFC 6455 says, at every length around the word size and past the kept buffer", function()
    web = N.start({ http = [[
  server {
    listen 127.0.0.1:{{port}};
    location /mask { content_by_lua_block {
      local mask = require("layer.ngx")._mask
      local bit = require "bit"
      local function reference(payload, key)
        local out = {}
        for i = 1, #payload do
          out[i] = string.char(bit.bxor(payload:byte(i), key:byte((i - 1) % 4 + 1)))
        end
        return table.concat(out)
      end
      local lengths = { 2048, 65536, 65537, 1024 * 1024 + 3, 100 }
      for n = 0, 67 do lengths[#lengths + 1] = n end
      for _, n in ipairs(lengths) do
        local bytes = {}
        for i = 1, n do bytes[i] = string.char((i * 131 + n) % 256) end
        local payload, key = table.concat(bytes), string.char(n % 256, 0xff, 0x00, (n * 7) % 256)
        local masked = mask(payload, key)
        if masked ~= reference(payload, key) then ngx.say("differs at length ", n) return end
        if mask(masked, key) ~= payload then ngx.say("not its own inverse at length ", n) return end
      end
      ngx.say("ok")
    } }
  }
]] })
    local status, body = web:get("/mask")
    assert.are.equal(200, status, web:error_log())
    assert.are.equal("ok\n", body)
    assert.are.equal(0, web:crashes())
  end)

  it("resumes the last TLS 1.2 session for each new connection", function()
    local list = handshakes("TLSv1.2", 4)
    -- nonce, session, the socket's upgrade (logged when it closes: not yet), then 4 requests
    assert.is_true(#list >= 6, #list .. " requests logged")
    assert.is_false(list[1].reused)
    assert.are.equal("TLSv1.2", list[1].protocol)
    assert.are.equal(#list - 1, count_reused(list), "every connection after the first resumes")
  end)

  it("resumes TLS 1.3 sessions too", function()
    local list = handshakes("TLSv1.3", 4)
    assert.is_true(#list >= 6, #list .. " requests logged")
    assert.are.equal("TLSv1.3", list[1].protocol)
    assert.is_false(list[1].reused)
    assert.are.equal(#list - 1, count_reused(list), "every connection after the first resumes")
  end)
end)
