-- spec/support/hostile_server.lua - a tiny HTTP/1.1 server for specs that plays a broken or
-- hostile Layer server: every request goes to a Lua handler. It never blocks: call :step()
-- between client steps (support.hostile_server.pump does both).
local socket = require "socket"

local M = {}
local Server = {}
Server.__index = Server

-- handler(method, path, body, head) -> status, body[, headers table]
function M.start(handler)
  local sock = assert(socket.bind("127.0.0.1", 0))
  sock:settimeout(0)
  local _, port = sock:getsockname()
  return setmetatable({ sock = sock, port = port, base = "http://127.0.0.1:" .. port, handler = handler,
    conns = {}, requests = {} }, Server)
end

local function answer(c, status, body, headers)
  local out = { "HTTP/1.1 " .. status .. " Hostile\r\n", "Content-Type: application/json\r\n",
    "Content-Length: " .. #body .. "\r\n" }
  for k, v in pairs(headers or {}) do out[#out + 1] = k .. ": " .. v .. "\r\n" end
  out[#out + 1] = "\r\n"
  out[#out + 1] = body
  c:settimeout(1)
  c:send(table.concat(out))
  c:settimeout(0)
end

-- Serve every complete request waiting in st.buf.
function Server:_serve(c, st)
  while true do
    local head_end = st.buf:find("\r\n\r\n", 1, true)
    if not head_end then return end
    local head = st.buf:sub(1, head_end - 1)
    local method, path = head:match("^(%u+) (%S+)")
    local len = tonumber(head:lower():match("\r\ncontent%-length:%s*(%d+)")) or 0
    if #st.buf < head_end + 3 + len then return end
    local body = st.buf:sub(head_end + 4, head_end + 3 + len)
    st.buf = st.buf:sub(head_end + 4 + len)
    self.requests[#self.requests + 1] = { method = method, path = path, body = body }
    local status, out, headers = self.handler(method, path, body, head)
    answer(c, status, out or "", headers)
  end
end

function Server:step()
  while true do
    local c = self.sock:accept()
    if not c then break end
    c:settimeout(0)
    self.conns[c] = { buf = "" }
  end
  for c, st in pairs(self.conns) do
    local data, err, partial = c:receive(65536)
    local chunk = data or partial
    if chunk and #chunk > 0 then st.buf = st.buf .. chunk end
    self:_serve(c, st)
    if err == "closed" then
      c:close()
      self.conns[c] = nil
    end
  end
end

-- How many requests matched method and a path pattern.
function Server:count(method, pattern)
  local n = 0
  for _, r in ipairs(self.requests) do
    if r.method == method and r.path:find(pattern) then n = n + 1 end
  end
  return n
end

function Server:close()
  for c in pairs(self.conns) do c:close() end
  self.conns = {}
  self.sock:close()
end

-- Step the server and the clients until done() or `seconds`; returns whether done() held.
function M.pump(server, clients, done, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if done() then return true end
    server:step()
    for _, c in ipairs(clients) do c:step(0.002) end
  end
  return done()
end

return M
