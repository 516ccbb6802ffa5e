-- layer.client: the public client: its options, its construction and its
-- loop (step, run, timeout, close). The C engine (layer.core.client) does the
-- protocol and the cache; this file turns the engine's events into handler
-- calls. The rest of Client is mixed in from files of one job each:
-- layer.scheduler (handlers and the coroutines they run on), layer.requests
-- (requests and their results), and one file per object type
-- (layer.conversation, .message, .identity, .announcement, .part).
local core = require "layer.core"
local state_file = require "layer.state"
local errors = require "layer.errors"
local ids = require "layer.ids"
local scheduler = require "layer.scheduler"
local requests = require "layer.requests"
local conversation = require "layer.conversation"
local message = require "layer.message"
local identity = require "layer.identity"
local announcement = require "layer.announcement"
local part = require "layer.part"

local Error, make_error, is_error = errors.Error, errors.make_error, errors.is_error
local identity_id, token_user = ids.identity_id, ids.token_user
local running_coroutine, runner_body_for = scheduler.running_coroutine, scheduler.runner_body_for

local Client = {}
Client.__index = Client
-- Copied in, so a method call on the hot dispatch path costs one lookup, as before.
for _, mixin in ipairs({ scheduler, requests }) do
  for name, fn in pairs(mixin.methods) do Client[name] = fn end
end
for _, mixin in ipairs({ conversation, message, identity, announcement }) do
  for name, fn in pairs(mixin.client_methods) do Client[name] = fn end
end

---------------------------------------------------------------------------
-- Object methods (installed per client into the C object metatable).

-- The metatable of a reference to an object the cache does not hold yet (a
-- message's conversation after a restart): the type's methods work at once, and
-- reading any other field reads the cached object once it has arrived. The first
-- such read fetches it in the background.
function Client:_reference_methods(type_name, methods)
  local client = self
  local fetching = {} -- ids being fetched, so reading many fields fetches once
  return {
    __name = "layer." .. type_name .. "Ref",
    __index = function(ref, key)
      local method = methods[key]
      if method ~= nil then return method end
      local id = rawget(ref, "id")
      if type(id) ~= "string" then return nil end
      local live = client._c:object(id)
      if live and not live.deleted then return live[key] end
      if not fetching[id] then
        fetching[id] = true
        local fetch = type_name == "Conversation" and client.conversation or client.message
        fetch(client, id, function() fetching[id] = nil end)
      end
      return nil
    end,
  }
end

---------------------------------------------------------------------------
-- Events from the engine.

-- Handler event names per object type and change, made once.
local OBJECT_EVENT = {}
for type_name, kind in pairs({ Conversation = "conversation", Message = "message", Identity = "identity",
  Announcement = "announcement" }) do
  OBJECT_EVENT[type_name] = { create = kind .. ".create", update = kind .. ".update", delete = kind .. ".delete" }
end

-- As LS_ERROR_TRANSPORT and LS_LOG_* in session.h.
local ERROR_TRANSPORT = 1
local LOG_LEVEL = { "error", "warn", "info" }

function Client:_handle(name, object_type, object, extra, ev)
  if object_type then -- create / update / delete, positional (the hot path)
    local event = OBJECT_EVENT[object_type][name]
    local state, change = self._state, nil
    if state then
      change = state:change_started()
      self._change = change
    end
    if extra == nil then self:_emit(event, object) else self:_emit(event, object, extra) end
    if object_type == "Message" and name == "create" then self:_emit("message", object) end
    if change then
      self._change = nil
      state:change_dispatched(change)
    end
  elseif name == "response" then
    self:_resolve(ev)
  elseif name == "challenge" then
    self:_challenge(ev.text)
  elseif name == "authenticated" then
    self.session_token = ev.text
  elseif name == "connected" then
    if not self._ready then
      self._ready = true
      self:_emit("ready")
    end
    self:_emit("connected")
  elseif name == "disconnected" then
    self:_emit("disconnected", ev.text, ev.number >= 0 and ev.number / 1000 or nil)
  elseif name == "reconnecting" then
    self:_emit("reconnecting", ev.number)
  elseif name == "synced" then
    self:_emit("synced", ev.number)
  elseif name == "truncate" then
    self:_emit("conversation.truncate", self._c:object(ev.id) or ev.id, ev.number)
  elseif name == "mark_read" then
    self:_emit("conversation.mark_read", self._c:object(ev.id) or ev.id, ev.number)
  elseif name == "typing" then
    local v = ev.value or {}
    self:_emit("typing", self._c:object(ev.id) or ev.id, v.sender, v.action)
  elseif name == "error" then
    local err = make_error(ev.value, nil, ev.text)
    if not ev.value and ev.number ~= ERROR_TRANSPORT then err.id = "client_error" end
    if self:_has("error") then self:_emit("error", err) else self:_emit("log", "error", tostring(err)) end
  elseif name == "log" then
    self:_emit("log", LOG_LEVEL[ev.number] or "info", ev.text)
  end
end

function Client:_challenge(nonce)
  local fn = self._opts.identity
  if not fn then
    self:_handle("error", nil, nil, nil, { text = "the session expired and no identity callback was given" })
    return
  end
  self:spawn(function()
    local ok, token = pcall(fn, nonce)
    if not ok or type(token) ~= "string" then
      self:_handle("error", nil, nil, nil, { text = "identity callback failed: " .. tostring(token) })
      return
    end
    local user_id = token_user(token)
    if user_id then self.user = { user_id = user_id, id = identity_id(user_id) } end
    if not self._closed then self._c:answer_challenge(token, self._opts.app_id) end
  end)
end

---------------------------------------------------------------------------
-- The loop.

-- Raise a handler error held for the caller of step() (or spawn).
function Client:_raise_pending()
  local err = self._raise
  if not err then return end
  self._raise = nil
  self._stepping = false
  if self._closing then self:_teardown() end
  error(err, 0)
end

-- One pass: I/O, timers, then handlers within the budget: a number of events,
-- or {events = n, ms = m} to also stop after m milliseconds of handler time.
-- A client on a shared loop (the loop option) steps that loop: all its clients.
function Client:step(timeout, budget)
  local loop = self._loop
  if loop and not self._closed and not self._c:closed() then return loop:step(timeout, budget) end
  return self:_step(timeout, budget)
end

function Client:_step(timeout, budget)
  if self._closed then return nil, "closed" end
  if self._c:closed() then -- the engine was closed under us (client:engine():close())
    self:_teardown()
    return nil, "closed"
  end
  self:_raise_pending()
  if next(self._parked) then self:_sweep_parked() end
  self._stepping = true
  self._step_coroutine = running_coroutine()
  local transport = self._transport
  if transport then transport:service(self, timeout or 0) end
  self._c:tick()
  if transport then transport:pump(self) end
  local limit, stop_at = self._opts.max_events_per_step or 1000, nil
  if type(budget) == "number" then
    limit = budget
  elseif type(budget) == "table" then
    limit = budget.events or limit
    if budget.ms then stop_at = core.clock() + budget.ms / 1000 end
  end
  local n = 0
  while n < limit and not self._closed and not (stop_at and n > 0 and core.clock() >= stop_at) do
    local name, object_type, object, extra, ev = self._c:next_event()
    if not name then break end
    n = n + 1
    self:_handle(name, object_type, object, extra, ev)
    self:_raise_pending()
  end
  self._stepping = false
  if self._state and not self._closed then self._state:save() end
  if self._closing then
    self:_teardown()
  elseif not self._closed then -- a request's continuation may have closed the client just now
    if transport then transport:pump(self) end
    if n == 0 then self._c:compact(64) end -- idle: repack patched objects a little at a time
  end
  self:_raise_pending()
  return true
end

function Client:run()
  while not self._closed do
    self:step(self:timeout() or 1)
  end
end

function Client:timeout()
  if self._closed then return nil end
  if self._c:closed() then return 0 end -- the next step notices and closes
  if self._c:pending() > 0 then return 0 end
  local t = self._c:deadline()
  if self._transport then
    local tt = self._transport:timeout()
    if tt and (not t or tt < t) then t = tt end
  end
  return t
end

function Client:pollfd()
  if self._closed then return nil end
  return self._transport and self._transport:pollfd() or nil
end
function Client:events() return "r" end
function Client:getfd() return self:pollfd() end
function Client:dirty() return self:timeout() == 0 end

function Client:closed() return self._closed end

function Client:close()
  if self._closed or self._closing then return end
  self._closing = true
  self._c:stop()
  if not self._dispatching then self:_teardown() end
end

function Client:_teardown()
  if self._closed then return end
  self._closed = true
  self._closing = false
  local cqueues = package.loaded.cqueues
  if self._transport then
    -- A cqueues controller that polled the fd would fail on it once closed
    -- ("unable to update event disposition: Bad file descriptor").
    -- A shared loop's fd stays open for its other clients.
    if cqueues and cqueues.cancel and not self._loop then cqueues.cancel(self._transport:pollfd()) end
    self._transport:close()
  end
  if self._state then self._state:close() end
  self._c:close()
  local waiting = self._waiting
  self._waiting = {}
  -- Parked light threads (nginx) would wait forever: they get an error now.
  for _, waiter in pairs(waiting) do
    if waiter.parked then waiter.parked:wake(nil, make_error({ id = "client_closed", message = "the client was closed" })) end
  end
  -- Host coroutines waiting on a request would wait forever: they get an error.
  local hosts = self._hosts
  self._hosts = {}
  for waiter in pairs(hosts) do
    waiter.results = { nil, make_error({ id = "client_closed", message = "the client was closed" }) }
    waiter.wake()
  end
end

Client.__close = Client.close -- local client <close> = layer.client{...} on Lua 5.4

function Client:stats()
  return self._c:stats()
end

-- The engine, for transports and tests that feed it themselves.
function Client:engine() return self._c end

local OPTION_NAMES = { "url", "websocket_url", "app_id", "identity", "session_token", "user_id", "api_version",
  "keepalive", "dead_after", "request_timeout", "backoff_base", "backoff_cap", "backoff_jitter",
  "max_messages_per_conversation", "max_bytes", "max_events_per_step", "transport", "ca_file", "ca_path",
  "insecure", "proxy", "manual_clock", "random_seed", "connect_timeout", "state", "catch_up", "loop" }

local function new(opts)
  assert(type(opts) == "table", "layer.client{url=..., app_id=..., identity=function(nonce) ... end} expected")
  local known = {}
  for _, k in ipairs(OPTION_NAMES) do known[k] = true end
  for k in pairs(opts) do
    if not known[k] then error("layer.client: unknown option " .. tostring(k), 2) end
  end
  if opts.transport ~= "manual" then
    assert(type(opts.url) == "string" and opts.url:match("^https?://[^/]"), "url (http:// or https://) is required")
  end
  assert(opts.identity or opts.session_token, "an identity callback or a session_token is required")
  assert(opts.identity == nil or type(opts.identity) == "function", "identity must be a function(nonce) -> token")
  local self = setmetatable({
    _opts = opts, _handlers = {}, _stale = {}, _waiting = {}, _ours = setmetatable({}, { __mode = "k" }), _pool = {},
    _roots = setmetatable({}, { __mode = "k" }), _parked = setmetatable({}, { __mode = "k" }), _n_parked = 0, _hosts = {},
    _carriers = setmetatable({}, { __mode = "k" }),
  }, Client)
  self._runner_body = runner_body_for(self)
  self._c = core.client({
    api_version = opts.api_version, keepalive = opts.keepalive, dead_after = opts.dead_after,
    request_timeout = opts.request_timeout, backoff_base = opts.backoff_base, backoff_cap = opts.backoff_cap,
    backoff_jitter = opts.backoff_jitter, max_messages_per_conversation = opts.max_messages_per_conversation,
    max_bytes = opts.max_bytes, manual_clock = opts.manual_clock, random_seed = opts.random_seed,
  })
  self:_update_interest() -- no handlers yet: no object events, no change lists
  local conversation_methods, message_methods = conversation.methods(self), message.methods(self)
  self._c:set_methods("Conversation", conversation_methods)
  self._c:set_methods("Message", message_methods)
  self._c:set_methods("ConversationRef", self:_reference_methods("Conversation", conversation_methods))
  self._c:set_methods("MessageRef", self:_reference_methods("Message", message_methods))
  self._c:set_methods("Identity", identity.methods(self))
  self._c:set_methods("Part", part.methods(self))
  self._c:set_methods("Announcement", announcement.methods(self))
  if opts.user_id then
    self.user = { user_id = opts.user_id, id = identity_id(opts.user_id) }
  end
  -- Inside OpenResty handlers run on nginx light threads, whatever the transport.
  local ngx_ = rawget(_G, "ngx")
  if type(ngx_) == "table" and type(ngx_.thread) == "table" and ngx_.get_phase then
    self._threads = require("layer.ngx").threads
  end
  if opts.loop ~= nil then -- a shared loop (layer.loop())
    assert(type(opts.loop) == "table" and type(opts.loop._transport) == "function", "loop must be a layer.loop()")
    assert(opts.transport == nil, "the loop option goes with layer's own transport only")
  end
  if type(opts.transport) == "function" then -- a transport written in Lua (layer.ngx)
    self._transport = opts.transport(self, opts)
  elseif opts.transport ~= "manual" then
    local transport_options = {
      url = opts.url, websocket_url = opts.websocket_url, ca_file = opts.ca_file, ca_path = opts.ca_path,
      insecure = opts.insecure == true, proxy = opts.proxy, connect_timeout = opts.connect_timeout,
      request_timeout = opts.request_timeout,
    }
    if opts.loop then
      self._loop = opts.loop
      self._transport = opts.loop:_transport(self, transport_options)
    else
      self._transport = core.transport(self._c, transport_options)
    end
  end
  if opts.state then
    self._state = state_file.open(self, opts.state, opts.catch_up)
    self._state:resend()
  else
    assert(opts.catch_up == nil, "catch_up needs a state file (the state option)")
  end
  self._c:start(opts.session_token)
  return self
end

return { new = new, Error = Error, is_error = is_error, make_error = make_error }
