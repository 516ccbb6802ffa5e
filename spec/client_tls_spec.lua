-- TLS for the client's REST transport: a self-signed server is refused by
-- default, trusted when its CA is given, and reachable with verification
-- turned off only when that is asked for explicitly. The server is
-- `openssl s_server` on 127.0.0.1 with a certificate made for the test.
local layer = require "layer"

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local dir = os.tmpname()
os.remove(dir)
assert(sh("mkdir -p " .. dir))
local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
assert(sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 " ..
  "-keyout %s -out %s >/dev/null 2>&1"):format(key, cert)), "openssl could not make a certificate")

local function start_tls_server()
  for _ = 1, 20 do
    local port = 20000 + math.random(0, 30000)
    -- stops by itself after 30 s
    local h = io.popen(("timeout 30 openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -www -quiet " ..
      ">/dev/null 2>%s/err-%d & echo $!"):format(port, cert, key, dir, port))
    local pid = tonumber(h:read("*l"))
    h:close()
    os.execute("sleep 0.3")
    local f = io.open(("%s/err-%d"):format(dir, port))
    local err = f and f:read("*a") or ""
    if f then f:close() end
    if not err:find("bind", 1, true) then return port, pid end
  end
  error("no free port for the TLS server")
end

-- A REST GET with a given session token (s_server answers GET, never POST):
-- returns the error the request ended with.
local function get_error(opts)
  local c = layer.client(opts)
  local done, err
  c:request("GET", "/", function(_, e) done, err = true, e end)
  local deadline = os.time() + 15
  while not done and os.time() <= deadline do c:step(0.05) end
  c:close()
  assert.is_true(done, "the request never finished")
  return err
end

describe("client TLS", function()
  local port, pid
  setup(function() port, pid = start_tls_server() end)
  teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. dir)
  end)

  local function opts(extra)
    local o = { url = "https://127.0.0.1:" .. port, app_id = "a", session_token = "t", backoff_base = 30 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  it("refuses a self-signed certificate by default, and says so without retrying", function()
    local started = os.time()
    local err = get_error(opts())
    assert.are.equal("transport_error", err.id)
    local text = tostring(err):lower()
    assert.is_truthy(text:find("tls", 1, true) or text:find("certificate", 1, true), text)
    -- a retry would wait backoff_base (30 s); the margin below it is for valgrind on a busy machine
    assert.is_true(os.time() - started < 20, "a refused certificate must not be retried")
  end)

  it("accepts the server once its CA file is given", function()
    local err = get_error(opts({ ca_file = cert }))
    -- the handshake passes; what fails now is that s_server is not a Layer server
    assert.are.equal("invalid_response", err.id)
  end)

  it("skips verification only when insecure = true is given", function()
    local err = get_error(opts({ insecure = true }))
    assert.are.equal("invalid_response", err.id)
  end)
end)
