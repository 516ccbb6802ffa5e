-- spec/support/layer_server.lua - test-only helpers: start/stop build/layer-server, a tiny HTTP client and WebSocket client over luasocket.
local socket = require("socket")
local cjson = require("cjson")

local M = {}
M.SECRET = "spec-identity-secret"
M.ADMIN = "spec-admin-token"
M.ACCEPT3 = "application/vnd.layer+json; version=3.0"
M.ACCEPT2 = "application/vnd.layer+json; version=2.0"
M.null = cjson.null

local build = os.getenv("LAYER_BUILD") or "build"
M.binary = build .. "/layer-server"

local function tmpname()
  local n = os.tmpname()
  return n
end
M.tmpname = tmpname

local function sleep(s) socket.sleep(s) end
M.sleep = sleep

-- Server process ------------------------------------------------------------

local Server = {}
Server.__index = Server

-- Starts the server through layer.dev.start_server with the specs' secret and
-- admin token; opts.db (default :memory:), opts.args (extra flags, one string),
-- opts.lifetime, opts.log_level, opts.log.
function M.start(opts)
  opts = opts or {}
  local log = opts.log or tmpname()
  local args = {}
  for a in (opts.args or ""):gmatch("%S+") do args[#args + 1] = a end
  local dev = require "layer.dev"
  local ok, handle = pcall(dev.start_server, { binary = M.binary, port = opts.port, db = opts.db, secret = M.SECRET,
    admin_token = M.ADMIN, max_lifetime = opts.lifetime or 120, log_level = opts.log_level or "info", log = log,
    args = args })
  if not ok then error(handle, 2) end
  return setmetatable({ dev = handle, port = handle.port, pid = handle.pid, log = log,
    base = "http://127.0.0.1:" .. handle.port, sockets = {} }, Server)
end

function Server:alive() return self.dev.alive() end

-- Stops the server and waits for it. The log file is removed unless the
-- server had already died by itself (then it is kept for the post-mortem).
function Server:stop(signal)
  for _, w in ipairs(self.sockets) do pcall(function() w:close() end) end
  self.sockets = {}
  local was_alive = self.dev.alive()
  self.dev.stop(signal) -- nothing once stopped
  if was_alive and not os.getenv("LAYER_KEEP_LOGS") then os.remove(self.log) end
end

function Server:kill9() self:stop("KILL") end

-- Stops the server and fails if it had died while the specs ran.
function Server:stop_checked()
  local alive = self:alive()
  self:stop()
  assert(alive, "layer-server died during the tests; log: " .. self.log)
end

function Server:read_log()
  local f = io.open(self.log)
  if not f then return "" end
  local t = f:read("*a")
  f:close()
  return t
end

-- HTTP ---------------------------------------------------------------------

-- Raw request: returns status, headers (lower-case keys), body text, decoded JSON (or nil).
-- Reads an HTTP response head: true, status (nil if unreadable), lower-cased
-- headers; or false, err if the peer closed first.
local function read_head(c)
  local status_line, err = c:receive("*l")
  if not status_line then return false, err end
  local headers = {}
  while true do
    local l = c:receive("*l")
    if not l or l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  return true, tonumber(status_line:match("^HTTP/1%.%d (%d+)")), headers
end

function Server:raw(text, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout or 5)
  assert(c:connect("127.0.0.1", self.port))
  assert(c:send(text))
  local got, status, headers = read_head(c)
  if not got then c:close() return nil, status end
  local body = ""
  local len = tonumber(headers["content-length"] or "")
  if len and len > 0 then body = c:receive(len) or "" end
  c:close()
  local ok, json = pcall(cjson.decode, body)
  return status, headers, body, ok and json or nil
end

-- request{method, path, token, body (string or table), headers, accept}
function Server:request(r)
  local body = r.body
  if type(body) == "table" then body = cjson.encode(body) end
  body = body or ""
  local lines = {
    (r.method or "GET") .. " " .. r.path .. " HTTP/1.1",
    "Host: 127.0.0.1:" .. self.port,
    "Connection: close",
  }
  if r.accept ~= false then lines[#lines + 1] = "Accept: " .. (r.accept or M.ACCEPT3) end
  if r.token then lines[#lines + 1] = 'Authorization: Layer session-token="' .. r.token .. '"' end
  if r.admin then lines[#lines + 1] = "Authorization: Bearer " .. (r.admin == true and M.ADMIN or r.admin) end
  local ctype = r.content_type
  if ctype == nil and #body > 0 then ctype = "application/json" end
  if ctype then lines[#lines + 1] = "Content-Type: " .. ctype end
  for k, v in pairs(r.headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if #body > 0 or r.method == "POST" or r.method == "PUT" or r.method == "PATCH" then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  return self:raw(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body, r.timeout)
end

function Server:admin(path, body)
  return self:request { method = "POST", path = "/admin/" .. path, admin = true, body = body, accept = false }
end

-- A session for user through the admin shortcut.
function Server:session(user)
  local st, _, body, j = self:admin("sessions", { user_id = user })
  assert(st == 201, "admin session failed: " .. tostring(st) .. " " .. tostring(body))
  return j.session_token
end

-- base64url and HS256 JWTs (HMAC through the openssl command line tool)
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
function M.b64url(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
    if b then out[#out + 1] = b64chars:sub(c3 + 1, c3 + 1) end
    if c then out[#out + 1] = b64chars:sub(c4 + 1, c4 + 1) end
  end
  return table.concat(out)
end

local function hmac_b64url(secret, data)
  local f = tmpname()
  local h = io.open(f, "wb")
  h:write(data)
  h:close()
  local p = io.popen("openssl dgst -sha256 -hmac '" .. secret .. "' -binary < '" .. f .. "'", "r")
  local mac = p:read("*a")
  p:close()
  os.remove(f)
  return M.b64url(mac)
end

function M.jwt(claims, secret, alg)
  return M.jwt_raw(cjson.encode(claims), secret, alg)
end

-- A JWT over claims_json as given (for claims cjson cannot write, e.g. 1e999).
function M.jwt_raw(claims_json, secret, alg)
  local header = M.b64url(cjson.encode { typ = "JWT", alg = alg or "HS256", cty = "layer-eit;v=1" })
  local payload = M.b64url(claims_json)
  if alg == "none" then return header .. "." .. payload .. "." end
  return header .. "." .. payload .. "." .. hmac_b64url(secret or M.SECRET, header .. "." .. payload)
end

-- The real challenge flow: nonce, identity token, session.
function Server:login(user, extra)
  local st, _, _, j = self:request { method = "POST", path = "/nonces" }
  assert(st == 201, "nonce failed")
  local claims = { prn = user, nce = j.nonce, iat = os.time(), exp = os.time() + 600 }
  for k, v in pairs(extra or {}) do claims[k] = v end
  local st2, _, body, j2 = self:request { method = "POST", path = "/sessions",
    body = { identity_token = M.jwt(claims), app_id = "layer:///apps/staging/spec" } }
  assert(st2 == 201, "session failed: " .. tostring(body))
  return j2.session_token
end

-- WebSocket ----------------------------------------------------------------

local WS = {}
WS.__index = WS

local function frame(opcode, payload)
  local n = #payload
  local head
  if n < 126 then
    head = string.char(128 + opcode, 128 + n)
  elseif n < 65536 then
    head = string.char(128 + opcode, 128 + 126, math.floor(n / 256), n % 256)
  else
    local b = {}
    local v = n
    for i = 8, 1, -1 do b[i] = v % 256; v = math.floor(v / 256) end
    head = string.char(128 + opcode, 128 + 127, b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8])
  end
  -- An all-zero masking key: masking is then the identity, no bit operations needed.
  return head .. "\0\0\0\0" .. payload
end

-- connect(server, token, {protocol="layer-3.0", path="/"}) -> ws or nil, status
function Server:ws(token, opts)
  opts = opts or {}
  local c = assert(socket.tcp())
  c:settimeout(opts.timeout or 5)
  assert(c:connect("127.0.0.1", self.port))
  local path = (opts.path or "/") .. (token and ("?session_token=" .. token .. "&client-id=spec") or "")
  local req = {
    "GET " .. path .. " HTTP/1.1",
    "Host: 127.0.0.1:" .. self.port,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  }
  if opts.protocol ~= false then req[#req + 1] = "Sec-WebSocket-Protocol: " .. (opts.protocol or "layer-3.0") end
  c:send(table.concat(req, "\r\n") .. "\r\n\r\n")
  local got, status, headers = read_head(c)
  if not got then c:close() return nil, "closed" end
  if status ~= 101 then c:close() return nil, status end
  local w = setmetatable({ c = c, log = {}, pending = {}, protocol = headers["sec-websocket-protocol"], rid = 0 }, WS)
  self.sockets[#self.sockets + 1] = w
  return w
end

function WS:send_text(s) return self.c:send(frame(1, s)) end
function WS:send_binary(s) return self.c:send(frame(2, s)) end
function WS:send_json(t) return self:send_text(cjson.encode(t)) end

-- Reads one frame; returns opcode, payload or nil, err.
function WS:read_frame(timeout)
  self.c:settimeout(timeout or 5)
  local h, err = self.c:receive(2)
  if not h then return nil, err end
  local b1, b2 = h:byte(1, 2)
  local opcode = b1 % 16
  local n = b2 % 128
  if n == 126 then
    local e = self.c:receive(2)
    if not e then return nil, "closed" end
    n = e:byte(1) * 256 + e:byte(2)
  elseif n == 127 then
    local e = self.c:receive(8)
    if not e then return nil, "closed" end
    n = 0
    for i = 1, 8 do n = n * 256 + e:byte(i) end
  end
  local payload = ""
  if n > 0 then
    payload, err = self.c:receive(n)
    if not payload then return nil, err end
  end
  return opcode, payload
end

-- Next server packet (decoded), or nil, "timeout"/"closed", close code.
function WS:receive(timeout)
  if #self.pending > 0 then return table.remove(self.pending, 1) end
  local deadline = socket.gettime() + (timeout or 5)
  while true do
    local left = deadline - socket.gettime()
    if left <= 0 then return nil, "timeout" end
    local op, payload = self:read_frame(left)
    if not op then return nil, payload end
    if op == 8 then
      local code = #payload >= 2 and payload:byte(1) * 256 + payload:byte(2) or nil
      self.closed = code or true
      return nil, "closed", code
    elseif op == 9 then
      self.c:send(frame(10, payload))
    elseif op == 1 then
      local p = cjson.decode(payload)
      self.log[#self.log + 1] = p
      return p
    end
  end
end

-- Waits for a packet matching pred; earlier non-matching packets stay queued.
function WS:wait(pred, timeout)
  for i, p in ipairs(self.pending) do
    if pred(p) then table.remove(self.pending, i) return p end
  end
  local deadline = socket.gettime() + (timeout or 5)
  local skipped = {}
  while true do
    local left = deadline - socket.gettime()
    if left <= 0 then break end
    self.c:settimeout(left)
    local p, err, code = nil, nil, nil
    local op, payload = self:read_frame(left)
    if not op then err = payload
    elseif op == 8 then
      code = #payload >= 2 and payload:byte(1) * 256 + payload:byte(2) or nil
      self.closed = code or true
      err = "closed"
    elseif op == 1 then
      p = cjson.decode(payload)
      self.log[#self.log + 1] = p
    end
    if p then
      if pred(p) then
        for _, s in ipairs(skipped) do self.pending[#self.pending + 1] = s end
        return p
      end
      skipped[#skipped + 1] = p
    elseif err then
      for _, s in ipairs(skipped) do self.pending[#self.pending + 1] = s end
      return nil, err, code
    end
  end
  for _, s in ipairs(skipped) do self.pending[#self.pending + 1] = s end
  return nil, "timeout"
end

-- Sends a request and waits for its response packet.
function WS:request(method, data, object_id, timeout)
  self.rid = self.rid + 1
  local rid = "r" .. self.rid
  self:send_json { type = "request", body = { method = method, request_id = rid, data = data, object_id = object_id } }
  return self:wait(function(p) return p.type == "response" and p.body.request_id == rid end, timeout)
end

-- Waits for a change packet on an object id (and operation, if given).
function WS:change(id, operation, timeout)
  return self:wait(function(p)
    return p.type == "change" and p.body.object.id == id and (not operation or p.body.operation == operation)
  end, timeout)
end

function WS:close()
  pcall(function() self.c:send(frame(8, "\3\232")) end)
  self.c:close()
end

M.uuid = function()
  local t = {}
  for i = 1, 32 do t[i] = string.format("%x", math.random(0, 15)) end
  t[13] = "4"
  local s = table.concat(t)
  return s:sub(1, 8) .. "-" .. s:sub(9, 12) .. "-" .. s:sub(13, 16) .. "-" .. s:sub(17, 20) .. "-" .. s:sub(21, 32)
end
math.randomseed(os.time() + math.floor((socket.gettime() % 1) * 1e6))

M.cjson = cjson
return M
