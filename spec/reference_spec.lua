-- The reference (lua/layer/meta.lua, and docs/reference.md generated from it)
-- against the code: every function, method, event, option and field it
-- declares exists on the real module and objects, and the public ones the code
-- has are declared, so neither can drift from the other. Object fields are
-- compared with what the local server really sends.
local layer = require "layer"
local core = require "layer.core"
local srv = require "support.layer_server"
local live = require "support.live"
local helper = require "helper"

local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local root = spec_dir .. "/.."

-- classes[name] = {functions = {name = "method"|"function"}, fields = {name = optional}, items = {...}}
local function parse_meta(text)
  local classes, by_var, current = {}, {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local kind, name = line:match("^%-%-%-@(%a+)%s+([%w_.]+)")
    if kind == "class" or kind == "alias" then
      current = { name = name, functions = {}, fields = {}, items = {} }
      classes[name] = current
    elseif kind == "field" and current then
      local field, opt = line:match("^%-%-%-@field%s+([%w_]+)(%??)")
      current.fields[field] = opt == "?"
    elseif line:match("^%-%-%-|") and current then
      current.items[#current.items + 1] = line:match('^%-%-%-|%s*"([^"]+)"')
    else
      local var = line:match("^local ([%w_]+) = {}")
      if var and current then by_var[var] = current end
      local owner, sep, fname = line:match("^function ([%w_]+)([.:])([%w_]+)%(")
      if owner then
        local class = assert(by_var[owner], "meta.lua: function on an unbound variable: " .. line)
        class.functions[fname] = sep == ":" and "method" or "function"
      end
    end
  end
  return classes
end

local meta_text = helper.read_file(root .. "/lua/layer/meta.lua")
local classes = parse_meta(meta_text)

local function sorted(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Names in `have` (a set) missing from `declared`, and the other way round.
local function difference(a, b)
  local out = {}
  for _, k in ipairs(sorted(a)) do if b[k] == nil then out[#out + 1] = k end end
  return out
end

local SESSION = { transport = "manual", session_token = "tok", user_id = "alice" }

describe("the reference (lua/layer/meta.lua)", function()
  local client
  before_each(function() client = layer.client(SESSION) end)
  after_each(function() client:close() end)

  it("is inert at run time: requiring it defines nothing and returns an empty table", function()
    package.loaded["layer.meta"] = nil
    local m = require "layer.meta"
    assert.are.equal("table", type(m))
    assert.is_nil(next(m))
    assert.is_truthy(meta_text:match("^%-%-%-@meta\n"))
  end)

  it("declares the classes the code has", function()
    for _, name in ipairs({ "layer", "layer.ClientOptions", "layer.Client", "layer.Event", "layer.Conversation",
      "layer.Message", "layer.Part", "layer.Identity", "layer.Announcement", "layer.Error", "layer.Stats",
      "layer.Change", "layer.Cache", "layer.Engine", "layer.Loop", "layer.dev", "layer.ngx" }) do
      assert.is_not_nil(classes[name], name)
    end
  end)

  -- The real value behind each class that declares functions.
  local function instances()
    local engine = client:engine()
    local conv = engine:put("Conversation", { id = "layer:///conversations/00000000-0000-4000-8000-000000000001",
      participants = layer.array({}), metadata = {} })
    local msg = engine:put("Message", { id = "layer:///messages/00000000-0000-4000-8000-000000000002",
      parts = layer.array({ { mime_type = "text/plain", body = "hi" } }) })
    return {
      ["layer"] = layer,
      ["layer.Client"] = client,
      ["layer.Conversation"] = conv,
      ["layer.Message"] = msg,
      ["layer.Part"] = msg.parts[1],
      ["layer.Identity"] = engine:put("Identity", { id = "layer:///identities/bob", user_id = "bob" }),
      ["layer.Announcement"] = engine:put("Announcement",
        { id = "layer:///announcements/00000000-0000-4000-8000-000000000003", parts = layer.array({}) }),
      ["layer.Cache"] = layer.cache(),
      ["layer.Engine"] = engine,
      ["layer.dev"] = require "layer.dev",
      ["layer.Loop"] = layer.loop(),
    }
  end

  it("names only functions and methods that exist", function()
    local real = instances()
    -- layer.ngx needs OpenResty to load: its source must define what is declared.
    local ngx_src = helper.read_file(root .. "/lua/layer/ngx.lua")
    for _, cname in ipairs(sorted(classes)) do
      local class = classes[cname]
      if next(class.functions) then
        for _, fname in ipairs(sorted(class.functions)) do
          if cname == "layer.ngx" then
            assert.is_truthy(ngx_src:find("\nfunction M%." .. fname .. "%("), "layer.ngx." .. fname)
          else
            local obj = real[cname]
            assert(obj ~= nil, "the spec has no instance of " .. cname .. ": add one")
            assert.are.equal("function", type(obj[fname]), cname .. "." .. fname)
          end
        end
      end
    end
  end)

  it("declares every public function of the module, the client, the objects, the cache and layer.dev", function()
    local undeclared = {}
    local function public_functions(t)
      local out = {}
      for k, v in pairs(t) do
        if type(k) == "string" and type(v) == "function" and not k:match("^_") then out[k] = true end
      end
      return out
    end
    local function compare(cname, t)
      for _, name in ipairs(difference(public_functions(t), classes[cname].functions)) do
        undeclared[#undeclared + 1] = cname .. "." .. name
      end
    end
    compare("layer", layer)
    compare("layer.Client", getmetatable(client).__index)
    compare("layer.Conversation", require("layer.conversation").methods(client))
    compare("layer.Message", require("layer.message").methods(client))
    compare("layer.Identity", require("layer.identity").methods(client))
    compare("layer.Announcement", require("layer.announcement").methods(client))
    compare("layer.Part", require("layer.part").methods(client))
    local cache = layer.cache()
    compare("layer.Cache", getmetatable(cache).__index)
    compare("layer.dev", require "layer.dev")
    assert.are.same({}, undeclared)
  end)

  it("declares the module's values, and they exist", function()
    local values = {}
    for k, v in pairs(layer) do if type(v) ~= "function" then values[k] = true end end
    assert.are.same({}, difference(values, classes["layer"].fields))
    assert.are.same({}, difference(classes["layer"].fields, values))
  end)

  it("lists exactly the events client:on accepts", function()
    local ok, err = pcall(client.on, client, "no.such_event", function() end)
    assert.is_false(ok)
    local known = {}
    for name in tostring(err):match("known events: (.*)$"):gmatch("[^, ]+") do known[name] = true end
    local declared = {}
    for _, name in ipairs(classes["layer.Event"].items) do
      declared[name] = true
      assert.is_true(pcall(client.on, client, name, function() end), name)
    end
    assert.are.same({}, difference(known, declared))
    assert.are.same({}, difference(declared, known))
  end)

  it("lists exactly the options layer.client accepts", function()
    local declared = classes["layer.ClientOptions"].fields
    for _, name in ipairs(sorted(declared)) do
      local opts = {}
      for k, v in pairs(SESSION) do opts[k] = v end
      if opts[name] == nil then opts[name] = false end
      local ok, c = pcall(layer.client, opts)
      if ok then c:close() else assert.is_falsy(tostring(c):find("unknown option", 1, true), name .. ": " .. tostring(c)) end
    end
    local ok, err = pcall(layer.client, { transport = "manual", session_token = "t", no_such_option = 1 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("unknown option", 1, true))
    -- the converse: the client's own list of names
    local src = helper.read_file(root .. "/lua/layer/client.lua")
    local list = assert(src:match("local OPTION_NAMES = (%b{})"), "OPTION_NAMES not found in client.lua")
    local accepted = {}
    for name in list:gmatch('"([%w_]+)"') do accepted[name] = true end
    assert.are.same({}, difference(accepted, declared))
    assert.are.same({}, difference(declared, accepted))
  end)

  it("lists exactly the fields of client:stats() and of an error", function()
    local stats = {}
    for k in pairs(client:stats()) do stats[k] = true end
    assert.are.same({}, difference(stats, classes["layer.Stats"].fields))
    assert.are.same({}, difference(classes["layer.Stats"].fields, stats))
    local e = require("layer.errors").make_error({ id = "x", code = 1, message = "m", url = "u", data = { retry_after = 2 } }, 503)
    local fields = {}
    for k in pairs(e) do fields[k] = true end
    assert.are.same({}, difference(fields, classes["layer.Error"].fields))
  end)
end)

describe("the reference's object fields", function()
  local server, alice, bob, all
  setup(function()
    server = srv.start({ lifetime = 60 })
    alice, bob = live.client(server, "alice"), live.client(server, "bob")
    all = { alice, bob }
    local n = 0
    for _, c in ipairs(all) do c:once("ready", function() n = n + 1 end) end
    live.pump(all, function() return n == 2 end, 10, "ready")
  end)
  teardown(function()
    for _, c in ipairs(all or {}) do c:close() end
    if server then server:stop() end
  end)

  -- Every required field is present on obj, and every field the server sent is declared.
  local function check(cname, obj)
    local fields = classes[cname].fields
    local snapshot = type(obj) == "userdata" and core.object_table(obj) or obj
    local extra = {}
    for k in pairs(snapshot) do if fields[k] == nil then extra[#extra + 1] = k end end
    table.sort(extra)
    assert.are.same({}, extra, cname .. " fields the server sent but meta.lua lacks")
    for _, name in ipairs(sorted(fields)) do
      if fields[name] == false then assert.is_not_nil(obj[name], cname .. "." .. name) end
    end
  end

  it("match what the local server sends for conversations, messages, parts, identities, announcements and changes", function()
    local changes, announced
    alice:on("message.update", function(_, c) -- values are read in the handler
      if changes then return end
      changes = {}
      for i, ch in ipairs(c) do changes[i] = { property = ch.property, paths = ch.paths, old = ch.old, new = ch.new } end
    end)
    bob:on("announcement.create", function(a) announced = a end)
    local conv = assert(live.run(all, alice, function()
      return alice:create_conversation({ participants = { "bob" }, metadata = { title = "t" } })
    end))
    local msg = assert(live.run(all, alice, function() return conv:send("hello") end))
    assert(live.run(all, bob, function() return bob:message(msg.id):mark_read() end))
    live.pump(all, function() return changes ~= nil end, 10, "the receipt's update")
    local ident = assert(live.run(all, alice, function() return alice:identity("bob") end))
    server:admin("announcements", { recipients = { "bob" }, parts = { { body = "notice", mime_type = "text/plain" } } })
    live.pump(all, function() return announced ~= nil end, 10, "the announcement")
    check("layer.Conversation", conv)
    check("layer.Message", msg)
    check("layer.Part", core.object_table(msg).parts[1])
    check("layer.Identity", ident)
    check("layer.Announcement", announced)
    check("layer.Change", changes[1])
    -- an error from a real failure
    local _, err = live.run(all, alice, function()
      return alice:conversation("layer:///conversations/00000000-0000-4000-8000-00000000dead")
    end)
    assert.is_true(layer.is_error(err))
    check("layer.Error", err)
    -- a logged-in client has every field declared for it
    for _, name in ipairs(sorted(classes["layer.Client"].fields)) do assert.is_not_nil(alice[name], name) end
  end)
end)
