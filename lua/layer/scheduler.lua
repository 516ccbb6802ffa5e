-- layer.scheduler: the client's event emitter (on / once / off, the interest
-- the engine is told about) and the coroutine scheduler that runs handlers
-- (the pool, resumes, waits passed to a host, parked handlers, nginx threads).
-- Its methods are mixed into layer.client's Client; WAIT is what a handler
-- yields while one of its requests is out.
local core = require "layer.core"
local errors = require "layer.errors"

local make_error = errors.make_error
local unpack = table.unpack or unpack

local Client = {} -- methods of layer.client's Client

local WAIT = setmetatable({}, { __tostring = function() return "layer: waiting for a response" end })

---------------------------------------------------------------------------
-- Handlers: on / once / off, dispatched as coroutines.

-- Every event the client emits (docs/client.md "Events"); other names are typos.
local EVENT_NAMES = { "ready", "connected", "disconnected", "reconnecting", "synced", "message",
  "conversation.create", "conversation.update", "conversation.delete", "conversation.truncate",
  "conversation.mark_read", "message.create", "message.update", "message.delete", "identity.create",
  "identity.update", "identity.delete", "announcement.create", "announcement.update", "announcement.delete",
  "typing", "error", "log" }
local KNOWN_EVENT = {}
for _, name in ipairs(EVENT_NAMES) do KNOWN_EVENT[name] = true end

local function check_event_name(name, level)
  if type(name) ~= "string" then error("event name expected, got " .. type(name), level + 1) end
  if not KNOWN_EVENT[name] then
    error(("layer.client: unknown event %q; known events: %s"):format(name, table.concat(EVENT_NAMES, ", ")),
      level + 1)
  end
end

function Client:on(name, fn)
  check_event_name(name, 2)
  assert(type(fn) == "function" or (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call),
    "handler function expected")
  local list = self._handlers[name]
  if not list then
    list = {}
    self._handlers[name] = list
  end
  list[#list + 1] = { fn = fn }
  self:_update_interest()
  return fn
end

-- The engine builds only the object events somebody listens to, and change
-- lists (copies of old and new values) only while an *.update handler is
-- registered and the client was not made with change_lists = false.
-- The bits come from the engine (LS_INTEREST in session.h), not a copy of its layout.
local function interest_bit(name)
  if name == "message" then return core.interest_bit("create", "message") end
  local kind, change = name:match("^(%a+)%.(%a+)$")
  return kind and core.interest_bit(change, kind)
end

function Client:_update_interest()
  local bits, updates = {}, false
  local lists = self._opts.change_lists ~= false
  for name in pairs(self._handlers) do
    if self:_has(name) then
      local bit = interest_bit(name)
      if bit then bits[bit] = true end
      if lists and name:match("%.update$") then updates = true end
    end
  end
  local mask = 0
  for bit in pairs(bits) do mask = mask + bit end
  self._c:interest(mask)
  self._c:change_lists(updates)
end

function Client:once(name, fn)
  check_event_name(name, 2)
  self:on(name, fn)
  local list = self._handlers[name]
  list[#list].once = true
  return fn
end

-- Removing during dispatch is safe: entries are marked, then compacted.
function Client:off(name, fn)
  check_event_name(name, 2)
  local list = self._handlers[name]
  if not list then return false end
  local found = false
  for _, h in ipairs(list) do
    if fn == nil or h.fn == fn then
      h.removed = true
      found = true
    end
  end
  if found then self._stale[name] = true end
  if not self._dispatching then self:_compact() end
  return found
end

-- Drop the entries marked removed, for the names that have some; dispatch
-- itself allocates nothing when no handler went away.
function Client:_compact()
  local stale = self._stale
  if next(stale) == nil then return end
  for name in pairs(stale) do
    local list, kept = self._handlers[name], {}
    for _, h in ipairs(list) do if not h.removed then kept[#kept + 1] = h end end
    self._handlers[name] = kept
  end
  self._stale = {}
  self:_update_interest()
end

-- A handler error goes to "error" handlers; without any, step() raises it.
function Client:_fail(err, where)
  local msg = type(err) == "string" and err or tostring(err)
  if where ~= "error" and self:_has("error") then
    self:_emit("error", make_error({ id = "handler_error", message = msg }, nil))
  else
    self._raise = self._raise or msg
  end
end

-- Handlers run on pooled coroutines: a runner loops, taking one job per
-- resume, so a handler call costs a resume rather than a new coroutine.
local DONE = setmetatable({}, { __tostring = function() return "layer: handler finished" end })

-- A runner parked by a foreign yield (below) may be finished by the host's own
-- resume: it then settles itself and ends, since nobody would take its DONE.
local function runner_body_for(client)
  return function(fn, a, b, c, d)
    while true do
      fn(a, b, c, d)
      if client._n_parked > 0 and client._parked[coroutine.running()] then
        client:_finished_abroad(coroutine.running())
        return
      end
      fn, a, b, c, d = coroutine.yield(DONE)
    end
  end
end

-- The coroutine running now, or nil on the main thread (5.1 and 5.2+ alike).
local function running_coroutine()
  local co, main = coroutine.running()
  if main then return nil end
  return co
end

-- Where a handler's foreign yield (anything but WAIT/DONE: cqueues.sleep,
-- a lua-http call, a luv wait) goes depends on what runs the step
-- (docs/client.md "Waiting the host's way"):
--   * a cqueues coroutine: a cqueues coroutine of the handler's own carries
--     it to the controller and back (_carry), so the step goes on;
--   * another host coroutine: the yield goes up through every client
--     coroutine in between to that host coroutine's resumer, and what it
--     resumes us with goes back down to the handler;
--   * plain code (a luv callback, a luasocket loop): the handler is parked,
--     left suspended for whoever it waits on to resume it (a luv callback).
-- _roots remembers, per client coroutine, the host coroutine (or false for
-- plain code) at the bottom of the resumes that run it.
-- (The hot path, a handler resumed from plain code that returns, writes no
-- table but the pool.)
function Client:_resume(co, ...)
  local running, main = coroutine.running()
  local root = false
  if running and not main then
    if self._ours[running] then root = self._roots[running] or false else root = running end
  end
  local roots = self._roots
  if (roots[co] or false) ~= root then roots[co] = root or nil end
  if self._n_parked > 0 then self:_unpark(co) end
  return self:_resumed(co, root, coroutine.resume(co, ...))
end

function Client:_park(co)
  if not self._parked[co] then
    self._parked[co] = true
    self._n_parked = self._n_parked + 1
  end
end

function Client:_unpark(co)
  if self._parked[co] then
    self._parked[co] = nil
    self._n_parked = self._n_parked - 1
  end
end

-- A change list's values (lchanges.c) are freed once the handlers of its
-- event have finished: at once after dispatch, or when the last handler
-- that waited (a request, a host's yield) ends. Only waiting handlers write
-- to these tables; both are weak so an abandoned coroutine leaks nothing.
function Client:_hold_values(values, key)
  local held, refs = self._held, self._values_refs
  if not held then
    held, refs = setmetatable({}, { __mode = "k" }), setmetatable({}, { __mode = "k" })
    self._held, self._values_refs = held, refs
  end
  held[key] = values
  refs[values] = (refs[values] or 0) + 1
end

function Client:_unhold(key)
  local values = self._held[key]
  if not values then return end
  self._held[key] = nil
  local refs = self._values_refs
  local n = refs[values] - 1
  refs[values] = n > 0 and n or nil
  if n == 0 and self._values ~= values then values:release() end
end

-- After an event's dispatch: its values go unless a handler still runs.
function Client:_dispatched_values(values)
  self._values = nil
  local refs = self._values_refs
  if not (refs and refs[values]) then values:release() end
end

function Client:_resumed(co, root, ok, first, ...)
  if first == DONE then -- the handler returned (a yield, so ok)
    if self._held then self:_unhold(co) end
    if self._state then self._state:detach(co) end
    local pool = self._pool
    if #pool < 32 then pool[#pool + 1] = co else self._ours[co] = nil end
    return
  end
  if ok and first == WAIT then return end -- waits on a request of ours: its response resumes it
  if ok and coroutine.status(co) == "suspended" then
    local cqueues = package.loaded.cqueues
    if root and cqueues and cqueues.running and root ~= self._carriers[co] and cqueues.running() then
      -- In a cqueues controller the handler gets a cqueues coroutine of its
      -- own to carry its waits, so this step goes on with other events.
      cqueues.running():wrap(function(...) return self:_carry(co, ...) end, first, ...)
      return
    end
    if root then -- pass it up, then hand the answer back down
      return self:_resumed(co, root, coroutine.resume(co, coroutine.yield(first, ...)))
    end
    self:_park(co) -- still attached to its change, if any
    return
  end
  if self._state then self._state:detach(co) end -- raised or left
  if self._held then self:_unhold(co) end
  if not ok then
    local where = self._ours[co]
    self._ours[co] = nil
    local msg = debug and debug.traceback and debug.traceback(co, tostring(first)) or first
    if type(where) == "table" then where:raised(first, msg) else self:_fail(msg, where) end -- a client:wait job
  elseif coroutine.status(co) == "dead" then
    self._ours[co] = nil
  end
end

-- The cqueues coroutine that carries a handler's waits until it next waits on
-- the client (or ends): it yields what the handler yielded to the controller.
function Client:_carry(co, ...)
  local carrier = running_coroutine()
  self._carriers[co] = carrier
  self._roots[co] = carrier
  self:_resumed(co, carrier, coroutine.resume(co, coroutine.yield(...)))
  if self._carriers[co] == carrier then self._carriers[co] = nil end
end

-- A parked handler that its host resumed has returned.
function Client:_finished_abroad(co)
  self:_unpark(co)
  self._ours[co] = nil
  if self._held then self:_unhold(co) end
  if self._state then self._state:detach(co) end
end

-- A parked handler that raised under its host's resume (the host got the
-- error): let its change go.
function Client:_sweep_parked()
  for co in pairs(self._parked) do
    if coroutine.status(co) == "dead" then self:_finished_abroad(co) end
  end
end

-- Run fn(a, b, c, d) on one of the client's coroutines: inside it request
-- methods return their results directly.
function Client:_run(where, fn, a, b, c, d)
  local threads = self._threads
  if threads then return self:_run_threaded(threads, where, fn, a, b, c, d) end
  local pool = self._pool
  local co = pool[#pool]
  if co then
    pool[#pool] = nil
  else
    co = coroutine.create(self._runner_body)
  end
  self._ours[co] = where
  local change = self._change
  if change and where ~= "spawn" and where ~= "callback" then self._state:attach(co, change) end
  local running, main = coroutine.running()
  if (running == nil or main) and self._n_parked == 0 and self._roots[co] == nil then
    self:_resumed(co, false, coroutine.resume(co, fn, a, b, c, d)) -- plain code: _resume's work is done
  else
    self:_resume(co, fn, a, b, c, d)
  end
  local values = self._values
  if values and self._ours[co] and pool[#pool] ~= co then self:_hold_values(values, co) end -- it waits
end

-- A host with threads of its own (OpenResty: lua/layer/ngx.lua) runs each handler
-- on a new thread of the caller's context, where requests park the thread until
-- their response. nginx binds a coroutine to the request that created it: one of
-- the pool's, made in a timer and resumed from a content handler (or the other
-- way round), killed the worker with SIGSEGV.
local traceback = debug and debug.traceback or function(e) return e end
local clock = core.clock

function Client:_run_threaded(threads, where, fn, a, b, c, d)
  local change = where ~= "spawn" and where ~= "callback" and self._change or nil
  local state = self._state
  local values, token = self._values, nil
  if values then
    token = {}
    self:_hold_values(values, token)
  end
  threads.spawn(function()
    local co = coroutine.running()
    if change then state:attach(co, change) end
    local ok, err = xpcall(function() return fn(a, b, c, d) end, traceback)
    if token then self:_unhold(token) end
    if state then state:detach(co) end
    if not ok then self:_fail(err, where) end
  end)
end

-- Without error handlers, an error raised before fn first waits is raised by
-- spawn itself when called from plain code (no step() would see it soon);
-- inside a step or a client coroutine the step raises it.
function Client:spawn(fn, ...)
  local n = select("#", ...)
  if n <= 4 then
    self:_run("spawn", fn, ...)
  else
    local args = { ... }
    self:_run("spawn", function() return fn(unpack(args, 1, n)) end)
  end
  if self._raise and not self._stepping and not self._threads then -- their loop reports it
    local co = coroutine.running()
    if not (co and self._ours[co]) then self:_raise_pending() end
  end
end

function Client:_has(name)
  local list = self._handlers[name]
  if not list then return false end
  for _, h in ipairs(list) do if not h.removed then return true end end
  return false
end

-- Inside a batch (below), an object event's handlers are called directly,
-- under xpcall, on the batch's coroutine; one that waits takes the coroutine
-- with it, and step() dispatches the rest of its event.
local function handler_traceback(e) return traceback(tostring(e), 2) end

-- Whether handler h of name is still registered; a once handler is
-- unregistered as it is taken.
local function take(self, name, h)
  if not h or h.removed then return false end
  if h.once then
    h.removed = true
    self._stale[name] = true
  end
  return true
end

function Client:_emit(name, ...)
  local list = self._handlers[name]
  if not list then return end
  local batch = self._direct
  if batch then
    self._direct = nil -- what these handlers emit runs on coroutines of its own
    self._dispatching = true
    for i = 1, #list do
      local h = list[i]
      if take(self, name, h) then
        batch.name, batch.i = name, i
        local ok, err = xpcall(h.fn, handler_traceback, ...)
        if not ok then self:_fail(err, name) end
        if self._batch ~= batch then return end -- it waited: step() took the event over
      end
    end
    self._direct = batch
    self._dispatching = false
    if next(self._stale) ~= nil then self:_compact() end
    return
  end
  self:_emit_from(name, 1, ...)
end

-- Handlers start..#list of name, each on a pooled coroutine.
function Client:_emit_from(name, start, ...)
  local list = self._handlers[name]
  if not list then return end
  local was = self._dispatching
  self._dispatching = true
  for i = start, #list do
    local h = list[i]
    if take(self, name, h) then self:_run(name, h.fn, ...) end
  end
  self._dispatching = was
  if not was and next(self._stale) ~= nil then self:_compact() end
end

-- Batches: a step from plain code (no host coroutine, nginx threads or state
-- file, none parked) dispatches its events from one pooled coroutine, calling
-- object handlers directly: a resume and a yield per handler were most of the
-- dispatch cost. pcall must be yieldable for a handler to wait in there, which
-- PUC Lua 5.1's is not.
local BATCHES = _VERSION ~= "Lua 5.1" or type(rawget(_G, "jit")) == "table"

function Client:_can_batch()
  return BATCHES and not self._threads and not self._state and self._n_parked == 0 and running_coroutine() == nil
end

local function run_batch(self, batch)
  local c = self._c
  while batch.n < batch.limit and not self._closed and not (batch.stop_at and batch.n > 0 and clock() >= batch.stop_at) do
    local name, object_type, object, extra, ev, values = c:next_event()
    if not name then break end
    batch.n = batch.n + 1
    self:_handle(name, object_type, object, extra, ev, values)
    if self._batch ~= batch then return end -- a handler waits: step() goes on without this coroutine
    if self._raise then break end
  end
  batch.done = true
  self._batch = nil
end

-- Dispatch up to limit events (stop_at: a core.clock() deadline); the count.
function Client:_dispatch_batched(limit, stop_at)
  local n = 0
  while n < limit and not self._closed and self._c:pending() > 0 do
    if stop_at and n > 0 and clock() >= stop_at then break end
    local batch = { n = n, limit = limit, stop_at = stop_at }
    self._batch = batch
    self:_run("dispatch", run_batch, self, batch)
    n = batch.n
    if not batch.done then
      self._batch = nil
      self:_finish_interrupted(batch)
    end
    if self._raise then return n end
    if batch.done then break end
  end
  return n
end

-- A handler of the batch waited: the rest of its event, as _handle would.
function Client:_finish_interrupted(batch)
  self._direct = nil
  self._dispatching = false
  local object = batch.object
  if batch.name == "message" and batch.create then
    self:_emit_from("message", batch.i + 1, object)
  else
    if batch.extra == nil then
      self:_emit_from(batch.name, batch.i + 1, object)
    else
      self:_emit_from(batch.name, batch.i + 1, object, batch.extra)
    end
    if batch.create then self:_emit("message", object) end
  end
  if batch.values then self:_dispatched_values(batch.values) end
end

return { methods = Client, WAIT = WAIT, running_coroutine = running_coroutine, runner_body_for = runner_body_for }
