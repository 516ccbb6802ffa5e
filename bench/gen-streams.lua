-- gen-streams.lua - writes the deterministic benchmark workloads into build/bench/.
--
--   lua5.4 bench/gen-streams.lua [outdir] [patches] [messages]
--
-- patch-stream.json   base Conversation + Message, an id -> Basic Identity map and
--                     N patches (1-3 Layer-Patch operations each) for bench/patch_engine.{c,js}
-- frames.txt          WebSocket frame texts, one per line: Conversation and 1-2 KB Message
--                     `create` change packets and small `patch` packets, for bench/decode_apply.lua
--
-- Plain Lua on purpose (no module, no cjson): the generator must not depend on what it measures.
-- All strings are printable ASCII, so every JSON writer involved escapes them identically.

local outdir = arg[1] or "build/bench"
local N_PATCHES = tonumber(arg[2]) or 30000
local N_MESSAGES = tonumber(arg[3]) or 3000
local N_CONVERSATIONS = 30

-- Deterministic PRNG (64-bit LCG, Knuth's MMIX constants); Lua 5.4 integers wrap.
local seed = 0x2545F4914F6CDD1D
local function rand(n) -- 1..n
  seed = seed * 6364136223846793005 + 1442695040888963407
  return ((seed >> 33) % n) + 1
end
local function pick(t) return t[rand(#t)] end

---------------------------------------------------------------------------
-- Minimal JSON writer: sorted keys (deterministic), arrays marked by __array.
local ARRAY = {}
local function array(t) return setmetatable(t, ARRAY) end
local NULL = setmetatable({}, {__name = "null"})

local function encode(v, out)
  local t = type(v)
  if v == NULL then out[#out + 1] = "null"
  elseif t == "string" then
    out[#out + 1] = '"' .. v:gsub('[\\"]', "\\%0") .. '"'
  elseif t == "number" then
    out[#out + 1] = math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif getmetatable(v) == ARRAY then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then out[#out + 1] = "," end
      encode(v[i], out)
    end
    out[#out + 1] = "]"
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      encode(k, out)
      out[#out + 1] = ":"
      encode(v[k], out)
    end
    out[#out + 1] = "}"
  end
end
local function json(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Shapes (PROTOCOL.md §5, websdk-wire-reference.md §5, seeds/002).
local HOST = "https://api.layer.com"
local HEX = "0123456789abcdef"
local function uuid()
  local s = {}
  for i = 1, 32 do
    local d = rand(16)
    s[#s + 1] = HEX:sub(d, d)
    if i == 8 or i == 12 or i == 16 or i == 20 then s[#s + 1] = "-" end
  end
  return table.concat(s)
end

-- Half of the user ids contain dots, so recipient_status paths need `\.` escapes.
local FIRST = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
local LAST = {"smith", "jones", "brown", "lee", "garcia", "miller", "davis", "wilson"}
local identities, identity_ids = {}, {}
for i = 1, 40 do
  local f, l = pick(FIRST), pick(LAST)
  local user_id = (i % 2 == 0) and (f .. "." .. l .. "." .. i) or (f .. "_" .. i)
  local id = "layer:///identities/" .. user_id
  identities[i] = {
    id = id, url = HOST .. "/identities/" .. user_id, user_id = user_id,
    display_name = f:sub(1, 1):upper() .. f:sub(2) .. " " .. l:sub(1, 1):upper() .. l:sub(2),
    avatar_url = (i % 3 == 0) and NULL or ("https://cdn.example.com/avatars/" .. user_id .. ".png"),
  }
  identity_ids[i] = id
end
local function escape_dots(s) return (s:gsub("%.", "\\.")) end

local WORDS = {}
for w in ([[the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet consectetur
  adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua meeting
  tomorrow review release notes please check attached file thanks again see you soon]]):gmatch("%S+") do
  WORDS[#WORDS + 1] = w
end
local function sentence(nwords)
  local s = {}
  for i = 1, nwords do s[i] = pick(WORDS) end
  return table.concat(s, " ")
end

local function timestamp(sec)
  return string.format("2017-03-%02dT%02d:%02d:%02d.%03dZ", 1 + sec // 86400 % 28, sec // 3600 % 24,
    sec // 60 % 60, sec % 60, rand(1000) - 1)
end

local function conversation(members, cid)
  local parts = array({})
  for i, m in ipairs(members) do parts[i] = identities[m] end
  return {
    id = "layer:///conversations/" .. cid, url = HOST .. "/conversations/" .. cid,
    messages_url = HOST .. "/conversations/" .. cid .. "/messages",
    created_at = timestamp(rand(100000)), participants = parts, distinct = false,
    metadata = {title = sentence(3), background_color = "#3c3c3c", a = {b = 1}},
    unread_message_count = 0, total_message_count = 0, last_message = NULL,
  }
end

local function message(conv, members, position)
  local mid = uuid()
  local id = "layer:///messages/" .. mid
  local sender = identities[pick(members)]
  local status = {}
  for _, m in ipairs(members) do
    status[identity_ids[m]] = (identity_ids[m] == sender.id) and "read" or pick({"sent", "sent", "delivered"})
  end
  local parts = array({{id = id .. "/parts/0", mime_type = "text/plain", body = sentence(4 + rand(24))}})
  parts[1].size = #parts[1].body
  if rand(3) == 1 then
    local cuid = uuid()
    parts[2] = {id = id .. "/parts/1", mime_type = "image/png", content = {
      id = "layer:///content/" .. cuid, download_url = "https://storage.example.com/download/" .. cuid,
      expiration = timestamp(rand(100000)), refresh_url = HOST .. "/content/" .. cuid, size = rand(5000000)}}
  end
  return {
    id = id, url = HOST .. "/messages/" .. mid, receipts_url = HOST .. "/messages/" .. mid .. "/receipts",
    position = position, conversation = {id = conv.id, url = conv.url}, parts = parts,
    sent_at = timestamp(position), received_at = NULL, sender = sender, is_unread = true,
    recipient_status = status,
  }
end

local function members_of(n)
  local all = {}
  for i = 1, #identities do all[i] = i end
  for i = #all, 2, -1 do -- Fisher-Yates
    local j = rand(i)
    all[i], all[j] = all[j], all[i]
  end
  local m = {}
  for i = 1, n do m[i] = all[i] end
  return m
end

local function set_op(property, value) return {operation = "set", property = property, value = value} end

---------------------------------------------------------------------------
-- (a) Patch-engine stream: one Conversation and one Message, 25 identities each.
local function patch_stream()
  local members = members_of(25)
  local conv = conversation(members, uuid())
  local msg = message(conv, members, 15032697020)
  local objects = {}
  for i, ident in ipairs(identities) do objects[identity_ids[i]] = ident end

  -- Track membership so adds pick non-members and removes pick members (as a server would send).
  local inside, outside = {}, {}
  for _, m in ipairs(members) do inside[#inside + 1] = m end
  local is_member = {}
  for _, m in ipairs(members) do is_member[m] = true end
  for i = 1, #identities do if not is_member[i] then outside[#outside + 1] = i end end
  local function take(list)
    local k = rand(#list)
    local v = list[k]
    list[k] = list[#list]
    list[#list] = nil
    return v
  end

  local patches, n_ops = array({}), 0
  for p = 1, N_PATCHES do
    local ops, target = array({}), nil
    local kind = rand(10)
    if kind <= 5 then -- recipient_status receipts: the most frequent patch in a chat
      target = "Message"
      for _ = 1, rand(3) do
        local who = identity_ids[pick(members)]
        ops[#ops + 1] = set_op("recipient_status." .. escape_dots(who), pick({"delivered", "read"}))
      end
    else
      target = "Conversation"
      for _ = 1, rand(3) do
        local k = rand(10)
        if k <= 3 then ops[#ops + 1] = set_op("metadata.title", sentence(1 + rand(4)))
        elseif k <= 5 then ops[#ops + 1] = set_op("metadata.a.b", rand(1000))
        elseif k == 6 then ops[#ops + 1] = {operation = "delete", property = "metadata.a.b"}
        elseif k == 7 then ops[#ops + 1] = {operation = "delete", property = "metadata.title"}
        elseif k <= 9 and #outside > 0 and #inside > 20 or #inside < 22 then
          local m = take(outside)
          inside[#inside + 1] = m
          ops[#ops + 1] = {operation = "add", property = "participants", id = identity_ids[m], value = identities[m]}
        else
          local m = take(inside)
          outside[#outside + 1] = m
          ops[#ops + 1] = {operation = "remove", property = "participants", id = identity_ids[m], value = identities[m]}
        end
      end
    end
    n_ops = n_ops + #ops
    patches[p] = {type = target, ops = ops}
  end
  return {conversation = conv, message = msg, objects = objects, patches = patches, n_ops = n_ops}
end

---------------------------------------------------------------------------
-- (b) Frame stream: Conversation creates, then Message creates interleaved with small patches
-- (receipts on recent messages, some Conversation metadata), as a busy client sees them.
local function frames()
  local lines, counter, sec = {}, 0, 0
  local function frame(operation, typ, id, url, data)
    sec = sec + rand(3)
    lines[#lines + 1] = json({type = "change", counter = counter, timestamp = timestamp(sec), body = {
      operation = operation, object = {type = typ, id = id, url = url}, data = data}})
    counter = counter + 1
  end
  local convs = {}
  for c = 1, N_CONVERSATIONS do
    local members = members_of(3 + rand(12))
    local conv = conversation(members, uuid())
    convs[c] = {conv = conv, members = members, recent = {}, position = 1000 * c}
    frame("create", "Conversation", conv.id, conv.url, conv)
  end
  local n_create, n_patch, create_bytes, patch_bytes = 0, 0, 0, 0
  for _ = 1, N_MESSAGES do
    local c = pick(convs)
    c.position = c.position + rand(5)
    local msg = message(c.conv, c.members, c.position)
    frame("create", "Message", msg.id, msg.url, msg)
    n_create, create_bytes = n_create + 1, create_bytes + #lines[#lines]
    table.insert(c.recent, msg)
    if #c.recent > 8 then table.remove(c.recent, 1) end
    for _ = 1, rand(5) do -- receipts for this or a recent message of a random conversation
      local cc = (rand(3) == 1) and pick(convs) or c
      if #cc.recent > 0 then
        local m = pick(cc.recent)
        local ops = array({})
        for _ = 1, rand(2) do
          ops[#ops + 1] = set_op("recipient_status." .. escape_dots(identity_ids[pick(cc.members)]),
            pick({"delivered", "read"}))
        end
        frame("patch", "Message", m.id, m.url, ops)
        n_patch, patch_bytes = n_patch + 1, patch_bytes + #lines[#lines]
      end
    end
    if rand(10) == 1 then
      local cc = pick(convs)
      local ops = array({set_op("metadata.title", sentence(1 + rand(4))), set_op("unread_message_count", rand(50))})
      frame("patch", "Conversation", cc.conv.id, cc.conv.url, ops)
      n_patch, patch_bytes = n_patch + 1, patch_bytes + #lines[#lines]
    end
  end
  return lines, n_create, n_patch, create_bytes, patch_bytes
end

os.execute("mkdir -p '" .. outdir .. "'")
local ps = patch_stream()
local f = assert(io.open(outdir .. "/patch-stream.json", "w"))
f:write(json({conversation = ps.conversation, message = ps.message, objects = ps.objects, patches = ps.patches}), "\n")
f:close()
local lines, n_create, n_patch, create_bytes, patch_bytes = frames()
f = assert(io.open(outdir .. "/frames.txt", "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
print(string.format("gen-streams: %d patches (%d operations) -> %s/patch-stream.json", N_PATCHES, ps.n_ops, outdir))
print(string.format("gen-streams: %d frames: %d creates (avg %d B), %d patches (avg %d B) -> %s/frames.txt",
  #lines, n_create + N_CONVERSATIONS, create_bytes // n_create, n_patch, patch_bytes // n_patch, outdir))
