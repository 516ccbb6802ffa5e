-- bench/ngx_mask.lua: WebSocket masking in layer.ngx (the OpenResty transport)
-- against the byte-by-byte loop it replaced, on 2 KB and 64 KB payloads.
-- Prints MB/s and the ratio; a figure, not a test. Run under LuaJIT:
--   LUA_PATH="lua/?.lua;bench/?.lua;;" LUA_CPATH="build/jit/?.so;;" luajit bench/ngx_mask.lua
-- layer.ngx needs nginx only when it runs: a stand-in ngx.semaphore lets it load.
package.preload["ngx.semaphore"] = function() return {} end
local M = require "layer.ngx"
local probes = require "probes"
local bit = require "bit"

local byte, char, concat = string.byte, string.char, table.concat

-- The loop layer.ngx used before (the baseline).
local function mask_bytewise(payload, key)
  local k = { byte(key, 1, 4) }
  local out, n = {}, #payload
  for i = 1, n do out[i] = char(bit.bxor(byte(payload, i), k[(i - 1) % 4 + 1])) end
  return concat(out)
end

local function payload_of(n)
  local parts = {}
  for i = 1, n do parts[i] = char((i * 7 + 3) % 256) end
  return concat(parts)
end

-- Same output for every length around the word boundaries first, and for a
-- frame past the kept buffer.
for _, n in ipairs({ 1024 * 1024 + 3, 70000 }) do
  local p, key = payload_of(n), "\9\200\0\77"
  assert(M._mask(p, key) == mask_bytewise(p, key), "masks differ at length " .. n)
end
for n = 0, 67 do
  local p, key = payload_of(n), char(n % 256, 255 - n, (n * 31) % 256, 128)
  assert(M._mask(p, key) == mask_bytewise(p, key), "masks differ at length " .. n)
  assert(M._mask(M._mask(p, key), key) == p, "masking twice is not the identity at length " .. n)
end

local function rate(fn, payload, key, seconds)
  local rounds = {}
  for r = 1, 5 do
    local n, t0 = 0, os.clock()
    repeat
      for _ = 1, 16 do fn(payload, key) end
      n = n + 16
    until os.clock() - t0 >= seconds
    rounds[r] = n * #payload / (os.clock() - t0) / 1e6
  end
  return probes.median(rounds)
end

print(("%-8s %14s %14s %8s"):format("payload", "bytewise MB/s", "words MB/s", "ratio"))
for _, size in ipairs({ 2048, 65536 }) do
  local p, key = payload_of(size), "\1\130\3\255"
  local old = rate(mask_bytewise, p, key, 0.2)
  local new = rate(M._mask, p, key, 0.2)
  print(("%-8s %14.1f %14.1f %7.1fx"):format((size / 1024) .. " KB", old, new, new / old))
end
