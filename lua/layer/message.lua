-- layer.message: messages. The client's message(id) and each Message's
-- methods (receipts, delete, text).
local ids = require "layer.ids"
local requests = require "layer.requests"

local check_uuid, query = ids.check_uuid, ids.query
local nothing = requests.nothing

local Client = {} -- methods of layer.client's Client

function Client:message(id, callback)
  return self:_cached_or_fetch("messages", "Message", id, callback)
end

-- Methods of every Message object, for one client.
local function methods(client)
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

return { client_methods = Client, methods = methods }
