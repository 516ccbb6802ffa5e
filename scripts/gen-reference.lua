-- gen-reference.lua: writes docs/reference.md from the LuaLS annotations in
-- lua/layer/meta.lua, so the reference users read and the one editors read are
-- one text. Plain Lua 5.4 (5.1+), no dependencies.
--
--   lua5.4 scripts/gen-reference.lua [meta.lua [out.md]]     (`make reference`)
--
-- What it understands (all meta.lua uses): `---` text blocks, @class with
-- @field, @alias with `---| "value" # (args): text` items, @param, @return
-- (`type # text`), and `function X.f(...)` / `function X:f(...)` where X is
-- the `local X = {}` a @class block names.

local META = arg[1] or "lua/layer/meta.lua"
local OUT = arg[2] or "docs/reference.md"

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- "name? type text..." -> name, optional, type, text; types may hold spaces
-- inside {} () <> and after commas or colons.
local function split_type(s)
  local depth, i, n = 0, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "{" or c == "(" or c == "<" or c == "[" then depth = depth + 1
    elseif c == "}" or c == ")" or c == ">" or c == "]" then depth = depth - 1
    elseif c == " " and depth == 0 then
      local prev = s:sub(i - 1, i - 1)
      if prev ~= "," and prev ~= ":" and prev ~= "|" and s:sub(i + 1, i + 1) ~= "|" then break end
    end
    i = i + 1
  end
  return trim(s:sub(1, i - 1)), trim(s:sub(i + 1))
end

local function parse(path)
  local f = assert(io.open(path, "r"))
  local classes, order, by_var = {}, {}, {}
  local doc, tags = {}, {}
  local current_class, current_alias
  local function new_class(name, kind)
    local c = { name = name, kind = kind, text = table.concat(doc, " "), fields = {}, functions = {}, items = {} }
    classes[name] = c
    order[#order + 1] = c
    return c
  end
  for line in f:lines() do
    local body = line:match("^%-%-%-(.*)$")
    if body then
      local tag, rest = body:match("^@(%w+)%s*(.*)$")
      if body:match("^|") then
        local value, comment = body:match('^|%s*(%b"")%s*#?%s*(.*)$')
        if current_alias and value then
          local args, text = comment:match("^(%b())%s*:?%s*(.*)$")
          current_alias.items[#current_alias.items + 1] = { value = value:sub(2, -2), args = args, text = text or comment }
        end
      elseif tag == "meta" then
        doc = {}
      elseif tag == "class" then
        current_class = new_class(trim(rest:match("^([%w_.]+)")), "class")
        current_alias = nil
        doc = {}
      elseif tag == "alias" then
        current_alias = new_class(trim(rest:match("^([%w_.]+)")), "alias")
        current_class = nil
        doc = {}
      elseif tag == "field" and current_class then
        local name, rest2 = rest:match("^([%w_]+%??)%s+(.*)$")
        local ty, text = split_type(rest2)
        current_class.fields[#current_class.fields + 1] = { name = name, type = ty, text = text }
      elseif tag == "param" or tag == "return" then
        tags[#tags + 1] = { tag = tag, rest = rest }
      elseif not tag then
        doc[#doc + 1] = trim(body)
      end
    else
      local var = line:match("^local ([%w_]+) = {}")
      if var and current_class then
        by_var[var] = current_class
        current_class.var = var
      end
      local owner, sep, fname, params = line:match("^function ([%w_]+)([.:])([%w_]+)%((.-)%)")
      if owner then
        local c = assert(by_var[owner], "function of an unbound variable: " .. line)
        local fn = { name = fname, method = sep == ":", text = table.concat(doc, " "), params = {}, returns = {} }
        local declared = {}
        for _, t in ipairs(tags) do
          if t.tag == "param" then
            local name, rest2 = t.rest:match("^([%w_.]+%??)%s+(.*)$")
            local ty, text = split_type(rest2)
            fn.params[#fn.params + 1] = { name = name, type = ty, text = text }
            declared[name:gsub("%?$", "")] = true
          else
            local ty, text = split_type(t.rest)
            text = text:gsub("^#%s*", "")
            fn.returns[#fn.returns + 1] = { type = ty, text = text }
          end
        end
        for p in params:gmatch("[%w_.]+") do
          if not declared[p] then error(("%s%s%s: parameter %s has no @param"):format(owner, sep, fname, p)) end
        end
        c.functions[#c.functions + 1] = fn
        current_class = nil
      end
      -- other code ends the class block (blank lines and its own `local X = {}` do not)
      if not line:match("^%s*$") and not var then current_class = nil end
      if not line:match("^%-%-") then current_alias = nil end
      doc, tags = {}, {}
    end
  end
  f:close()
  return order
end

-- A | inside a table cell, code spans included, must be escaped (GFM).
local function cell(s) return ((s or ""):gsub("|", "\\|")) end
local function code(s) return "`" .. cell((s:gsub("`", ""))) .. "`" end

local function anchor(name) return (name:lower():gsub("[^%w]+", "")) end

local function render(order)
  local out = {}
  local function w(s) out[#out + 1] = s or "" end
  w("# Reference")
  w()
  w("Every public function, method, event and object field of `require \"layer\"`.")
  w("Generated from the annotations in `lua/layer/meta.lua` (which editors with LuaLS read too)")
  w("by `scripts/gen-reference.lua` (`make reference`); do not edit by hand. The guide is")
  w("[client.md](client.md); the data plane is in the [README](../README.md).")
  w()
  local names = {}
  for _, c in ipairs(order) do names[#names + 1] = ("[%s](#%s)"):format(c.name, anchor(c.name)) end
  w(table.concat(names, " · "))
  for _, c in ipairs(order) do
    w()
    w("## " .. c.name)
    w()
    if c.text ~= "" then
      w(c.text)
      w()
    end
    if c.kind == "alias" then
      w("| name | handler arguments | |")
      w("|---|---|---|")
      for _, it in ipairs(c.items) do
        w(("| %s | %s | %s |"):format(code(it.value), it.args and code(it.args) or "", cell(it.text)))
      end
    end
    if #c.fields > 0 then
      w("| field | type | |")
      w("|---|---|---|")
      for _, fl in ipairs(c.fields) do
        w(("| %s | %s | %s |"):format(code(fl.name), code(fl.type), cell(fl.text)))
      end
      if #c.functions > 0 then w() end
    end
    if #c.functions > 0 then
      w("| function | returns | |")
      w("|---|---|---|")
      for _, fn in ipairs(c.functions) do
        local ps = {}
        for _, p in ipairs(fn.params) do ps[#ps + 1] = p.name end
        local prefix = fn.method and (c.var .. ":") or (c.name .. ".")
        local sig = prefix .. fn.name .. "(" .. table.concat(ps, ", ") .. ")"
        local rs = {}
        for _, r in ipairs(fn.returns) do rs[#rs + 1] = code(r.type) end
        local text = { cell(fn.text) }
        for _, p in ipairs(fn.params) do
          text[#text + 1] = ("%s: %s%s"):format(code(p.name), code(p.type), p.text ~= "" and (" " .. cell(p.text)) or "")
        end
        for i, r in ipairs(fn.returns) do
          if r.text ~= "" then text[#text + 1] = ("returns %d: %s"):format(i, cell(r.text)) end
        end
        w(("| %s | %s | %s |"):format(code(sig), table.concat(rs, ", "), table.concat(text, "<br>")))
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

local text = render(parse(META))
if OUT == "-" then
  io.write(text)
else
  local f = assert(io.open(OUT, "w"))
  f:write(text)
  f:close()
end
