-- spec/server/rest_spec.lua - layer-server REST endpoints: conversations, messages, paging, patches, deletes, receipts, identities, announcements, rich content.
local L = require("support.layer_server")

local function uuid_of(id) return id:match("([%x%-]+)$") end

describe("layer-server REST", function()
  local srv, ta, tb, tc
  setup(function()
    srv = L.start()
    ta, tb, tc = srv:session("alice"), srv:session("bob"), srv:session("carol")
  end)
  teardown(function()
    if srv then srv:stop_checked() end
  end)

  local function conv(token, body)
    local st, _, raw, j = srv:request { method = "POST", path = "/conversations", token = token, body = body }
    return st, j, raw
  end
  local function post_msg(token, cid, text, id)
    return srv:request { method = "POST", path = "/conversations/" .. uuid_of(cid) .. "/messages", token = token,
      body = { parts = { { mime_type = "text/plain", body = text } }, id = id } }
  end

  it("creates conversations with client ids, absolute urls and basic identities", function()
    local id = "layer:///conversations/" .. L.uuid()
    local st, j = conv(ta, { participants = { "bob" }, distinct = false, metadata = { title = "x" }, id = id })
    assert.equal(201, st)
    assert.equal(id, j.id)
    assert.equal(srv.base .. "/conversations/" .. uuid_of(id), j.url)
    assert.equal(2, #j.participants)
    for _, p in ipairs(j.participants) do
      assert.truthy(p.id and p.user_id and p.url)
      assert.is_nil(p.metadata)
    end
    assert.equal("x", j.metadata.title)
    assert.equal(0, j.unread_message_count)
    assert.equal(L.null, j.last_message)
    local st2, j2 = conv(ta, { participants = { "bob" }, distinct = false, id = id })
    assert.equal(409, st2)
    assert.equal("id_in_use", j2.id)
    assert.equal(id, j2.data.id)
    local st3, j3 = conv(ta, { distinct = false })
    assert.equal(422, st3)
    assert.equal("missing_property", j3.id)
    local st4, j4 = conv(ta, { participants = { "../etc" } })
    assert.equal(422, st4)
    assert.equal("invalid_property", j4.id)
    local many = {}
    for i = 1, 25 do many[i] = "user" .. i end
    assert.equal(422, (conv(ta, { participants = many, distinct = false })))
  end)

  it("returns the existing distinct conversation, or 409 conflict when metadata differs", function()
    local st, a = conv(ta, { participants = { "carol" }, distinct = true, metadata = { k = "v" } })
    assert.equal(201, st)
    local st2, b = conv(tc, { participants = { "alice" }, distinct = true })
    assert.equal(200, st2)
    assert.equal(a.id, b.id)
    local st3, c = conv(tc, { participants = { "alice" }, distinct = true, metadata = { k = "v" } })
    assert.equal(200, st3)
    assert.equal(a.id, c.id)
    local st4, d = conv(tc, { participants = { "alice" }, distinct = true, metadata = { k = "other" } })
    assert.equal(409, st4)
    assert.equal("conflict", d.id)
    assert.equal(a.id, d.data.id)
  end)

  it("hides other users' conversations and messages (404, no leak)", function()
    local _, c = conv(ta, { participants = { "bob" }, distinct = false })
    local _, _, _, m = post_msg(ta, c.id, "secret")
    local u = uuid_of(c.id)
    local checks = {
      { "GET", "/conversations/" .. u }, { "GET", "/conversations/" .. u .. "/messages" },
      { "DELETE", "/conversations/" .. u .. "?mode=all_participants" },
      { "GET", "/messages/" .. uuid_of(m.id) }, { "DELETE", "/messages/" .. uuid_of(m.id) .. "?mode=all_participants" },
    }
    for _, ch in ipairs(checks) do
      local st, _, _, j = srv:request { method = ch[1], path = ch[2], token = tc }
      assert.equal(404, st, ch[1] .. " " .. ch[2])
      assert.equal("not_found", j.id)
    end
    local st, _, _, j = srv:request { method = "PATCH", path = "/conversations/" .. u, token = tc,
      content_type = "application/vnd.layer-patch+json", body = '[{"operation":"set","property":"metadata.a","value":"b"}]' }
    assert.equal(404, st)
    assert.equal("not_found", j.id)
    assert.equal(404, (post_msg(tc, c.id, "intruder")))
    assert.equal(404, (srv:request { method = "POST", path = "/messages/" .. uuid_of(m.id) .. "/receipts", token = tc, body = { type = "read" } }))
    -- a random unknown id looks exactly the same
    local st2, _, _, j2 = srv:request { path = "/conversations/" .. L.uuid(), token = tc }
    assert.equal(404, st2)
    assert.equal(j.id, j2.id)
  end)

  it("pages conversations newest first with Layer-Count and from_id", function()
    local td = srv:session("dora")
    local ids = {}
    for i = 1, 5 do
      local _, c = conv(td, { participants = { "p" .. i }, distinct = false })
      ids[i] = c.id
      L.sleep(0.002)
    end
    local st, h, _, page = srv:request { path = "/conversations?page_size=2", token = td }
    assert.equal(200, st)
    assert.equal("5", h["layer-count"])
    assert.same({ ids[5], ids[4] }, { page[1].id, page[2].id })
    local _, _, _, page2 = srv:request { path = "/conversations?page_size=2&from_id=" .. page[2].id, token = td }
    assert.same({ ids[3], ids[2] }, { page2[1].id, page2[2].id })
    local _, _, _, page3 = srv:request { path = "/conversations?page_size=100&from_id=" .. uuid_of(page2[2].id), token = td }
    assert.same({ ids[1] }, { page3[1].id })
    -- last_message order: a message moves a conversation to the top
    post_msg(td, ids[2], "bump")
    local _, _, _, byl = srv:request { path = "/conversations?sort_by=last_message&page_size=1", token = td }
    assert.equal(ids[2], byl[1].id)
    assert.equal(422, (srv:request { path = "/conversations?page_size=abc", token = td }))
    assert.equal(422, (srv:request { path = "/conversations?sort_by=name", token = td }))
    assert.equal(422, (srv:request { path = "/conversations?from_id=../x", token = td }))
  end)

  it("posts messages (201, positions rising, id_in_use dedup) and pages them newest first", function()
    local _, c = conv(ta, { participants = { "bob" }, distinct = false })
    local mids = {}
    for i = 1, 4 do
      local id = "layer:///messages/" .. L.uuid()
      local st, _, _, m = post_msg(ta, c.id, "m" .. i, id)
      assert.equal(201, st)
      assert.equal(id, m.id)
      assert.equal(i, m.position)
      assert.equal(c.id, m.conversation.id)
      mids[i] = id
    end
    local st, _, _, dup = post_msg(ta, c.id, "m1", mids[1])
    assert.equal(409, st)
    assert.equal("id_in_use", dup.id)
    assert.equal(111, dup.code)
    assert.equal(mids[1], dup.data.id)
    local st2, h, _, page = srv:request { path = "/conversations/" .. uuid_of(c.id) .. "/messages?page_size=3", token = tb }
    assert.equal(200, st2)
    assert.equal("4", h["layer-count"])
    assert.same({ mids[4], mids[3], mids[2] }, { page[1].id, page[2].id, page[3].id })
    assert.is_true(page[1].is_unread)
    local _, _, _, rest = srv:request { path = "/conversations/" .. uuid_of(c.id) .. "/messages?from_id=" .. mids[2], token = tb }
    assert.same({ mids[1] }, { rest[1].id })
    local _, _, _, cv = srv:request { path = "/conversations/" .. uuid_of(c.id), token = tb }
    assert.equal(4, cv.unread_message_count)
    assert.equal(mids[4], cv.last_message.id)
    -- a part over 2048 characters needs rich content
    local big = string.rep("x", 2049)
    local st3, _, _, e = post_msg(ta, c.id, big)
    assert.equal(422, st3)
    assert.equal("invalid_property", e.id)
    assert.equal(422, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(c.id) .. "/messages", token = ta, body = { parts = {} } }))
    assert.equal(422, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(c.id) .. "/messages", token = ta, body = { id = "x" } }))
    -- GET one message
    local st4, _, _, one = srv:request { path = "/messages/" .. uuid_of(mids[2]), token = tb }
    assert.equal(200, st4)
    assert.equal("m2", one.parts[1].body)
  end)

  it("patches metadata and participants with Layer-Patch and pushes the change", function()
    local _, c = conv(ta, { participants = { "bob" }, distinct = false, metadata = { a = { b = "1" } } })
    local wb = assert(srv:ws(tb, { protocol = "layer-3.0" }))
    local wc = assert(srv:ws(tc))
    local u = uuid_of(c.id)
    local ops = '[{"operation":"set","property":"metadata.a.b","value":"2"},{"operation":"set","property":"metadata.title","value":"T"},'
      .. '{"operation":"add","property":"participants","id":"layer:///identities/carol"}]'
    local st = srv:request { method = "PATCH", path = "/conversations/" .. u, token = ta,
      content_type = "application/vnd.layer-patch+json", body = ops }
    assert.equal(204, st)
    local p = assert(wb:change(c.id, "patch"))
    assert.equal("metadata.a.b", p.body.data[1].property)
    assert.equal("add", p.body.data[3].operation)
    assert.equal("layer:///identities/carol", p.body.data[3].value.id)
    local cr = assert(wc:change(c.id, "create"))
    assert.equal(3, #cr.body.data.participants)
    local _, _, _, cv = srv:request { path = "/conversations/" .. u, token = tc }
    assert.same({ a = { b = "2" }, title = "T" }, cv.metadata)
    -- atomic: one bad op and nothing changes
    local st2, _, _, e = srv:request { method = "PATCH", path = "/conversations/" .. u, token = ta,
      content_type = "application/vnd.layer-patch+json",
      body = '[{"operation":"set","property":"metadata.title","value":"NO"},{"operation":"bogus","property":"metadata.x"}]' }
    assert.equal(422, st2)
    assert.equal("invalid_property", e.id)
    local _, _, _, cv2 = srv:request { path = "/conversations/" .. u, token = ta }
    assert.equal("T", cv2.metadata.title)
    assert.equal(422, (srv:request { method = "PATCH", path = "/conversations/" .. u, token = ta,
      content_type = "application/vnd.layer-patch+json", body = '[{"operation":"set","property":"created_at","value":"x"}]' }))
    assert.equal(415, (srv:request { method = "PATCH", path = "/conversations/" .. u, token = ta, body = "[]" }))
    -- removing carol: she gets a delete, the others a patch
    srv:request { method = "PATCH", path = "/conversations/" .. u, token = ta, content_type = "application/vnd.layer-patch+json",
      body = '[{"operation":"remove","property":"participants","id":"layer:///identities/carol"}]' }
    local del = assert(wc:change(c.id, "delete"))
    assert.equal("my_devices", del.body.data.mode)
    assert.equal(404, (srv:request { path = "/conversations/" .. u, token = tc }))
    wb:close(); wc:close()
  end)

  it("deletes messages for all participants or my devices", function()
    local _, c = conv(ta, { participants = { "bob" }, distinct = false })
    local _, _, _, m1 = post_msg(ta, c.id, "one")
    local _, _, _, m2 = post_msg(ta, c.id, "two")
    local wa, wb = assert(srv:ws(ta)), assert(srv:ws(tb))
    assert.equal(422, (srv:request { method = "DELETE", path = "/messages/" .. uuid_of(m2.id), token = ta }))
    assert.equal(422, (srv:request { method = "DELETE", path = "/messages/" .. uuid_of(m2.id) .. "?mode=everyone", token = ta }))
    assert.equal(204, (srv:request { method = "DELETE", path = "/messages/" .. uuid_of(m2.id) .. "?mode=all_participants", token = ta }))
    for _, w in ipairs { wa, wb } do
      local d = assert(w:change(m2.id, "delete"))
      assert.equal("all_participants", d.body.data.mode)
      local p = assert(w:change(c.id, "patch"))
      assert.equal("last_message", p.body.data[1].property)
      assert.equal(m1.id, p.body.data[1].id)
    end
    assert.equal(404, (srv:request { path = "/messages/" .. uuid_of(m2.id), token = tb }))
    -- repeated delete: not_found (the SDK treats that as done)
    assert.equal(404, (srv:request { method = "DELETE", path = "/messages/" .. uuid_of(m2.id) .. "?mode=all_participants", token = ta }))
    assert.equal(204, (srv:request { method = "DELETE", path = "/messages/" .. uuid_of(m1.id) .. "?mode=my_devices", token = tb }))
    assert.equal("my_devices", assert(wb:change(m1.id, "delete")).body.data.mode)
    assert.equal(404, (srv:request { path = "/messages/" .. uuid_of(m1.id), token = tb }))
    assert.equal(200, (srv:request { path = "/messages/" .. uuid_of(m1.id), token = ta }))
    wa:close(); wb:close()
  end)

  it("deletes conversations: my_devices with from_position, leave, all_participants", function()
    local _, c = conv(ta, { participants = { "bob", "carol" }, distinct = false })
    post_msg(ta, c.id, "one")
    post_msg(ta, c.id, "two")
    local u = uuid_of(c.id)
    local wa, wb, wc = assert(srv:ws(ta)), assert(srv:ws(tb)), assert(srv:ws(tc))
    assert.equal(204, (srv:request { method = "DELETE", path = "/conversations/" .. u .. "?mode=my_devices&leave=false", token = tb }))
    local d = assert(wb:change(c.id, "delete"))
    assert.equal("my_devices", d.body.data.mode)
    assert.equal(2, d.body.data.from_position)
    local _, h = srv:request { path = "/conversations/" .. u .. "/messages", token = tb }
    assert.equal("0", h["layer-count"])
    local _, h2 = srv:request { path = "/conversations/" .. u .. "/messages", token = ta }
    assert.equal("2", h2["layer-count"])
    post_msg(ta, c.id, "three")
    local _, h3 = srv:request { path = "/conversations/" .. u .. "/messages", token = tb }
    assert.equal("1", h3["layer-count"])
    -- carol leaves
    assert.equal(204, (srv:request { method = "DELETE", path = "/conversations/" .. u .. "?mode=my_devices&leave=true", token = tc }))
    local lv = assert(wc:change(c.id, "delete"))
    assert.equal(L.null, lv.body.data.from_position)
    local rp = assert(wa:wait(function(p) return p.type == "change" and p.body.object.id == c.id and p.body.operation == "patch"
      and p.body.data[1].operation == "remove" end))
    assert.equal("layer:///identities/carol", rp.body.data[1].id)
    assert.equal(404, (srv:request { path = "/conversations/" .. u, token = tc }))
    -- all participants
    assert.equal(204, (srv:request { method = "DELETE", path = "/conversations/" .. u .. "?mode=all_participants", token = ta }))
    for _, w in ipairs { wa, wb } do
      assert.equal("all_participants", assert(w:change(c.id, "delete")).body.data.mode)
    end
    assert.equal(404, (srv:request { path = "/conversations/" .. u, token = ta }))
    wa:close(); wb:close(); wc:close()
  end)

  it("marks all read with an operation packet and unread_message_count patch", function()
    local _, c = conv(ta, { participants = { "bob" }, distinct = false })
    for i = 1, 3 do post_msg(ta, c.id, "m" .. i) end
    local wa, wb = assert(srv:ws(ta)), assert(srv:ws(tb))
    assert.equal(204, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(c.id) .. "/mark_all_read", token = tb, body = { position = 2 } }))
    for _, w in ipairs { wa, wb } do
      local op = assert(w:wait(function(p) return p.type == "operation" end))
      assert.equal("Conversation.mark_all_read", op.body.method)
      assert.equal(c.id, op.body.object.id)
      assert.equal(2, op.body.data.position)
      assert.equal("layer:///identities/bob", op.body.data.identity.id)
    end
    local un = assert(wb:change(c.id, "patch"))
    assert.equal("unread_message_count", un.body.data[1].property)
    assert.equal(1, un.body.data[1].value)
    assert.equal(204, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(c.id) .. "/mark_all_read", token = tb, body = "" }))
    local _, _, _, cv = srv:request { path = "/conversations/" .. uuid_of(c.id), token = tb }
    assert.equal(0, cv.unread_message_count)
    assert.equal(422, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(c.id) .. "/mark_all_read", token = tb, body = { position = "x" } }))
    wa:close(); wb:close()
  end)

  it("validates receipt bodies", function()
    local _, c = conv(ta, { participants = { "bob" }, distinct = false })
    local _, _, _, m = post_msg(ta, c.id, "x")
    local path = "/messages/" .. uuid_of(m.id) .. "/receipts"
    assert.equal(422, (srv:request { method = "POST", path = path, token = tb, body = { type = "seen" } }))
    assert.equal(422, (srv:request { method = "POST", path = path, token = tb, body = {} }))
    assert.equal(204, (srv:request { method = "POST", path = path, token = tb, body = { type = "delivery" } }))
    local _, _, _, got = srv:request { path = "/messages/" .. uuid_of(m.id), token = ta }
    assert.equal("delivered", got.recipient_status["layer:///identities/bob"])
  end)

  it("serves identities and following", function()
    assert.equal(201, (srv:admin("identities", { user_id = "zed", display_name = "Zed", first_name = "Z", metadata = { team = "x" } })))
    local st, _, _, z = srv:request { path = "/identities/zed", token = ta }
    assert.equal(200, st)
    assert.equal("Zed", z.display_name)
    assert.equal("Z", z.first_name)
    assert.equal("x", z.metadata.team)
    assert.equal(404, (srv:request { path = "/identities/nobody-here", token = ta }))
    local w = assert(srv:ws(ta))
    assert.equal(204, (srv:request { method = "PUT", path = "/following/users/zed", token = ta }))
    local cr = assert(w:change("layer:///identities/zed", "create"))
    assert.equal("Identity", cr.body.object.type)
    local _, h, _, list = srv:request { path = "/identities", token = ta }
    assert.equal("1", h["layer-count"])
    assert.equal("zed", list[1].user_id)
    assert.equal(204, (srv:request { method = "DELETE", path = "/following/users/zed", token = ta }))
    local del = assert(w:change("layer:///identities/zed", "delete"))
    assert.equal(L.null, del.body.data)
    local _, h2 = srv:request { path = "/identities", token = ta }
    assert.equal("0", h2["layer-count"])
    w:close()
  end)

  it("serves announcements with receipts and deletes", function()
    local w = assert(srv:ws(tb))
    local st, _, _, a = srv:admin("announcements", { recipients = { "bob", "carol" }, sender_name = "Ops",
      parts = { { mime_type = "text/plain", body = "maintenance" } } })
    assert.equal(201, st)
    local cr = assert(w:change(a.id, "create"))
    assert.equal("Announcement", cr.body.object.type)
    assert.equal("maintenance", cr.body.data.parts[1].body)
    assert.equal("Ops", cr.body.data.sender.name)
    assert.equal("Ops", cr.body.data.sender.display_name)
    local _, h, _, list = srv:request { path = "/announcements", token = tb }
    assert.equal("1", h["layer-count"])
    assert.equal(a.id, list[1].id)
    assert.is_true(list[1].is_unread)
    assert.equal(404, (srv:request { path = "/announcements/" .. uuid_of(a.id), token = ta }))
    assert.equal(204, (srv:request { method = "POST", path = "/announcements/" .. uuid_of(a.id) .. "/receipts", token = tb, body = { type = "read" } }))
    local read = assert(w:change(a.id, "patch"))
    assert.equal("read", read.body.data[1].value)
    assert.equal("is_unread", read.body.data[2].property) -- the reader's copy stops being unread
    assert.is_false(read.body.data[2].value)
    assert.equal(204, (srv:request { method = "DELETE", path = "/announcements/" .. uuid_of(a.id), token = tb }))
    assert.truthy(w:change(a.id, "delete"))
    assert.equal(404, (srv:request { path = "/announcements/" .. uuid_of(a.id), token = tb }))
    assert.equal(200, (srv:request { path = "/announcements/" .. uuid_of(a.id), token = tc }))
    w:close()
  end)

  it("handles rich content: upload, message part, download, refresh, expiry", function()
    local data = string.rep("0123456789", 500)
    local st, _, _, c = srv:request { method = "POST", path = "/content", token = ta,
      headers = { ["Upload-Content-Type"] = "text/plain", ["Upload-Content-Length"] = tostring(#data) } }
    assert.equal(201, st)
    assert.matches("^layer:///content/", c.id)
    local up = c.upload_url:gsub("^http://[^/]+", "")
    assert.equal(422, (srv:request { method = "POST", path = "/content", token = ta }))
    local stu = srv:request { method = "PUT", path = up, accept = false, content_type = "text/plain", body = data }
    assert.equal(200, stu)
    assert.equal(404, (srv:request { method = "PUT", path = up, accept = false, content_type = "text/plain", body = data }))
    local _, cv = conv(ta, { participants = { "bob" }, distinct = false })
    local stm, _, _, m = srv:request { method = "POST", path = "/conversations/" .. uuid_of(cv.id) .. "/messages", token = ta,
      body = { parts = { { mime_type = "text/plain", content = { id = c.id, size = #data } } } } }
    assert.equal(201, stm)
    local part = m.parts[1]
    assert.equal(#data, part.content.size)
    assert.equal(c.id, part.content.id)
    assert.truthy(part.content.expiration)
    local dl = part.content.download_url:gsub("^http://[^/]+", "")
    local std, _, body = srv:request { path = dl, accept = false }
    assert.equal(200, std)
    assert.equal(data, body)
    local tampered = dl:gsub("sig=(%x)", function(h) return "sig=" .. (h == "0" and "1" or "0") end)
    assert.equal(403, (srv:request { path = tampered, accept = false }))
    local expired = dl:gsub("expires=%d+", "expires=1")
    assert.equal(403, (srv:request { path = expired, accept = false }))
    local refresh = part.content.refresh_url:gsub("^http://[^/]+", "")
    local str, _, _, fresh = srv:request { path = refresh, token = tb }
    assert.equal(200, str)
    assert.truthy(fresh.download_url and fresh.expiration)
    assert.equal(404, (srv:request { path = refresh, token = tc }))
    -- content a user does not own cannot be attached
    assert.equal(422, (srv:request { method = "POST", path = "/conversations/" .. uuid_of(cv.id) .. "/messages", token = tb,
      body = { parts = { { mime_type = "text/plain", content = { id = "layer:///content/" .. L.uuid(), size = 1 } } } } }))
  end)

  it("accepts push token registrations and answers unknown endpoints and methods", function()
    assert.equal(204, (srv:request { method = "POST", path = "/push_tokens", token = ta, body = { token = "t", type = "gcm" } }))
    local st, _, _, j = srv:request { path = "/nothing/here", token = ta }
    assert.equal(404, st)
    assert.equal("invalid_endpoint", j.id)
    assert.equal(106, j.code)
    local st2, _, _, j2 = srv:request { method = "PUT", path = "/conversations", token = ta }
    assert.equal(405, st2)
    assert.equal("method_not_allowed", j2.id)
    assert.equal(109, j2.code)
    assert.equal(204, (srv:request { method = "HEAD", path = "/ping?client=3.4.18" }))
    assert.equal(204, (srv:request { method = "OPTIONS", path = "/conversations" }))
  end)
end)
