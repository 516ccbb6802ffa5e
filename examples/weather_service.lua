-- weather_service.lua: a stand-in for the outside service a bot calls from its
-- handlers (examples/cqueues_bot.lua): GET /weather?city=NAME answers a line of
-- plain text. lua-http on cqueues; it prints "listening on URL" once bound.
--   luajit examples/weather_service.lua [port]
local http_server = require "http.server"
local http_headers = require "http.headers"

local FORECASTS = { "sunny, 21 C", "light rain, 14 C", "cloudy, 17 C", "windy, 12 C" }

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function answer(_, stream)
  local req = assert(stream:get_headers())
  local city = (req:get(":path") or ""):match("^/weather%?city=([^&]*)")
  local res = http_headers.new()
  res:append("content-type", "text/plain")
  if not city then
    res:append(":status", "404")
    assert(stream:write_headers(res, false))
    assert(stream:write_chunk("try /weather?city=NAME\n", true))
    return
  end
  city = unescape(city)
  res:append(":status", "200")
  assert(stream:write_headers(res, false))
  assert(stream:write_chunk(FORECASTS[#city % #FORECASTS + 1] .. " in " .. city, true))
end

local server = assert(http_server.listen({ host = "127.0.0.1", port = tonumber(arg[1]) or 0, onstream = answer }))
assert(server:listen())
print(("listening on http://127.0.0.1:%d/weather"):format(select(3, server:localname())))
io.stdout:flush()
assert(server:loop())
