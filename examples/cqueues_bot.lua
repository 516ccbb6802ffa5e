-- cqueues_bot.lua: a bot on a cqueues event loop. Each message it gets is a
-- city; its handler asks an HTTP service for the weather there with lua-http,
-- which yields to cqueues (the client passes the yield through, so other
-- coroutines keep running), then answers with the forecast.
--   luajit examples/cqueues_bot.lua <weather_url> [url] [user_id]
-- (Debian's lua-http is packaged for Lua 5.1, 5.2 and LuaJIT.)
local cqueues = require "cqueues"
local http_request = require "http.request"
local layer = require "layer"
local dev = require "layer.dev"

local weather_url = arg[1] or os.getenv("WEATHER_URL") or "http://127.0.0.1:8080/weather"
local url = arg[2] or os.getenv("LAYER_URL") or "http://127.0.0.1:7480"
local user_id = arg[3] or "weather-bot"

local client = layer.client({
  url = url,
  app_id = "layer:///apps/staging/weather-bot",
  identity = dev.identity(os.getenv("LAYER_SECRET") or "dev-secret", user_id, { display_name = "Weather Bot" }),
})

local function escape(s) return (s:gsub("[^%w%-_.~]", function(c) return ("%%%02X"):format(c:byte()) end)) end

-- GET the forecast; lua-http waits on cqueues, inside the handler.
local function forecast(city)
  local headers, stream = http_request.new_from_uri(weather_url .. "?city=" .. escape(city)):go(10)
  if not headers then return nil, tostring(stream) end
  local body, err = stream:get_body_as_string()
  if not body then return nil, tostring(err) end
  if headers:get(":status") ~= "200" then return nil, "HTTP " .. headers:get(":status") end
  return body
end

client:on("ready", function()
  print(("weather bot %s is listening on %s (weather from %s)"):format(client.user.user_id, url, weather_url))
  io.stdout:flush()
end)
client:on("message", function(msg)
  if msg.sender.user_id == client.user.user_id then return end
  local city = msg:text()
  local text, err = forecast(city)
  local reply, send_err = msg.conversation:send(text and ("weather: " .. text) or ("no forecast for " .. city .. ": " .. err))
  if not reply then print("could not answer: " .. tostring(send_err)) end
  msg:mark_read()
end)
client:on("error", function(err) print("error: " .. tostring(err)) end)

-- The recipe of docs/client.md: the client is a cqueues pollable.
local cq = cqueues.new()
cq:wrap(function()
  while not client:closed() do
    cqueues.poll(client)
    client:step(0)
  end
end)
assert(cq:loop())
