-- spec/transport_errors_spec.lua - the C transport's own reasons reach the Lua user: a
-- WebSocket URL the transport cannot use fails layer.client() with what is wrong with it,
-- and layer.loop() clients are held to the same, instead of failing at every reconnect.
local layer = require "layer"

local APP = "layer:///apps/staging/00000000-0000-0000-0000-000000000001"

local function make(extra)
  local opts = { url = "http://127.0.0.1:1", app_id = APP, session_token = "t" }
  for k, v in pairs(extra) do opts[k] = v end
  return pcall(layer.client, opts)
end

local function refused(extra, says)
  local ok, err = make(extra)
  assert.is_false(ok)
  assert.is_truthy(tostring(err):find(says, 1, true), tostring(err))
end

describe("transport errors", function()
  it("a websocket_url that is not ws:// or wss:// is refused by layer.client", function()
    refused({ websocket_url = "http://127.0.0.1:1" }, "layer: websocket_url: ws: url must be ws:// or wss://")
  end)

  it("says what is wrong with the host or the port", function()
    refused({ websocket_url = "ws://bad host:1" }, "websocket_url: ws: url host contains ' '")
    refused({ websocket_url = "ws://127.0.0.1:70000" }, "ws: url port must be a number from 1 to 65535")
    refused({ websocket_url = "wss://[::1:443" }, "ws: url has a '[' with no ']'")
  end)

  it("checks the WebSocket URL it derives from url", function()
    refused({ url = "http://bad host:1" }, "layer: url: ws: url host contains ' '")
  end)

  it("holds clients on a shared loop to the same", function()
    local loop = layer.loop()
    refused({ loop = loop, websocket_url = "ws://:80" }, "websocket_url: ws: url has no host")
    loop:close()
  end)

  it("takes good URLs as before", function()
    local ok, c = make({ websocket_url = "wss://[::1]:8443/ws" })
    assert.is_true(ok, tostring(c))
    c:close()
  end)
end)
