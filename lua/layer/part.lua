-- layer.part: message parts. Each Part's download, inline or from rich
-- content (with a fresh URL when the one it has expired).
local errors = require "layer.errors"

local make_error = errors.make_error

-- Methods of every Part object, for one client.
local function methods(client)
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

return { methods = methods }
