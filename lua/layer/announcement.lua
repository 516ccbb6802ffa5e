-- layer.announcement: announcements. The client's announcements list and
-- each Announcement's mark_read and delete.
local ids = require "layer.ids"
local requests = require "layer.requests"

local check_uuid = ids.check_uuid
local nothing = requests.nothing

local Client = {} -- methods of layer.client's Client

function Client:announcements(callback)
  return self:_rest("GET", "/announcements", nil, self:_put_list("Announcement"), callback)
end

-- Methods of every Announcement object, for one client.
local function methods(client)
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

return { client_methods = Client, methods = methods }
