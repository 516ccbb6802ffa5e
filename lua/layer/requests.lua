-- layer.requests: requests to the server and how their results come back:
-- straight-line inside handlers and coroutines (_await), to a callback
-- outside, or the host's way; _resolve hands a response to its waiter.
-- REST (request, _rest), WebSocket (_ws) and plain HTTP (_http, uploads).
-- Its methods are mixed into layer.client's Client.
local core = require "layer.core"
local errors = require "layer.errors"
local ids = require "layer.ids"
local scheduler = require "layer.scheduler"

local make_error = errors.make_error
local check_uuid = ids.check_uuid
local WAIT, running_coroutine = scheduler.WAIT, scheduler.running_coroutine

local Client = {} -- methods of layer.client's Client

---------------------------------------------------------------------------
-- Requests: straight-line inside handlers, callbacks outside.

local NOT_HERE = "layer: call this from an event handler, client:spawn or a coroutine, or pass a callback as the last argument"

function Client:_await(id, convert, callback, level)
  -- queued outside a step: a host loop waiting on pollfd() steps to send it
  if not self._stepping and self._transport and not self._closed then self._transport:wake() end
  local waiter = { convert = convert }
  if callback ~= nil then
    assert(type(callback) == "function", "callback function expected")
    waiter.callback = callback
    self._waiting[id] = waiter
    return id
  end
  local co = running_coroutine()
  if co and self._ours[co] then
    waiter.co = co
    self._waiting[id] = waiter
    return coroutine.yield(WAIT)
  end
  local threads = self._threads
  if threads and threads.can_wait() then
    waiter.parked = threads.park()
    self._waiting[id] = waiter
    -- its loop may be waiting inside step(), where the wake above is skipped
    if self._transport and self._transport.wake then self._transport:wake() end
    return waiter.parked:wait()
  end
  if not co then error(NOT_HERE, level or 3) end
  return self:_host_wait(id, waiter, co, level)
end

-- A request from a coroutine of the host's waits the host's way: on a
-- cqueues condition inside a cqueues controller, else by yielding to the
-- coroutine's resumer and being resumed with the results (luv: the response
-- comes from the step a luv callback runs).
function Client:_host_wait(id, waiter, co, level)
  if co == self._step_coroutine then
    error("layer: a request from the coroutine that runs step() would wait forever; use a callback or client:spawn",
      (level or 3) + 1)
  end
  self._waiting[id] = waiter
  self._hosts[waiter] = true
  local cqueues = package.loaded.cqueues
  if cqueues and cqueues.running and cqueues.running() then
    local cond = require("cqueues.condition").new()
    waiter.wake = function() cond:signal() end
    while not waiter.results do cond:wait() end
  else
    waiter.wake = function() -- a resume from inside step(): its errors are the step's
      local ok, err = coroutine.resume(co)
      if not ok then self:_fail(debug and debug.traceback and debug.traceback(co, tostring(err)) or err, "callback") end
    end
    while not waiter.results do coroutine.yield(WAIT) end
  end
  return waiter.results[1], waiter.results[2]
end

function Client:_resolve(ev)
  if self._state then self._state:resolved(ev) end
  local waiter = self._waiting[ev.request_id]
  if not waiter then return end
  self._waiting[ev.request_id] = nil
  local results
  if ev.success then
    results = { waiter.convert(ev.data, ev) }
  else
    results = { nil, make_error(ev.error, ev.http_status, ev.message) }
  end
  if waiter.co then
    self:_resume(waiter.co, results[1], results[2])
  elseif waiter.parked then
    waiter.parked:wake(results[1], results[2])
  elseif waiter.wake then
    self._hosts[waiter] = nil
    waiter.results = results
    waiter.wake()
  else
    self:_run("callback", waiter.callback, results[1], results[2])
  end
end

local function identity(v) return v end
local function nothing() return true end

function Client:_check_open(level)
  if self._closed or self._closing then error("layer: the client is closed", level or 3) end
end

-- Generic REST call: client:request(method, path [, body [, content_type]] [, callback])
function Client:request(method, path, body, content_type, callback)
  if type(body) == "function" then body, content_type, callback = nil, nil, body end
  if type(content_type) == "function" then content_type, callback = nil, content_type end
  self:_check_open()
  assert(type(method) == "string" and type(path) == "string" and path:sub(1, 1) == "/", "method and /path expected")
  assert(not path:find("[%c ]"), "path must not contain spaces or control characters")
  if type(body) == "table" then body = core.json_encode(body) end
  local id = self._c:rest_request(method, path, body, content_type)
  return self:_await(id, identity, callback)
end

function Client:_rest(method, path, body, convert, callback, content_type)
  self:_check_open(4)
  local create_id = self._state and method == "POST" and type(body) == "table" and body.id
  if type(body) == "table" then body = core.json_encode(body) end
  local id = self._c:rest_request(method, path, body, content_type)
  if create_id then self._state:sent(id, create_id, method, path, body) end
  return self:_await(id, convert or identity, callback, 4)
end

function Client:_ws(method, object_id, data, convert, callback)
  self:_check_open(4)
  local id = self._c:ws_request(method, object_id, data)
  if self._state and data and data.id and method:find("%.create$") then
    self._state:sent(id, data.id, method, object_id, core.json_encode(data))
  end
  return self:_await(id, convert or identity, callback, 4)
end

-- A client-chosen id for a create: derived from the change a handler runs
-- for when there is a state file, random otherwise.
function Client:_new_id(kind)
  return self._state and self._state:derived_id(kind) or ("layer:///" .. kind .. "/" .. core.uuid())
end

-- Multi-step methods: run fn straight away inside a client coroutine, else in
-- a new one that hands fn's results to the callback.
function Client:_async(callback, fn, level)
  if callback == nil then
    -- a client coroutine, a host's, or a light thread of nginx's: fn's requests wait there
    if running_coroutine() or (self._threads and self._threads.can_wait()) then return fn() end
    error(NOT_HERE, level or 3)
  end
  assert(type(callback) == "function", "callback function expected")
  self:_check_open(level)
  self:spawn(function() callback(fn()) end)
  return true
end

-- HTTP beyond the REST API (rich content): absolute URLs from the server.
local function raw_body(_, ev) return ev.body or "" end

function Client:_http(spec)
  local id = self._c:http(spec)
  return self:_await(id, spec.raw and raw_body or identity, nil, 4)
end

function Client:_same_origin(url)
  local base = self._opts.url:gsub("/+$", "")
  return url:sub(1, #base + 1) == base .. "/"
end

-- Upload data as rich content; returns the part's content object.
function Client:_upload(mime_type, data)
  assert(not mime_type:find("[%c]"), "mime_type must not contain control characters")
  local info, err = self:_http({ method = "POST", url = "/content", authenticated = true,
    headers = ("Upload-Content-Type: %s\nUpload-Content-Length: %d"):format(mime_type, #data) })
  if not info then return nil, err end
  if type(info) ~= "table" or type(info.id) ~= "string" or type(info.upload_url) ~= "string"
      or not info.upload_url:match("^https?://") then
    return nil, make_error({ id = "invalid_response", message = "POST /content gave no id and upload_url" })
  end
  local ok
  ok, err = self:_http({ method = "PUT", url = info.upload_url, body = data, content_type = mime_type, raw = true })
  if ok == nil then return nil, err end
  return { id = info.id, size = #data }
end

function Client:_put(type_name)
  return function(value)
    if type(value) ~= "table" or type(value.id) ~= "string" then return value end
    return self._c:put(type_name, value)
  end
end

-- What a create answers with: the cached object when changes have already
-- put it there, since a change that followed the create (a quick read
-- receipt) may have been applied before this answer is dispatched.
function Client:_put_created(type_name)
  local put = self:_put(type_name)
  return function(value)
    local cached = type(value) == "table" and type(value.id) == "string" and self._c:object(value.id)
    if cached and not cached.deleted then return cached end
    return put(value)
  end
end

function Client:_put_list(type_name)
  return function(list, ev)
    local out = {}
    for i, v in ipairs(type(list) == "table" and list or {}) do out[i] = self._c:put(type_name, v) end
    out.total = ev and ev.count
    return out
  end
end

-- The cached object at once (synchronously), else a fetch.
function Client:_cached_or_fetch(kind, type_name, id, callback)
  local u = check_uuid(id, kind, 4)
  local cached = self._c:object("layer:///" .. kind .. "/" .. u)
  if cached and not cached.deleted then
    if callback then self:spawn(callback, cached) end
    return cached
  end
  return self:_rest("GET", "/" .. kind .. "/" .. u, nil, self:_put(type_name), callback)
end

return { methods = Client, identity = identity, nothing = nothing }
