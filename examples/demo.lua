-- demo.lua: what the data plane does today, on frames shaped like Layer's own
-- docs: decode change packets, apply them to the C cache, and show the change
-- lists, an atomic patch that fails, and layer.patch on JSON text.
local layer = require "layer"

local CONV = "layer:///conversations/f3cc7b32-3c92-11e4-baad-164230d1df67"
local MSG = "layer:///messages/940de862-3c96-11e4-baad-164230d1df67"
local counter = 0

local function frame(body)
  counter = counter + 1
  return layer.json_encode({ type = "change", counter = counter, timestamp = "2015-01-19T09:15:43.000Z", body = body })
end

local function show(value)
  if value == nil then return "(absent)" end
  if type(value) == "table" then return layer.json_encode(value) end
  return tostring(value)
end

local cache = layer.cache()
local frames = {
  frame({ operation = "create", object = { type = "Conversation", id = CONV }, data = {
    id = CONV, participants = layer.array({ { id = "layer:///identities/1234", user_id = "1234" } }),
    distinct = true, metadata = { title = "Who likes this conversation?" } } }),
  frame({ operation = "create", object = { type = "Message", id = MSG }, data = {
    id = MSG, position = 15032697020, conversation = { id = CONV }, is_unread = true,
    parts = layer.array({ { body = "Hello, World!", mime_type = "text/plain" } }),
    recipient_status = { ["layer:///identities/1234"] = "sent" } } }),
  frame({ operation = "update", object = { type = "Message", id = MSG }, data = layer.array({
    { operation = "set", property = "recipient_status.layer:///identities/1234", value = "read" } }) }),
  frame({ operation = "patch", object = { type = "Message", id = MSG }, data = layer.array({
    { operation = "set", property = "recipient_status.layer:///identities/1234", value = "read" } }) }),
  frame({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
    { operation = "set", property = "metadata.title", value = "Layer fans" },
    { operation = "add", property = "participants", value = "999" } }) }),
  frame({ operation = "patch", object = { type = "Conversation", id = CONV }, data = layer.array({
    { operation = "set", property = "metadata.colour", value = "blue" },
    { operation = "add", property = "metadata.title", value = "x" } }) }),
  frame({ operation = "delete", object = { type = "Conversation", id = CONV }, data = { mode = "my_devices", from_position = 15032697020 } }),
}

for _, text in ipairs(frames) do
  local packet = assert(layer.decode_packet(text))
  local outcome, id, detail = cache:apply(text, true)
  print(("#%d %s %s -> %s"):format(packet.counter, packet.operation, packet.object_type, outcome or "error"))
  if not outcome then
    print("   refused, object unchanged: " .. id)
  elseif outcome == "patched" then
    for _, c in ipairs(detail) do
      print(("   %s: %s -> %s  (paths: %s)"):format(c.property, show(c.old), show(c.new), table.concat(c.paths, ", ")))
    end
  elseif detail then
    print("   messages affected: " .. detail)
  end
end

print("conversation now: " .. cache:get_json(CONV))
local stats = cache:stats()
print(("cache: %d objects, %d messages, %d bytes"):format(stats.objects, stats.messages, stats.bytes))

local object, changes = layer.patch('{"participants":[],"metadata":{}}',
  '[{"operation":"add","property":"participants","value":"fred"},{"operation":"set","property":"metadata.a\\\\.b","value":{}}]')
print("layer.patch on JSON text: " .. object .. " (" .. #changes .. " properties changed)")
