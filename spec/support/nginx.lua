-- spec/support/nginx.lua - test-only helpers: Debian's nginx with its Lua module on
-- 127.0.0.1, in a temporary prefix, stopping by itself; plus a tiny HTTP GET.
local socket = require("socket")

local M = {}

local build = os.getenv("LAYER_BUILD") or "build"
-- nginx runs its own LuaJIT, so it loads the module built for it (make ngx-module).
M.cpath = build .. "/ngx/?.so"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A port nobody listens on right now (nginx cannot report an ephemeral one).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local Nginx = {}
Nginx.__index = Nginx

-- start{http = "<directives inside http {}>", env = {NAME = value}, lifetime = 60}
-- The configuration gets the Lua paths of this tree, an error log and `listen`
-- on 127.0.0.1:<port>; the http text uses {{port}} where it needs the port
-- ({{port2}}: one more free port).
function M.start(opts)
  local prefix = os.tmpname()
  os.remove(prefix)
  assert(os.execute("mkdir -p " .. sh_quote(prefix .. "/logs") .. " " .. sh_quote(prefix .. "/conf")))
  local port = opts.port or M.free_port()
  local port2 = M.free_port() -- for a second server block: {{port2}}
  local pwd = io.popen("pwd") -- not $PWD: make -C leaves it at the caller's directory
  local cwd = pwd:read("*l")
  pwd:close()
  -- Started as root, nginx runs its workers as nobody, who may not enter the
  -- checkout (a fresh clone in a 0700 mktemp directory, or /root): keep root.
  local id = io.popen("id -u")
  local as_root = id:read("*l") == "0"
  id:close()
  local env_lines = {}
  for k in pairs(opts.env or {}) do env_lines[#env_lines + 1] = "env " .. k .. ";" end
  local conf = table.concat({
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    "worker_processes 1;",
    as_root and "user root;" or "",
    "daemon off;",
    "pid logs/nginx.pid;",
    "error_log logs/error.log info;",
    table.concat(env_lines, "\n"),
    "events { worker_connections 256; }",
    "http {",
    "  access_log off;",
    ('  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;";'):format(cwd, cwd, cwd),
    ('  lua_package_cpath "%s/%s;;";'):format(cwd, M.cpath),
    (opts.http:gsub("{{port}}", tostring(port)):gsub("{{port2}}", tostring(port2))),
    "}",
  }, "\n")
  write_file(prefix .. "/conf/nginx.conf", conf)
  local assigns = {}
  for k, v in pairs(opts.env or {}) do assigns[#assigns + 1] = k .. "=" .. sh_quote(v) end
  local cmd = ("%s timeout -s TERM %d nginx -p %s -c conf/nginx.conf >%s 2>&1 & echo $!"):format(
    table.concat(assigns, " "), opts.lifetime or 60, sh_quote(prefix), sh_quote(prefix .. "/logs/stdout"))
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local n = setmetatable({ prefix = prefix, port = port, port2 = port2, pid = pid }, Nginx)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return n end
    socket.sleep(0.02)
  end
  local why = read_file(prefix .. "/logs/stdout") .. read_file(prefix .. "/logs/error.log")
  n:stop()
  error("nginx did not start: " .. why)
end

function Nginx:error_log() return read_file(self.prefix .. "/logs/error.log") end

-- Worker deaths nginx logged ("worker process N exited on signal 11").
function Nginx:crashes()
  local n = 0
  for _ in self:error_log():gmatch("exited on signal") do n = n + 1 end
  return n
end

-- Lines the Lua code logged at level error or worse.
function Nginx:lua_errors()
  local out = {}
  for line in self:error_log():gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") then out[#out + 1] = line end
  end
  return out
end

-- get(path [, timeout]) -> status, body (nil, err when the connection fails)
function Nginx:get(path, timeout)
  local c = socket.tcp()
  c:settimeout(timeout or 10)
  local ok, err = c:connect("127.0.0.1", self.port)
  if not ok then return nil, err end
  c:send("GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
  local all, rerr, partial = c:receive("*a")
  c:close()
  all = all or partial
  if not all or all == "" then return nil, rerr or "empty reply" end
  local status = tonumber(all:match("^HTTP/1%.%d (%d+)"))
  local head_end = all:find("\r\n\r\n", 1, true)
  local head, body = all:sub(1, head_end or #all), head_end and all:sub(head_end + 4) or ""
  if head:lower():find("transfer%-encoding: chunked") then
    local parts, pos = {}, 1
    while true do
      local size_hex, after = body:match("^(%x+)[^\r\n]*\r\n()", pos)
      local size = size_hex and tonumber(size_hex, 16)
      if not size or size == 0 then break end
      parts[#parts + 1] = body:sub(after, after + size - 1)
      pos = after + size + 2
    end
    body = table.concat(parts)
  end
  return status, body
end

function Nginx:stop()
  if not self.pid then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local pidfile = self.prefix .. "/logs/nginx.pid"
  local deadline = socket.gettime() + 5
  while socket.gettime() < deadline and read_file(pidfile) ~= "" do socket.sleep(0.02) end
  self.pid = nil
  if not os.getenv("LAYER_KEEP_LOGS") then os.execute("rm -rf " .. sh_quote(self.prefix)) end
end

return M
