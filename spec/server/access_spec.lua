-- spec/server/access_spec.lua - layer-server rich content access: content belongs to its uploader until it is
-- attached to a message, then to the conversations of the messages that carry it; anyone else is answered as
-- for an unknown id, over REST and WebSocket, and across a restart.
local L = require("support.layer_server")

local function uuid_of(id) return id:match("([%x%-]+)$") end

describe("layer-server content access", function()
  local srv, ta, tb, tc, tm
  setup(function()
    srv = L.start()
    ta, tb, tc, tm = srv:session("alice"), srv:session("bob"), srv:session("carol"), srv:session("mallory")
  end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  local function conv(token, others)
    local st, _, body, j = srv:request { method = "POST", path = "/conversations", token = token,
      body = { participants = others, distinct = false } }
    assert(st == 201, "conversation create failed: " .. tostring(body))
    return j.id
  end
  -- Uploads data as token's user; returns the content id.
  local function upload(token, data)
    local st, _, _, c = srv:request { method = "POST", path = "/content", token = token,
      headers = { ["Upload-Content-Type"] = "text/plain", ["Upload-Content-Length"] = tostring(#data) } }
    assert.equal(201, st)
    local up = c.upload_url:gsub("^http://[^/]+", "")
    assert.equal(200, (srv:request { method = "PUT", path = up, accept = false, content_type = "text/plain", body = data }))
    return c.id
  end
  local function post_parts(token, cid, parts)
    return srv:request { method = "POST", path = "/conversations/" .. uuid_of(cid) .. "/messages", token = token,
      body = { parts = parts } }
  end
  local function attach(token, cid, content_id)
    return post_parts(token, cid, { { mime_type = "text/plain", content = { id = content_id, size = 1 } } })
  end
  local function refresh(token, content_id)
    return srv:request { path = "/content/" .. uuid_of(content_id), token = token }
  end
  local function download(url)
    local st, _, body = srv:request { path = url:gsub("^http://[^/]+", ""), accept = false }
    return st, body
  end
  -- The error a user gets for a content id nobody ever uploaded, to compare refusals with.
  local function unknown_attach_error(token, cid)
    local st, _, _, j = attach(token, cid, "layer:///content/" .. L.uuid())
    assert.equal(422, st)
    return j
  end

  it("refuses someone else's attached content by its id, over REST and WebSocket, like an unknown id", function()
    local secret = "alice and bob only"
    local c_ab = conv(ta, { "bob" })
    local x = upload(ta, secret)
    local st, _, _, m = attach(ta, c_ab, x)
    assert.equal(201, st)
    assert.equal(x, m.parts[1].content.id)

    local c_mine = conv(tm, { "carol" })
    local unknown = unknown_attach_error(tm, c_mine)
    local st2, _, _, j = attach(tm, c_mine, x)
    assert.equal(422, st2)
    assert.same({ unknown.id, unknown.code, unknown.message }, { j.id, j.code, j.message })
    assert.equal("invalid_property", j.id)

    local w = assert(srv:ws(tm))
    local r = w:request("Message.create", { parts = { { mime_type = "text/plain", content = { id = x, size = 1 } } } }, c_mine)
    assert.is_false(r.body.success)
    assert.same({ unknown.id, unknown.code, unknown.message }, { r.body.data.id, r.body.data.code, r.body.data.message })
    w:close()

    -- nothing mallory or carol can read carries a download url for it
    local _, _, raw = srv:request { path = "/conversations/" .. uuid_of(c_mine) .. "/messages", token = tc }
    assert.falsy(raw:find(uuid_of(x), 1, true))
  end)

  it("does not grant access to content whose id appears in a text body", function()
    local c_ab = conv(ta, { "bob" })
    local x = upload(ta, "private bytes")
    assert.equal(201, (attach(ta, c_ab, x)))
    local c_mine = conv(tm, { "carol" })
    assert.equal(201, (post_parts(tm, c_mine, { { mime_type = "text/plain", body = "see " .. x } })))
    local st, _, _, j = refresh(tm, x)
    local st_unknown, _, _, ju = refresh(tm, "layer:///content/" .. L.uuid())
    assert.equal(404, st)
    assert.same({ st_unknown, ju.id, ju.code, ju.message }, { st, j.id, j.code, j.message })
    assert.equal(404, (refresh(tc, x)))
  end)

  it("lets only the uploader see and attach content that is not attached yet", function()
    local x = upload(ta, "draft")
    assert.equal(200, (refresh(ta, x)))
    assert.equal(404, (refresh(tb, x)))
    local c_b = conv(tb, { "carol" })
    local unknown = unknown_attach_error(tb, c_b)
    local st, _, _, j = attach(tb, c_b, x)
    assert.equal(422, st)
    assert.equal(unknown.message, j.message)
  end)

  it("gives attached content to the conversation: members may fetch and forward it, the uploader who left may not", function()
    local data = "shared with the conversation"
    local c_ab = conv(ta, { "bob" })
    local x = upload(ta, data)
    assert.equal(201, (attach(ta, c_ab, x)))
    local st, _, _, fresh = refresh(tb, x)
    assert.equal(200, st)
    local std, body = download(fresh.download_url)
    assert.equal(200, std)
    assert.equal(data, body)

    -- bob, a member though not the uploader, forwards it to carol
    local c_bc = conv(tb, { "carol" })
    local stf, _, _, m = attach(tb, c_bc, x)
    assert.equal(201, stf)
    local stc, _, _, fc = refresh(tc, x)
    assert.equal(200, stc)
    assert.equal(data, select(2, download(fc.download_url)))
    assert.truthy(m.parts[1].content.download_url)

    -- alice leaves c_ab: the content is the conversations', no longer hers
    assert.equal(204, (srv:request { method = "DELETE", path = "/conversations/" .. uuid_of(c_ab) .. "?mode=my_devices&leave=true", token = ta }))
    assert.equal(404, (refresh(ta, x)))
    local c_a = conv(ta, { "carol" })
    assert.equal(422, (attach(ta, c_a, x)))
    assert.equal(200, (refresh(tb, x)))
  end)

  it("takes access away with the last visible message that carries the content", function()
    local c_ab = conv(ta, { "bob" })
    local x = upload(ta, "short lived")
    local _, _, _, m = attach(ta, c_ab, x)
    assert.equal(200, (refresh(tb, x)))
    assert.equal(204, (srv:request { method = "DELETE", path = "/messages/" .. uuid_of(m.id) .. "?mode=all_participants", token = ta }))
    assert.equal(404, (refresh(tb, x)))
    assert.equal(404, (refresh(ta, x)))
  end)
end)

describe("layer-server content access across restarts", function()
  local srv, base, db
  setup(function()
    base = L.tmpname()
    db = base .. ".db"
  end)
  teardown(function()
    if srv then srv:stop() end
    os.remove(base)
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(db .. suffix) end
  end)

  it("keeps attachments, and rebuilds them for a database written before they were recorded", function()
    srv = L.start { db = db, log_level = "error" }
    local ta, tb = srv:session("alice"), srv:session("bob")
    local _, _, _, cv = srv:request { method = "POST", path = "/conversations", token = ta,
      body = { participants = { "bob" }, distinct = false } }
    local _, _, _, c = srv:request { method = "POST", path = "/content", token = ta,
      headers = { ["Upload-Content-Type"] = "text/plain", ["Upload-Content-Length"] = "3" } }
    srv:request { method = "PUT", path = c.upload_url:gsub("^http://[^/]+", ""), accept = false,
      content_type = "text/plain", body = "abc" }
    assert.equal(201, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(cv.id) .. "/messages", token = ta,
      body = { parts = { { mime_type = "text/plain", content = { id = c.id, size = 3 } } } } }))
    local path = "/content/" .. uuid_of(c.id)
    srv:stop()

    srv = L.start { db = db, log_level = "error" }
    assert.equal(200, (srv:request { path = path, token = tb }))
    srv:stop()

    -- as an older server left it: no record of which messages carry which content
    local dropped = os.execute("sqlite3 '" .. db .. "' 'DROP TABLE IF EXISTS content_refs'")
    assert.is_true(dropped == true or dropped == 0, "the sqlite3 tool failed") -- 5.1 returns 0
    srv = L.start { db = db, log_level = "error" }
    assert.equal(200, (srv:request { path = path, token = tb }))
    assert.equal(404, (srv:request { path = path, token = srv:session("mallory") }))
    srv:stop_checked()
    srv = nil
  end)
end)
