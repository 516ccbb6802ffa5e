-- layer.conversation: conversations. The client's create_conversation,
-- conversations and conversation, and each Conversation's methods (send,
-- messages, metadata, participants, delete, mark_all_read, typing).
local core = require "layer.core"
local ids = require "layer.ids"
local requests = require "layer.requests"

local check_uuid, identity_id, query = ids.check_uuid, ids.identity_id, ids.query
local nothing = requests.nothing

local Client = {} -- methods of layer.client's Client

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
  local put = self:_put_created("Conversation")
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

-- send()'s argument as Message.create data: text, or parts, notification and id.
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

-- Methods of every Conversation object, for one client.
local function methods(client)
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
      return client:_ws("Message.create", conv.id, data, client:_put_created("Message"), callback)
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
      return client:_await(id, client:_put_created("Message"), nil, 4)
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

return { client_methods = Client, methods = methods }
