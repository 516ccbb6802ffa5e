-- layer_bot.lua: the Lua of the OpenResty example (nginx.conf). start() runs in
-- init_worker and makes the bot; its loop and its message handler run on a
-- timer, and send() is the /send endpoint: straight-line code in a content
-- handler, which parks until the server answers (nothing polls or sleeps).
local layer_ngx = require "layer.ngx"
local dev = require "layer.dev"
local cjson = require "cjson.safe"
local clock = require("layer.core").clock -- ngx.now() counts whole milliseconds

local M = {}
local bot

function M.start()
  bot = layer_ngx.client({
    url = os.getenv("LAYER_URL") or "http://127.0.0.1:7480",
    app_id = "layer:///apps/staging/openresty-example",
    -- the local server's dev tokens; elsewhere, ask your application server
    identity = dev.identity(os.getenv("LAYER_SECRET") or "dev-secret", "nginx-bot", { display_name = "Nginx Bot" }),
  })
  bot:on("ready", function() ngx.log(ngx.NOTICE, "layer: nginx-bot is ready") end)
  bot:on("message", function(msg)
    if msg.sender.user_id == bot.user.user_id then return end
    local reply, err = msg.conversation:send("echo: " .. msg:text())
    if not reply then ngx.log(ngx.ERR, "layer: could not answer: ", tostring(err)) end
  end)
  bot:on("error", function(err) ngx.log(ngx.ERR, "layer: ", tostring(err)) end)
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
end

-- GET /send?to=<user id>&text=<text> -> 200 {id, position, conversation, ms}
function M.send()
  local args = ngx.req.get_uri_args()
  local to, text = args.to, args.text
  if type(to) ~= "string" or to == "" or type(text) ~= "string" or text == "" then
    return reply(400, { id = "invalid_request", code = 400, message = "to and text are required, once each" })
  end
  local started = clock()
  local conv, err = bot:create_conversation({ participants = { to }, distinct = true })
  local msg
  if conv then msg, err = conv:send(text) end
  if not msg then
    return reply(502, { id = err and err.id or "send_failed", code = err and err.http_status or 502,
      message = tostring(err) })
  end
  reply(200, { id = msg.id, position = msg.position, conversation = conv.id, ms = (clock() - started) * 1000 })
end

return M
