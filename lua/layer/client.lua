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
local WAIT = scheduler.WAIT
local unpack = table.unpack or unpack

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

-- The error id of an engine error without a Layer error object, by its kind
-- (transport errors keep make_error's "transport_error").
local ERROR_ID = { client = "client_error", out_of_memory = "out_of_memory" }

function Client:_handle(name, object_type, object, extra, ev, values)
  if object_type then -- create / update / delete, positional (the hot path)
    local event = OBJECT_EVENT[object_type][name]
    local batch = self._batch
    if batch then -- handlers called directly (scheduler.lua); no state file here
      batch.object, batch.extra, batch.values = object, extra, values
      batch.create = object_type == "Message" and name == "create"
      if values then self._values = values end
      self._direct = batch
      if extra == nil then self:_emit(event, object) else self:_emit(event, object, extra) end
      if self._batch ~= batch then return end
      if batch.create then
        self:_emit("message", object)
        if self._batch ~= batch then return end
      end
      self._direct = nil
      if values then self:_dispatched_values(values) end
      return
    end
    local state, change = self._state, nil
    if state then
      change = state:change_started()
      self._change = change
    end
    if values then -- an update's change list, its values read lazily
      self._values = values
      self:_emit(event, object, extra)
      self:_dispatched_values(values)
    elseif extra == nil then self:_emit(event, object) else self:_emit(event, object, extra) end
    if object_type == "Message" and name == "create" then self:_emit("message", object) end
    if change then
      self._change = nil
      state:change_dispatched(change)
    end
  elseif name == "response" then
    self:_resolve(ev)
  elseif name == "challenge" then
    self:_challenge(ev.nonce)
  elseif name == "authenticated" then
    self.session_token = ev.token
  elseif name == "connected" then
    if not self._ready then
      self._ready = true
      self:_emit("ready")
    end
    self:_emit("connected")
  elseif name == "disconnected" then
    self:_emit("disconnected", ev.reason, ev.delay_ms and ev.delay_ms / 1000)
  elseif name == "reconnecting" then
    self:_emit("reconnecting", ev.attempt)
  elseif name == "synced" then
    self:_emit("synced", ev.replayed)
  elseif name == "truncate" then
    local id = ev.conversation_id
    self:_emit("conversation.truncate", self._c:object(id) or id, ev.removed)
  elseif name == "mark_read" then
    local id = ev.conversation_id
    self:_emit("conversation.mark_read", self._c:object(id) or id, ev.marked)
  elseif name == "typing" then
    local id, t = ev.conversation_id, ev.typing or {}
    self:_emit("typing", self._c:object(id) or id, t.sender, t.action)
  elseif name == "error" then
    local err = make_error(ev.error, nil, ev.message)
    if not ev.error then err.id = ERROR_ID[ev.kind] or err.id end
    if self:_has("error") then self:_emit("error", err) else self:_emit("log", "error", tostring(err)) end
  elseif name == "log" then
    self:_emit("log", ev.level, ev.message)
  end
end

function Client:_challenge(nonce)
  local fn = self._opts.identity
  if not fn then
    self:_handle("error", nil, nil, nil, { message = "the session expired and no identity callback was given",
      kind = "client" })
    return
  end
  self:spawn(function()
    local ok, token = pcall(fn, nonce)
    if not ok or type(token) ~= "string" then
      self:_handle("error", nil, nil, nil, { message = "identity callback failed: " .. tostring(token), kind = "client" })
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
  if self._waits then self:_expire_waits() end
  local n = 0
  if self:_can_batch() then
    n = self:_dispatch_batched(limit, stop_at)
    if self._raise then self:_raise_pending() end
  end
  while n < limit and not self._closed and not (stop_at and n > 0 and core.clock() >= stop_at) do
    local name, object_type, object, extra, ev, values = self._c:next_event()
    if not name then break end
    n = n + 1
    self:_handle(name, object_type, object, extra, ev, values)
    if self._raise then self:_raise_pending() end
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
  if self._waits then -- a handler's client:wait that may run out
    local now = self._c:now()
    for _, due in pairs(self._waits) do
      local left = due > now and due - now or 0
      if not t or left < t then t = left end
    end
  end
  return t
end

---------------------------------------------------------------------------
-- client:wait(fn [, seconds]): fn runs on one of the client's coroutines and
-- wait returns what fn returns, or nil plus a timeout error once seconds (on
-- the client's clock) have passed; fn itself goes on. From plain code it
-- pumps the loop; from a handler only the handler's coroutine waits.

local Job = {} -- one client:wait: fn on a client coroutine, and who waits for it
Job.__index = Job

local pack = table.pack or function(...) return { n = select("#", ...), ... } end

-- A handler that waits on the job goes on.
function Job:wake()
  local co = self.co
  if not co then return end
  self.co = nil
  local client = self.client
  if client._waits then client._waits[self] = nil end
  client:_resume(co)
end

local function run_job(job, fn)
  local results = pack(fn())
  if job.abandoned then return end -- nobody takes them: do not keep (and pin) them
  job.done, job.results = true, results
  job:wake()
end

-- fn raised: the waiter raises the value as raised (a table keeps its fields).
-- layer.scheduler calls this for a coroutine whose "where" is a job. After the
-- wait gave up, the error (with its traceback) goes where a spawned function's goes.
function Job:raised(value, traced)
  if self.abandoned then return self.client:_fail(traced, "spawn") end
  self.done, self.raised_value, self.failed = true, value, true
  self:wake()
end

-- PUC Lua 5.1 cannot yield across pcall: a step run from a host coroutine
-- there must pass handlers' yields up, so it runs unprotected.
local PCALL_YIELDS = _VERSION ~= "Lua 5.1" or type(rawget(_G, "jit")) == "table"

local function callable(fn)
  if type(fn) == "function" then return true end
  local mt = getmetatable(fn)
  return type(mt) == "table" and mt.__call ~= nil
end

function Client:wait(fn, seconds)
  if not callable(fn) then error("client:wait(fn [, seconds]): fn must be a function", 2) end
  if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
    error("client:wait(fn [, seconds]): seconds must be a number >= 0 or nil", 2)
  end
  if self._closed or self._closing then error("layer: the client is closed", 2) end
  if self._threads then
    error("layer: client:wait is for plain scripts; inside nginx request methods return their results directly", 2)
  end
  local co = running_coroutine()
  local inside = co ~= nil and self._ours[co] ~= nil
  if not inside then
    if self._stepping then
      error("layer: client:wait from code that step() is running would wait forever; use it in a handler or at top level", 2)
    end
    if not self._transport then
      error("layer: client:wait cannot pump the loop of transport = \"manual\" (nothing feeds the engine meanwhile); " ..
        "step it yourself, or wait inside a handler", 2)
    end
  end
  local job = setmetatable({ client = self }, Job)
  local deadline = seconds and self._c:now() + seconds
  self:_run(job, run_job, job, fn)
  if inside then
    if not job.done and not (deadline and deadline <= self._c:now()) then
      if deadline then
        self._waits = self._waits or {}
        self._waits[job] = deadline
      end
      job.co = co
      coroutine.yield(WAIT) -- resumed by job:wake, or by the deadline in step()
    end
  else
    self:_pump_job(job, deadline, co == nil or PCALL_YIELDS)
  end
  -- the job stays tied to its pooled coroutine until that runs again: it lets go of what it held
  if job.failed then
    local value = job.raised_value
    job.raised_value = nil
    error(value, 0)
  end
  if job.done then
    local results = job.results
    job.results = nil
    return unpack(results, 1, results.n)
  end
  job.abandoned = true
  if self._closed then return nil, make_error({ id = "client_closed", message = "the client was closed" }) end
  return nil, make_error({ id = "timeout",
    message = ("client:wait: no result within %g s (what it waits for goes on)"):format(seconds) })
end

-- Step until the job is done, the deadline passes or the client closes.
function Client:_pump_job(job, deadline, protect)
  while not job.done and not self._closed do
    local t = self:timeout() or 1
    if deadline then
      local left = deadline - self._c:now()
      if left <= 0 then return end
      if left < t then t = left end
    end
    if protect then
      local ok, err = pcall(self.step, self, t)
      if not ok then -- a handler's error: ours to raise, and the job is no longer waited for
        job.abandoned = true
        error(err, 0)
      end
    else
      self:step(t)
    end
  end
end

-- Handlers whose client:wait ran out go on (step() calls this).
function Client:_expire_waits()
  local now, due = self._c:now(), nil
  for job, at in pairs(self._waits) do
    if at <= now then
      due = due or {}
      due[#due + 1] = job
    end
  end
  if due then
    for _, job in ipairs(due) do
      self._waits[job] = nil
      local co = job.co
      if co then
        job.co = nil
        self:_resume(co)
        self:_raise_pending()
      end
    end
  end
  if self._waits and next(self._waits) == nil then self._waits = nil end
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
  self._waits = nil
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
  "insecure", "proxy", "manual_clock", "random_seed", "connect_timeout", "state", "catch_up", "change_lists",
  "loop" }

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
  assert(opts.change_lists == nil or type(opts.change_lists) == "boolean", "change_lists must be true or false")
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
