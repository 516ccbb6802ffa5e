-- layer.ngx: the client inside OpenResty (nginx's Lua module, LuaJIT).
--
--   * M.client(options): a layer.client on cosockets (HTTP/1.1 and the WebSocket
--     written here, TLS by sslhandshake) whose loop runs on one ngx.timer; it
--     never sleeps to poll: the loop waits on a semaphore that socket reads,
--     responses and new requests post.
--   * M.threads: what layer.client uses inside nginx whatever the transport:
--     handlers run on light threads of the caller's context, and a request
--     made from any handler, timer or light thread parks that thread on a
--     semaphore until its response, so results come back in straight-line code.
local core = require "layer.core"
local bit = require "bit"
local ffi = require "ffi"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local byte, char, concat, sub = string.byte, string.char, table.concat, string.sub
local bxor, band, rshift = bit.bxor, bit.band, bit.rshift

local M = {}

---------------------------------------------------------------------------
-- Threads and parking.

-- Phases where a light thread may wait (ngx.semaphore's own list).
local CAN_WAIT = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true }

local Parked = {}
Parked.__index = Parked

function Parked:wait()
  while not self.done do self.sema:wait(3600) end
  return self.a, self.b
end

function Parked:wake(a, b)
  if self.done then return end
  self.done, self.a, self.b = true, a, b
  self.sema:post(1)
end

-- A light thread that ends while its parent lives stays a zombie until the
-- parent waits for it; a loop that runs for the worker's life would pile them
-- up. So each parent reaps its finished children whenever it starts another.
local children = setmetatable({}, { __mode = "k" }) -- parent coroutine -> its threads

local function reap(kids)
  local n = 0
  for i = 1, #kids do
    local t = kids[i]
    kids[i] = nil
    if coroutine.status(t) == "zombie" then pcall(ngx.thread.wait, t) else n = n + 1; kids[n] = t end
  end
end

local function spawn(fn, ...)
  local parent = coroutine.running()
  local kids = children[parent]
  if kids then reap(kids) end
  local t = assert(ngx.thread.spawn(fn, ...))
  if coroutine.status(t) == "zombie" then -- finished without waiting
    pcall(ngx.thread.wait, t)
    return t
  end
  if not kids then
    kids = {}
    children[parent] = kids
  end
  kids[#kids + 1] = t
  return t
end

-- Light threads started and not yet reaped, over all parents (for tests).
function M.tracked_threads()
  local n = 0
  for _, kids in pairs(children) do n = n + #kids end
  return n
end

M.threads = {
  can_wait = function() return CAN_WAIT[ngx.get_phase()] == true end,
  park = function() return setmetatable({ sema = semaphore.new(0) }, Parked) end,
  -- init_worker cannot start light threads: a zero timer is a context of its own.
  spawn = function(fn)
    if ngx.get_phase() == "init_worker" then
      assert(ngx.timer.at(0, function() fn() end))
    else
      spawn(fn)
    end
  end,
}

---------------------------------------------------------------------------
-- URLs

local function parse_url(url)
  local scheme, host, port, path = url:match("^(%a[%w+.-]*)://([^/:?#]+):?(%d*)([^#]*)$")
  if not scheme then
    scheme, host, path = url:match("^(%a[%w+.-]*)://%[([^%]]+)%]:?%d*([^#]*)$")
    port = url:match("^%a[%w+.-]*://%[[^%]]+%]:(%d+)")
    if not scheme then return nil end
  end
  scheme = scheme:lower()
  local tls = scheme == "https" or scheme == "wss"
  if not (tls or scheme == "http" or scheme == "ws") then return nil end
  if path == "" then path = "/" end
  return { tls = tls, host = host, port = tonumber(port) or (tls and 443 or 80), path = path }
end

local function escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(byte(c)) end))
end

---------------------------------------------------------------------------
-- Reading from a cosocket without losing bytes to a read timeout.

local function read_exact(sock, n)
  local got, parts = 0, {}
  while got < n do
    local data, err, partial = sock:receive(n - got)
    data = data or partial
    if data and #data > 0 then
      parts[#parts + 1] = data
      got = got + #data
    end
    if err and err ~= "timeout" then return nil, err end
  end
  return concat(parts)
end

-- The status line and headers: status, {lower-case name = value}.
local function read_head(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "not an HTTP response: " .. line:sub(1, 60) end
  local headers = {}
  while true do
    line, err = sock:receive("*l")
    if not line then return nil, err end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  return status, headers
end

local function read_body(sock, headers, limit)
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      local line, err = sock:receive("*l")
      if not line then return nil, err end
      local size = tonumber(line:match("^%x+"), 16)
      if not size then return nil, "bad chunk size" end
      if size == 0 then
        repeat line, err = sock:receive("*l") until not line or line == ""
        if err then return nil, err end
        return concat(parts)
      end
      total = total + size
      if total > limit then return nil, "response too large" end
      local data
      data, err = read_exact(sock, size + 2)
      if not data then return nil, err end
      parts[#parts + 1] = data:sub(1, size)
    end
  end
  local length = tonumber(headers["content-length"])
  if length then
    if length > limit then return nil, "response too large" end
    if length == 0 then return "" end
    return read_exact(sock, length)
  end
  local data, err, partial = sock:receive("*a") -- until the server closes
  return data or partial, data == nil and err or nil
end

---------------------------------------------------------------------------
-- WebSocket frames (RFC 6455): what a client sends is masked.

-- XOR with the 4-byte key, a 32-bit word at a time in one reused buffer (the
-- copy and ffi.string around it never yield, so light threads cannot share it
-- mid-use). Byte by byte, a 64 KB frame cost a string.char and a table slot per byte.
local shared, shared_size = nil, 0
local KEEP = 1024 * 1024 -- a larger frame gets a buffer of its own, not kept for the worker's life
local key_word = ffi.new("int32_t[1]")
local key_bytes = ffi.cast("uint8_t *", key_word)

local function mask(payload, key)
  local n = #payload
  if n == 0 then return payload end
  local buffer = shared
  if n > shared_size then
    if n > KEEP then
      buffer = ffi.new("uint8_t[?]", n)
    else
      shared_size = math.max(4096, shared_size)
      while shared_size < n do shared_size = shared_size * 2 end
      shared = ffi.new("uint8_t[?]", shared_size)
      buffer = shared
    end
  end
  ffi.copy(buffer, payload, n)
  ffi.copy(key_word, key, 4)
  local k = key_word[0] -- the key's bytes in memory order, as the payload's words
  local words = ffi.cast("int32_t *", buffer)
  for i = 0, rshift(n, 2) - 1 do words[i] = bxor(words[i], k) end
  for i = band(n, -4), n - 1 do buffer[i] = bxor(buffer[i], key_bytes[band(i, 3)]) end
  return ffi.string(buffer, n)
end
M._mask = mask -- for bench/ngx_mask.lua

local function frame(opcode, payload)
  local n = #payload
  local head
  if n < 126 then
    head = char(0x80 + opcode, 0x80 + n)
  elseif n < 65536 then
    head = char(0x80 + opcode, 0x80 + 126, rshift(n, 8), band(n, 255))
  else
    local hi = math.floor(n / 4294967296)
    head = char(0x80 + opcode, 0x80 + 127, 0, 0, rshift(hi, 8), band(hi, 255),
      band(rshift(n, 24), 255), band(rshift(n, 16), 255), band(rshift(n, 8), 255), band(n, 255))
  end
  local key = sub(core.uuid():gsub("-", ""), 1, 8)
  key = char(tonumber(key:sub(1, 2), 16), tonumber(key:sub(3, 4), 16), tonumber(key:sub(5, 6), 16),
    tonumber(key:sub(7, 8), 16))
  return head .. key .. mask(payload, key)
end

-- One frame: fin, opcode, payload (or nil, err).
local function read_frame(sock, limit)
  local h, err = read_exact(sock, 2)
  if not h then return nil, err end
  local b1, b2 = byte(h, 1, 2)
  local fin, opcode, masked, n = band(b1, 0x80) ~= 0, band(b1, 0x0f), band(b2, 0x80) ~= 0, band(b2, 0x7f)
  if n == 126 then
    local e = read_exact(sock, 2)
    if not e then return nil, "closed" end
    n = byte(e, 1) * 256 + byte(e, 2)
  elseif n == 127 then
    local e = read_exact(sock, 8)
    if not e then return nil, "closed" end
    n = 0
    for i = 1, 8 do n = n * 256 + byte(e, i) end
  end
  if n > limit then return nil, "frame too large" end
  local key
  if masked then
    key, err = read_exact(sock, 4)
    if not key then return nil, err end
  end
  local payload = ""
  if n > 0 then
    payload, err = read_exact(sock, n)
    if not payload then return nil, err end
    if key then payload = mask(payload, key) end
  end
  return fin, opcode, payload
end

---------------------------------------------------------------------------
-- The transport: what src/core/driver.c does with libcurl and libwebsockets,
-- on cosockets. Everything runs in the loop's timer context (cosockets belong
-- to the context that made them); other contexts only post `wake`.

local MAX_BODY = 64 * 1024 * 1024
local GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

local Transport = {}
Transport.__index = Transport

local function trim(s) return (s:gsub("/+$", "")) end

function M.transport(client, opts)
  local base = trim(opts.url)
  local ws_base = opts.websocket_url and trim(opts.websocket_url) or base:gsub("^http", "ws")
  if opts.proxy and opts.proxy ~= "" then error("layer.ngx: the proxy option is not supported on cosockets", 3) end
  if opts.ca_file or opts.ca_path then
    error("layer.ngx: set nginx's lua_ssl_trusted_certificate instead of ca_file / ca_path", 3)
  end
  assert(parse_url(base) and parse_url(ws_base), "url (http:// or https://) is required")
  return setmetatable({
    engine = client._c, base = base, ws_base = ws_base, verify = opts.insecure ~= true,
    connect_ms = math.floor((opts.connect_timeout or 15) * 1000),
    request_ms = math.floor((opts.request_timeout or 60) * 1000),
    sema = semaphore.new(0), woken = false, closed = false, ws = nil,
    sessions = {}, -- "host:port" -> the last TLS session, for resumption
    fresh = setmetatable({}, { __mode = "k" }), -- TLS cosocket -> its URL, until keep_session
  }, Transport)
end

-- Another thread has work for the loop: new requests, a read, a response.
function Transport:wake()
  if not self.woken then
    self.woken = true
    self.sema:post(1)
  end
end

-- Called by step(): start what the engine wants, then wait up to timeout
-- seconds for a wake (never past the engine's own deadline).
function Transport:service(client, timeout)
  self:pump()
  local due = self.engine:deadline()
  if due and (not timeout or due < timeout) then timeout = due end
  if self.engine:pending() == 0 and timeout and timeout > 0 then self.sema:wait(timeout) end
  self.woken = false
end

function Transport:timeout() return nil end
function Transport:pollfd() return nil end

function Transport:close()
  self.closed = true
  self:wake()
end

function Transport:pump()
  if self.closed then return end
  local e = self.engine
  while true do
    local r = e:take_http()
    if not r then break end
    spawn(self.http, self, r)
  end
  local ws = self.ws
  if e:ws_wanted() then
    if not ws then
      ws = { state = "connecting" }
      self.ws = ws
      ws.thread = spawn(self.run_ws, self, ws)
      if ws.state == "closed" then ws.thread = nil end -- it failed at once
    end
  elseif ws then -- the engine gave up on this socket (dead, or closing)
    self:drop_ws(ws)
    e:ws_closed("closed by the client")
  end
  ws = self.ws
  if ws and ws.pong then
    local payload = ws.pong
    ws.pong = nil
    ws.sock:send(frame(10, payload))
  end
  while true do
    local f = e:take_frame()
    if not f then break end
    -- unsent requests are resent by the engine after a reconnect
    if ws and ws.state == "open" then
      local ok, err = ws.sock:send(frame(1, f))
      if not ok then ngx.log(ngx.INFO, "layer: WebSocket send failed: ", err) end
    end
  end
end

function Transport:drop_ws(ws)
  if self.ws == ws then self.ws = nil end
  ws.state = "closed"
  if ws.thread and coroutine.running() ~= ws.thread and coroutine.status(ws.thread) ~= "zombie" then
    ngx.thread.kill(ws.thread)
  end
  if ws.sock then ws.sock:close() end
end

-- Connect a cosocket, with TLS when the URL says so.
function Transport:connect(u, timeout_ms)
  local sock = ngx.socket.tcp()
  sock:settimeouts(self.connect_ms, timeout_ms, timeout_ms)
  local ok, err = sock:connect(u.host, u.port, { pool = ("%s:%d:%s"):format(u.host, u.port, u.tls and "tls" or "") })
  if not ok then return nil, "could not connect (" .. tostring(err) .. ")", 0 end
  if u.tls and sock:getreusedtimes() == 0 then
    -- The last session with this host resumes (an abbreviated handshake) when
    -- the server still knows it; otherwise the handshake is a full one.
    local key = u.host .. ":" .. u.port
    local session
    session, err = sock:sslhandshake(self.sessions[key], u.host, self.verify)
    if not session then
      self.sessions[key] = nil
      sock:close()
      return nil, "TLS failure (" .. tostring(err) .. ")", -1 -- a refused certificate stays refused
    end
    if type(session) ~= "boolean" then self.sessions[key] = session end
    self.fresh[sock] = u
  end
  return sock
end

-- TLS 1.3 servers send the session ticket after the handshake, so the session
-- sslhandshake returned cannot resume. Once an answer has been read the ticket
-- is in: sslhandshake on the open connection (no I/O) gives that session.
function Transport:keep_session(sock)
  local u = self.fresh[sock]
  if not u then return end
  self.fresh[sock] = nil
  local session = sock:sslhandshake(nil, u.host, self.verify)
  if session and type(session) ~= "boolean" then self.sessions[u.host .. ":" .. u.port] = session end
end

-- A request the engine gave up never comes back: whatever goes wrong here
-- still answers it.
function Transport:http(r)
  local ok, err = pcall(self.exchange, self, r)
  if not ok and not self.closed then
    self.engine:http_response(r.id, -1, "transport error (" .. tostring(err) .. ")")
    self:wake()
  end
end

function Transport:exchange(r)
  local e = self.engine
  local url = r.path:match("^https?://") and r.path or (self.base .. r.path)
  local u = parse_url(url)
  if not u then error("not an http(s) URL: " .. url:sub(1, 80), 0) end
  local lines = {
    ("%s %s HTTP/1.1"):format(r.method, u.path),
    "Host: " .. u.host .. ((u.port == (u.tls and 443 or 80)) and "" or (":" .. u.port)),
    "Accept: application/vnd.layer+json; version=" .. (e:subprotocol() == "layer-2.0" and "2.0" or "3.0"),
    "User-Agent: layer-lua",
  }
  local token = r.authenticated and e:session_token()
  if token then lines[#lines + 1] = ('Authorization: Layer session-token="%s"'):format(token) end
  if r.content_type then lines[#lines + 1] = "Content-Type: " .. r.content_type end
  for line in (r.headers or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  local body = r.body or ""
  if #body > 0 or r.method == "POST" or r.method == "PUT" or r.method == "PATCH" then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  local request = concat(lines, "\r\n") .. "\r\n\r\n" .. body

  local status, headers, text, failure, failure_status
  -- A kept-alive connection the server closed meanwhile fails before any answer
  -- comes back: that, and only that, gets one retry on a new connection.
  for _ = 1, 2 do
    local sock, err, fstatus = self:connect(u, self.request_ms)
    if not sock then
      failure, failure_status = err, fstatus
      break
    end
    local reused = sock:getreusedtimes() > 0
    local ok
    ok, err = sock:send(request)
    if ok then status, headers = read_head(sock) end
    if status then
      text, err = read_body(sock, headers, MAX_BODY)
      if text then
        self:keep_session(sock)
        if (headers.connection or ""):lower() == "close" or not (headers["content-length"] or headers["transfer-encoding"]) then
          sock:close()
        else
          sock:setkeepalive(60000, 16)
        end
        break
      end
    else
      err = err or headers
    end
    sock:close()
    local answered = status ~= nil
    status = nil
    failure, failure_status = (err == "timeout" and "timed out" or "broken HTTP exchange") .. " (" .. tostring(err) .. ")", 0
    if not reused or answered or err == "timeout" then break end
  end
  if self.closed then return end
  if status then
    e:http_response(r.id, status, text, headers["retry-after"], tonumber(headers["layer-count"]) or -1)
  else
    e:http_response(r.id, failure_status, failure)
  end
  self:wake()
end

-- Open the WebSocket, then read it until it closes or the loop drops it.
function Transport:run_ws(ws)
  local ok, err = pcall(self.read_ws, self, ws)
  if not ok and ws.state ~= "closed" then
    if self.ws == ws then self.ws = nil end
    ws.state = "closed"
    if ws.sock then ws.sock:close() end
    if not self.closed then
      self.engine:ws_closed("WebSocket error: " .. tostring(err))
      self:wake()
    end
  end
end

function Transport:read_ws(ws)
  local e = self.engine
  local function gone(reason)
    if self.ws == ws then self.ws = nil end
    ws.state = "closed"
    if ws.sock then ws.sock:close() end
    if not self.closed then
      e:ws_closed(reason)
      self:wake()
    end
  end
  local token = e:session_token()
  if not token then return gone("no session token") end
  local u = parse_url(self.ws_base .. "/?session_token=" .. escape(token))
  local sock, err = self:connect(u, self.connect_ms)
  if not sock then return gone("WebSocket error: " .. err) end
  ws.sock = sock
  local key = ngx.encode_base64(core.uuid():gsub("-", ""):sub(1, 16))
  local ok
  ok, err = sock:send(concat({
    "GET " .. u.path .. " HTTP/1.1",
    "Host: " .. u.host .. ":" .. u.port,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: " .. key,
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Protocol: " .. e:subprotocol(),
    "User-Agent: layer-lua",
  }, "\r\n") .. "\r\n\r\n")
  if not ok then return gone("WebSocket error: " .. tostring(err)) end
  local status, headers = read_head(sock)
  if status then self:keep_session(sock) end
  if status ~= 101 then
    return gone("WebSocket error: the server answered the upgrade with " .. tostring(status or headers))
  end
  if headers["sec-websocket-accept"] ~= ngx.encode_base64(ngx.sha1_bin(key .. GUID)) then
    return gone("WebSocket error: bad Sec-WebSocket-Accept")
  end
  -- Silence is the engine's business (keepalive, dead_after): reads never time out.
  sock:settimeouts(self.connect_ms, self.request_ms, 3600 * 1000)
  ws.state = "open"
  if self.closed then return gone("closed by the client") end
  e:ws_opened()
  self:wake()
  local parts = {}
  while true do
    local fin, opcode, payload = read_frame(sock, MAX_BODY)
    if fin == nil then return gone("WebSocket error: " .. tostring(opcode)) end
    if self.closed or ws.state ~= "open" then return end
    if opcode == 1 or opcode == 2 or opcode == 0 then
      parts[#parts + 1] = payload
      if fin then
        e:feed(#parts == 1 and parts[1] or concat(parts))
        parts = {}
        self:wake()
      end
    elseif opcode == 8 then
      local code = #payload >= 2 and (byte(payload, 1) * 256 + byte(payload, 2)) or 1005
      local reason = payload:sub(3)
      return gone(("the server closed the socket (%d%s%s)"):format(code, reason ~= "" and ": " or "", reason))
    elseif opcode == 9 then
      ws.pong = payload -- the loop writes it, so two threads never write at once
      self:wake()
    end
  end
end

---------------------------------------------------------------------------
-- M.client(options): layer.client options (proxy, ca_file and ca_path aside);
-- its loop starts on a timer at once. Call from init_worker_by_lua* or later.

function M.client(options)
  local opts = {}
  for k, v in pairs(options) do opts[k] = v end
  opts.transport = M.transport
  local client = require("layer").client(opts)
  local transport = client._transport
  assert(ngx.timer.at(0, function()
    local busy = 0
    while not client:closed() do
      if ngx.worker.exiting() then
        client:close()
        break
      end
      local timeout = math.min(client:timeout() or 1, 1)
      local ok, err = pcall(client.step, client, timeout)
      if not ok then ngx.log(ngx.ERR, "layer: ", tostring(err)) end
      -- a backlog keeps timeout at 0: yield now and then, or the worker serves nothing else
      busy = timeout > 0 and 0 or busy + 1
      if busy >= 50 then
        busy = 0
        ngx.sleep(0.001)
      end
    end
    if transport.ws then transport:drop_ws(transport.ws) end -- its reader would hold the timer
  end))
  return client
end

return M
