-- layer.identity: identities. The client's identity, follow and unfollow,
-- and each Identity's follow and unfollow.
local ids = require "layer.ids"
local requests = require "layer.requests"

local check_user_id = ids.check_user_id
local nothing = requests.nothing

local Client = {} -- methods of layer.client's Client

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

-- Methods of every Identity object, for one client.
local function methods(client)
  return {
    follow = function(ident, callback) return client:follow(ident.user_id, callback) end,
    unfollow = function(ident, callback) return client:unfollow(ident.user_id, callback) end,
  }
end

return { client_methods = Client, methods = methods }
