-- layer.errors: the typed error values the client's failures come back as
-- (nil, err), with the fields of Layer's error JSON plus http_status,
-- retryable and retry_after.

local Error = {}
Error.__index = Error
function Error.__tostring(e)
  local where = e.http_status and (" (HTTP " .. e.http_status .. ")") or ""
  return ("layer error %s%s: %s"):format(tostring(e.id), where, tostring(e.message))
end
-- So "failed: " .. err and err .. "" read as the message, as with a string error.
function Error.__concat(a, b) return tostring(a) .. tostring(b) end

local RETRYABLE_IDS = { service_unavailable = true, rate_limit_exceeded = true, request_timeout = true,
  transport_error = true }

local function make_error(body, http_status, text)
  local e = setmetatable({}, Error)
  if type(body) == "table" then
    e.id, e.code, e.message, e.url, e.data = body.id, body.code, body.message, body.url, body.data
  end
  if http_status == 0 then http_status = nil end
  e.http_status = http_status
  e.id = e.id or (http_status and "http_error" or "transport_error")
  e.message = e.message or text or ("HTTP status " .. tostring(http_status))
  e.retryable = RETRYABLE_IDS[e.id] or http_status == 429 or (http_status ~= nil and http_status >= 500) or false
  if type(e.data) == "table" and tonumber(e.data.retry_after) then e.retry_after = tonumber(e.data.retry_after) end
  return e
end

local function is_error(v) return getmetatable(v) == Error end

return { Error = Error, make_error = make_error, is_error = is_error }
