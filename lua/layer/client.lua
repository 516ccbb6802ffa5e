-- layer.client: the public client. The C engine (layer.core.client) does the
-- protocol and the cache; this file turns its events into handler calls, runs
-- handlers as coroutines so request methods can return their results, and
-- gives conversations, messages and identities their methods.
local core = require "layer.core"
local state_file = require "layer.state"
local errors = require "layer.errors"
local ids = require "layer.ids"

local Error, make_error, is_error = errors.Error, errors.make_error, errors.is_error
local check_uuid, check_user_id, identity_id = ids.check_uuid, ids.check_user_id, ids.identity_id
local query, token_user = ids.query, ids.token_user

local scheduler = require "layer.scheduler"
local requests = require "layer.requests"

local running_coroutine, runner_body_for = scheduler.running_coroutine, scheduler.runner_body_for

local Client = {}
Client.__index = Client
-- Copied in, so a method call on the hot dispatch path costs one lookup, as before.
for name, fn in pairs(scheduler.methods) do Client[name] = fn end
for name, fn in pairs(requests.methods) do Client[name] = fn end
local nothing = requests.nothing

function Client:_part_methods()
  local client = self
  local Part = {}
  Part.__index = Part
  -- part:download([callback]) -> data: the body of an inline part, or the rich content
  function Part.download(part, callback)
    return client:_async(callback, function()
      local content = part.content
      if type(content) ~= "table" then return part.body end
      local url = content.download_url
      if type(url) == "string" and url:match("^https?://") then
        local data = client:_http({ method = "GET", url = url, raw = true })
        if data then return data end
      end
      -- expired or missing: ask for a fresh URL (authenticated, so only on our own server)
      local refresh = content.refresh_url
      if type(refresh) ~= "string" or not client:_same_origin(refresh) then
        return nil, make_error({ id = "invalid_response", message = "the part has no usable download or refresh URL" })
      end
      local fresh, err = client:_http({ method = "GET", url = refresh, authenticated = true })
      if not fresh then return nil, err end
      if type(fresh.download_url) ~= "string" then
        return nil, make_error({ id = "invalid_response", message = "refresh gave no download_url" })
      end
      return client:_http({ method = "GET", url = fresh.download_url, raw = true })
    end, 4)
  end
  return Part
end

---------------------------------------------------------------------------
-- Client methods.

function Client:create_conversation(opts, callback)
  assert(type(opts) == "table", "create_conversation{participants=..., distinct=..., metadata=...} expected")
  local participants = core.array()
  for i, p in ipairs(opts.participants or {}) do
    if type(p) == "userdata" then p = p.id end
    assert(type(p) == "string" and p ~= "", "participants are user ids, identity ids or Identity objects")
    participants[i] = p
  end
  local body = {
    id = opts.id or self:_new_id("conversations"),
    participants = participants,
    distinct = opts.distinct ~= false,
    metadata = opts.metadata or {},
  }
  check_uuid(body.id, "conversations")
  local put = self:_put("Conversation")
  return self:_rest("POST", "/conversations", body, put, callback)
end

function Client:conversations(opts, callback)
  if type(opts) == "function" then opts, callback = nil, opts end
  opts = opts or {}
  if opts.from_id then check_uuid(opts.from_id, "conversations") end
  assert(opts.sort_by == nil or opts.sort_by == "created_at" or opts.sort_by == "last_message",
    "sort_by is created_at or last_message")
  local path = "/conversations" .. query({ { "page_size", opts.page_size }, { "from_id", opts.from_id },
    { "sort_by", opts.sort_by } })
  return self:_rest("GET", path, nil, self:_put_list("Conversation"), callback)
end

function Client:conversation(id, callback)
  return self:_cached_or_fetch("conversations", "Conversation", id, callback)
end

function Client:message(id, callback)
  return self:_cached_or_fetch("messages", "Message", id, callback)
end

function Client:identity(user_id, callback)
  local path = "/identities/" .. check_user_id(user_id)
  return self:_rest("GET", path, nil, self:_put("Identity"), callback)
end

function Client:follow(user_id, callback)
  return self:_rest("PUT", "/following/users/" .. check_user_id(user_id), nil, nothing, callback)
end

function Client:unfollow(user_id, callback)
  return self:_rest("DELETE", "/following/users/" .. check_user_id(user_id), nil, nothing, callback)
end

function Client:announcements(callback)
  return self:_rest("GET", "/announcements", nil, self:_put_list("Announcement"), callback)
end

---------------------------------------------------------------------------
-- Object methods (installed per client into the C object metatable).

local function message_parts(content)
  if type(content) == "string" then
    return { parts = core.array({ { body = content, mime_type = "text/plain" } }) }
  end
  assert(type(content) == "table", "send(text) or send{parts=..., notification=..., id=...} expected")
  local parts = core.array()
  for i, p in ipairs(content.parts or {}) do
    if type(p) == "string" then p = { body = p, mime_type = "text/plain" } end
    assert(type(p) == "table" and (p.body or p.content), "each part needs a body or content")
    parts[i] = p
  end
  assert(#parts > 0, "a message needs at least one part")
  return { parts = parts, notification = content.notification, id = content.id }
end

function Client:_conversation_methods()
  local client = self
  local M = {}

  function M.send(conv, content, callback)
    local data = message_parts(content)
    data.id = data.id or client:_new_id("messages")
    check_uuid(data.id, "messages")
    local uploads = {}
    for i, p in ipairs(data.parts) do
      if p.body and #p.body > 2048 then uploads[#uploads + 1] = i end
    end
    if #uploads == 0 then
      -- over the socket, with a client-chosen id: a resend after a reconnect is deduplicated
      return client:_ws("Message.create", conv.id, data, client:_put("Message"), callback)
    end
    -- parts over 2 KB go up as rich content first
    return client:_async(callback, function()
      for _, i in ipairs(uploads) do
        local p = data.parts[i]
        local content, err = client:_upload(p.mime_type or "application/octet-stream", p.body)
        if not content then return nil, err end
        data.parts[i] = { mime_type = p.mime_type or "application/octet-stream", content = content }
      end
      local id = client._c:ws_request("Message.create", conv.id, data)
      return client:_await(id, client:_put("Message"), nil, 4)
    end, 3)
  end

  function M.messages(conv, opts, callback)
    if type(opts) == "function" then opts, callback = nil, opts end
    opts = opts or {}
    if opts.from_id then check_uuid(opts.from_id, "messages") end
    local path = "/conversations/" .. check_uuid(conv.id, "conversations") ..
      "/messages" .. query({ { "page_size", opts.page_size }, { "from_id", opts.from_id } })
    return client:_rest("GET", path, nil, client:_put_list("Message"), callback)
  end

  function M.cached_messages(conv)
    return client._c:messages(conv.id)
  end

  local function patch(conv, ops, callback)
    local path = "/conversations/" .. check_uuid(conv.id, "conversations")
    return client:_rest("PATCH", path, core.array(ops), nothing, callback, "application/vnd.layer-patch+json")
  end

  -- A Layer-Patch path below metadata: "a.b" is nested; a dot inside a key is "a\\.b".
  local function check_path(p)
    assert(type(p) == "string" and p ~= "", "metadata path expected")
    return p
  end

  function M.set_metadata(conv, path, value, callback)
    assert(type(value) == "string" or type(value) == "table", "metadata values are strings or tables")
    return patch(conv, { { operation = "set", property = "metadata." .. check_path(path), value = value } }, callback)
  end

  function M.delete_metadata(conv, path, callback)
    return patch(conv, { { operation = "delete", property = "metadata." .. check_path(path) } }, callback)
  end

  local function participant_ops(operation, list)
    local ops = {}
    for _, p in ipairs(list) do
      if type(p) == "userdata" then p = p.id end
      assert(type(p) == "string" and p ~= "", "participants are user ids, identity ids or Identity objects")
      local id = p:match("^layer:///identities/") and p or identity_id(p)
      ops[#ops + 1] = { operation = operation, property = "participants", id = id }
    end
    return ops
  end

  function M.add_participants(conv, list, callback)
    return patch(conv, participant_ops("add", list), callback)
  end

  function M.remove_participants(conv, list, callback)
    return patch(conv, participant_ops("remove", list), callback)
  end

  function M.delete(conv, opts, callback)
    if type(opts) == "function" then opts, callback = nil, opts end
    opts = opts or {}
    local mode = opts.mode or "all_participants"
    assert(mode == "all_participants" or mode == "my_devices", "mode is all_participants or my_devices")
    local path = "/conversations/" .. check_uuid(conv.id, "conversations") ..
      query({ { "mode", mode }, { "leave", opts.leave and "true" or nil } })
    return client:_rest("DELETE", path, nil, nothing, callback)
  end

  function M.mark_all_read(conv, callback)
    local last = conv.last_message
    local position = type(last) == "userdata" and last.position or (type(last) == "table" and last.position) or nil
    if not position then
      local cached = client._c:messages(conv.id)
      position = #cached > 0 and cached[#cached].position or 0
    end
    local path = "/conversations/" .. check_uuid(conv.id, "conversations") .. "/mark_all_read"
    return client:_rest("POST", path, { position = position }, nothing, callback)
  end

  function M.typing(conv, state)
    assert(state == "started" or state == "paused" or state == "finished", "typing state is started, paused or finished")
    return client._c:typing(conv.id, state)
  end

  return M
end

function Client:_message_methods()
  local client = self
  local M = {}
  local function receipt(msg, kind, callback)
    local path = "/messages/" .. check_uuid(msg.id, "messages", 4) .. "/receipts"
    return client:_rest("POST", path, { type = kind }, nothing, callback)
  end
  function M.mark_read(msg, callback) return receipt(msg, "read", callback) end
  function M.mark_delivered(msg, callback) return receipt(msg, "delivery", callback) end
  function M.delete(msg, opts, callback)
    if type(opts) == "function" then opts, callback = nil, opts end
    local mode = (opts and opts.mode) or "all_participants"
    assert(mode == "all_participants" or mode == "my_devices", "mode is all_participants or my_devices")
    local path = "/messages/" .. check_uuid(msg.id, "messages") .. query({ { "mode", mode } })
    return client:_rest("DELETE", path, nil, nothing, callback)
  end
  function M.text(msg)
    local out = {}
    for _, p in ipairs(msg.parts or {}) do
      if type(p.body) == "string" and (p.mime_type or ""):match("^text/") then out[#out + 1] = p.body end
    end
    return table.concat(out, "\n")
  end
  return M
end

function Client:_announcement_methods()
  local client = self
  local M = {}
  function M.mark_read(a, callback)
    local path = "/announcements/" .. check_uuid(a.id, "announcements") .. "/receipts"
    return client:_rest("POST", path, { type = "read" }, nothing, callback)
  end
  function M.delete(a, callback)
    return client:_rest("DELETE", "/announcements/" .. check_uuid(a.id, "announcements"), nil, nothing, callback)
  end
  return M
end

function Client:_identity_methods()
  local client = self
  return {
    follow = function(ident, callback) return client:follow(ident.user_id, callback) end,
    unfollow = function(ident, callback) return client:unfollow(ident.user_id, callback) end,
  }
end

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
function Client:step(timeout, budget)
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
    if cqueues and cqueues.cancel then cqueues.cancel(self._transport:pollfd()) end
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
  "insecure", "proxy", "manual_clock", "random_seed", "connect_timeout", "state", "catch_up" }

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
  local conversation_methods, message_methods = self:_conversation_methods(), self:_message_methods()
  self._c:set_methods("Conversation", conversation_methods)
  self._c:set_methods("Message", message_methods)
  self._c:set_methods("ConversationRef", self:_reference_methods("Conversation", conversation_methods))
  self._c:set_methods("MessageRef", self:_reference_methods("Message", message_methods))
  self._c:set_methods("Identity", self:_identity_methods())
  self._c:set_methods("Part", self:_part_methods())
  self._c:set_methods("Announcement", self:_announcement_methods())
  if opts.user_id then
    self.user = { user_id = opts.user_id, id = identity_id(opts.user_id) }
  end
  -- Inside OpenResty handlers run on nginx light threads, whatever the transport.
  local ngx_ = rawget(_G, "ngx")
  if type(ngx_) == "table" and type(ngx_.thread) == "table" and ngx_.get_phase then
    self._threads = require("layer.ngx").threads
  end
  if type(opts.transport) == "function" then -- a transport written in Lua (layer.ngx)
    self._transport = opts.transport(self, opts)
  elseif opts.transport ~= "manual" then
    self._transport = core.transport(self._c, {
      url = opts.url, websocket_url = opts.websocket_url, ca_file = opts.ca_file, ca_path = opts.ca_path,
      insecure = opts.insecure == true, proxy = opts.proxy, connect_timeout = opts.connect_timeout,
      request_timeout = opts.request_timeout,
    })
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
