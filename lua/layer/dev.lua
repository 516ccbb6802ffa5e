-- layer.dev: development helpers. start_server() runs the local Layer server
-- ($LAYER_SERVER, build/layer-server, or the one the rock installed) on 127.0.0.1 for offline bots, demos
-- and tests; it stops with the returned handle or after max_lifetime seconds.
local dev = {}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- $LAYER_SERVER, a checkout's build/, the bin/ of the LuaRocks tree the
-- module came from, then PATH.
local function find_binary()
  local candidates = { (os.getenv("LAYER_BUILD") or "build") .. "/layer-server" }
  if os.getenv("LAYER_SERVER") then table.insert(candidates, 1, os.getenv("LAYER_SERVER")) end
  local module
  for template in package.cpath:gmatch("[^;]+") do -- package.searchpath, which 5.1 lacks
    local path = template:gsub("%?", "layer/core")
    local f = io.open(path, "rb")
    if f then
      f:close()
      module = path
      break
    end
  end
  local tree = module and module:match("^(.*)/lib/lua/[^/]+/layer/core%.so$")
  if tree then candidates[#candidates + 1] = tree .. "/bin/layer-server" end
  for _, path in ipairs(candidates) do
    local f = io.open(path, "rb")
    if f then
      f:close()
      return path
    end
  end
  return "layer-server" -- from PATH
end

-- dev.start_server{port=0, db=":memory:", secret=, admin_token=, max_lifetime=600, log=, log_level="error",
--   args={"--request-timeout", "5", ...}, binary=}
-- -> {url=, port=, pid=, secret=, admin_token=, log=, stop=function([signal]), alive=function}
function dev.start_server(opts)
  opts = opts or {}
  local secret = opts.secret or "dev-secret"
  local admin = opts.admin_token or "dev-admin"
  local log = opts.log or os.tmpname()
  local extra = {}
  for i, a in ipairs(opts.args or {}) do extra[i] = quote(a) end
  local cmd = ("exec %s --port %d --db %s --identity-secret %s --admin-token %s --max-lifetime %d --log-level %s %s 2>>%s"):format(
    quote(opts.binary or find_binary()), opts.port or 0, quote(opts.db or ":memory:"), quote(secret), quote(admin),
    opts.max_lifetime or 600, opts.log_level or "error", table.concat(extra, " "), quote(log))
  local handle = assert(io.popen(cmd, "r"))
  local banner = handle:read("*l")
  local url, port, pid = (banner or ""):match("listening on (%S+) port (%d+) pid (%d+)")
  if not url then
    handle:close()
    local f = io.open(log, "rb")
    local text = f and f:read("*a") or ""
    if f then f:close() end
    error("layer-server did not start (" .. cmd .. "): " .. text, 2)
  end
  local server = { url = url, port = tonumber(port), pid = tonumber(pid), secret = secret, admin_token = admin, log = log }
  -- Running: a child that died stays a zombie until the pipe is closed, so read its state.
  function server.alive()
    local f = handle and io.open("/proc/" .. server.pid .. "/stat")
    if not f then return false end
    local state = f:read("*a"):match("%) (%a)")
    f:close()
    return state ~= nil and state ~= "Z" and state ~= "X"
  end
  -- Stops it (SIGTERM, or the signal named) and waits for it.
  function server.stop(signal)
    if not handle then return end
    os.execute("kill -" .. (signal or "TERM") .. " " .. server.pid .. " 2>/dev/null")
    handle:close()
    handle = nil
    if not opts.log then os.remove(log) end
  end
  return server
end

-- An identity callback for the local server: signs dev tokens for user_id.
function dev.identity(secret, user_id, profile)
  local layer = require "layer"
  return function(nonce)
    local claims = { secret = secret, user_id = user_id, nonce = nonce }
    for k, v in pairs(profile or {}) do claims[k] = v end
    return layer.dev_token(claims)
  end
end

return dev
