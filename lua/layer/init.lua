-- layer: Lua client for the Layer Client API.
-- This file is the public module; the C half is layer.core (src/).

local core = require "layer.core"

local layer = {
  _NAME = "layer",
  _VERSION = core._VERSION,
  null = core.null,          -- JSON null; the same value as cjson.null
  array_mt = core.array_mt,  -- metatable of arrays coming out of the module
  array = core.array,        -- layer.array(t) marks t as a JSON array
  patch = core.patch,
  decode_packet = core.decode_packet,
  json_decode = core.json_decode,
  json_encode = core.json_encode,
  cache = core.cache,        -- layer.cache(): the C object cache, fed with frames
}

layer.uuid = core.uuid            -- a random (version 4) UUID
layer.dev_token = core.dev_token  -- HS256 identity token for the local server

-- layer.client{url=, app_id=, identity=function(nonce) return token end | session_token=, ...}
function layer.client(options)
  return require("layer.client").new(options)
end

-- layer.loop(): one loop many clients share (layer.client{ ..., loop = L }); L:step(timeout)
function layer.loop()
  return require("layer.loop").new()
end

function layer.is_error(v)
  return require("layer.client").is_error(v)
end

function layer.is_array(t)
  return type(t) == "table" and getmetatable(t) == core.array_mt
end

return layer
