-- layer.ids: object and user ids, checked and escaped before they reach a URL
-- (PROTOCOL.md 2), identity ids, query strings, and the user id inside an
-- identity token.
local core = require "layer.core"

local UUID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"

-- The uuid of a layer:///<kind>/<uuid> id (or of a bare uuid), else nil.
local function uuid_of(id, kind)
  if type(id) ~= "string" then return nil end
  local u = id:match("^layer:///" .. kind .. "/(" .. UUID .. ")$") or id:match("^(" .. UUID .. ")$")
  return u
end

local function check_uuid(id, kind, level)
  local u = uuid_of(id, kind)
  if not u then
    error(("expected a %s id (layer:///%s/<uuid>), got %q"):format(kind:sub(1, -2), kind, tostring(id)), level or 3)
  end
  return u
end

-- %XX for every byte outside the set `keep` (a Lua pattern set body).
local function percent_encode(s, keep)
  return (s:gsub("[^" .. keep .. "]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- RFC 3986 unreserved characters stay.
local function url_escape(s)
  return percent_encode(s, "%w%-%._~")
end

-- A user's identity id, encoded exactly as the server and layer-websdk (strictEncodeURI, for its
-- own user) do it: letters, digits and -_.* stay, so one user never has two ids.
local function identity_id(user_id)
  return "layer:///identities/" .. percent_encode(user_id, "%w%-_%.%*")
end

local function check_user_id(user_id, level)
  if type(user_id) ~= "string" or user_id == "" or user_id:find("[%c]") then
    error("expected a user id (a non-empty string without control characters), got " .. tostring(user_id), level or 3)
  end
  return url_escape(user_id)
end

-- "?k=v&..." from { {k, v}, ... }, leaving out nil values; "" when none is left.
local function query(params)
  local parts = {}
  for _, kv in ipairs(params) do
    if kv[2] ~= nil then parts[#parts + 1] = kv[1] .. "=" .. url_escape(tostring(kv[2])) end
  end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

-- The user id (prn) inside an identity token, so client.user is known.
local function token_user(token)
  local payload = type(token) == "string" and token:match("^[^.]+%.([^.]+)%.")
  local text = payload and core.base64url_decode(payload)
  local claims = text and core.json_decode(text)
  return type(claims) == "table" and type(claims.prn) == "string" and claims.prn or nil
end

return {
  uuid_of = uuid_of, check_uuid = check_uuid, url_escape = url_escape, identity_id = identity_id,
  check_user_id = check_user_id, query = query, token_user = token_user,
}
