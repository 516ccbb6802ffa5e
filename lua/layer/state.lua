-- layer.state: a client's sync state kept in a SQLite file (the `state`
-- option), so a bot that crashes or is redeployed loses no change and
-- doubles no message.
--
-- What the file holds, saved in one transaction at the end of a step:
--   * the durable cursor: the newest change whose handlers have all returned,
--     with the fingerprints seen at its timestamp (the replay overlap);
--   * the outbox: creates sent but not yet acknowledged, resent at start.
-- Creates issued by a handler get ids derived from the change that ran it
-- and the order of the calls, so a handler run again after a crash issues
-- the same ids and the server deduplicates them.
local core = require "layer.core"

local State = {}
State.__index = State

local function now_ms()
  local ok, socket = pcall(require, "socket") -- sub-second when luasocket is there
  if ok and socket.gettime then return math.floor(socket.gettime() * 1000) end
  return os.time() * 1000
end

-- Open (or create) the file at path for client; catch_up (seconds) sets the
-- cursor of a file that has none, so a first start replays that much.
local function open(client, path, catch_up)
  if type(path) ~= "string" or path == "" then error("layer.client: state must be a file name", 4) end
  if catch_up ~= nil and (type(catch_up) ~= "number" or catch_up < 0) then
    error("layer.client: catch_up is a number of seconds", 4)
  end
  local file, err = core.state(path)
  if not file then error("layer.client: " .. err, 4) end
  local self = setmetatable({
    client = client, file = file,
    open_changes = {},                            -- change context -> true, while a handler waits
    running = setmetatable({}, { __mode = "k" }), -- coroutine -> change context
    requests = {},                                -- request id -> outbox id
    added = {}, removed = {},                     -- outbox rows not yet saved
    cursor_dirty = false,
  }, State)
  local c = client._c
  c:track_cursor()
  local ms, fps = file:get("cursor_ms"), file:get("cursor_fps")
  if ms then
    c:restore_cursor(tonumber(ms), fps or "")
  elseif catch_up then
    c:restore_cursor(now_ms() - math.floor(catch_up * 1000), "")
  end
  return self
end

-- Resend what the last run sent but never saw acknowledged.
function State:resend()
  local client = self.client
  for _, row in ipairs(self.file:outbox()) do
    local data = core.json_decode(row.data)
    local id
    if row.method == "POST" then
      id = client._c:rest_request("POST", row.object_id, row.data, nil)
    else
      id = client._c:ws_request(row.method, row.object_id ~= "" and row.object_id or nil, data)
    end
    self.requests[id] = row.id
    client:_await(id, function(v) return v end, function() end) -- resolved() settles the row
  end
end

---------------------------------------------------------------------------
-- Handlers of a change

-- Called before a change event's handlers run; returns its context.
function State:change_started()
  local seq, fp = self.client._c:last_change()
  if not seq then return nil end
  local user = self.client.user and self.client.user.user_id or ""
  return { seq = seq, key = user .. "|" .. fp, calls = 0, open = 0 }
end

function State:attach(co, ctx)
  if self.running[co] == ctx then return end
  self.running[co] = ctx
  ctx.open = ctx.open + 1
end

-- A handler coroutine finished (returned or raised).
function State:detach(co)
  local ctx = self.running[co]
  if not ctx then return end
  self.running[co] = nil
  ctx.open = ctx.open - 1
  if ctx.open == 0 then self.open_changes[ctx] = nil end
end

-- After the handlers of a change were started: wait for those still running.
function State:change_dispatched(ctx)
  if ctx.open > 0 then self.open_changes[ctx] = true end
end

-- The id for a create issued by the running handler, derived from its change.
function State:derived_id(kind)
  local co = coroutine.running()
  local ctx = co and self.running[co]
  if not ctx then return nil end
  ctx.calls = ctx.calls + 1
  return ("layer:///%s/%s"):format(kind, core.uuid(ctx.key .. "|" .. ctx.calls .. "|" .. kind))
end

---------------------------------------------------------------------------
-- The outbox

function State:sent(request_id, id, method, object_id, data_json)
  self.requests[request_id] = id
  self.added[#self.added + 1] = { id, method, object_id or "", data_json }
end

-- A response arrived: anything but a timeout settles the create (success,
-- the server's duplicate answer, or a refusal no resend would change).
function State:resolved(ev)
  local id = self.requests[ev.request_id]
  if not id then return end
  self.requests[ev.request_id] = nil
  if ev.success or ev.http_status ~= 408 then self.removed[#self.removed + 1] = id end
end

---------------------------------------------------------------------------
-- Saving, once per step

function State:save()
  local c = self.client._c
  local below
  for ctx in pairs(self.open_changes) do
    if not below or ctx.seq < below then below = ctx.seq end
  end
  self.cursor_dirty = c:finish_changes(below) or self.cursor_dirty
  if not self.cursor_dirty and #self.added == 0 and #self.removed == 0 then return end
  local file = self.file
  file:begin()
  local ok, err = pcall(function()
    if self.cursor_dirty then
      local ms, fps = c:durable_cursor()
      file:put("cursor_ms", ("%d"):format(ms))
      file:put("cursor_fps", fps)
    end
    for _, row in ipairs(self.added) do file:outbox_add(row[1], row[2], row[3], row[4]) end
    for _, id in ipairs(self.removed) do file:outbox_remove(id) end
    file:commit()
  end)
  if not ok then
    file:rollback()
    error(err, 0)
  end
  self.added, self.removed, self.cursor_dirty = {}, {}, false
end

function State:close()
  pcall(self.save, self)
  self.file:close()
end

return { open = open }
