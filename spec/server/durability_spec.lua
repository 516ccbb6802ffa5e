-- spec/server/durability_spec.lua - kill -9 layer-server during steady traffic, restart on the same file: every acknowledged change is still there and replayable.
local L = require("support.layer_server")

describe("layer-server durability", function()
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

  it("keeps every acknowledged message and change across kill -9", function()
    srv = L.start { db = db, log_level = "error" }
    local ta, tb = srv:session("alice"), srv:session("bob")
    local wa = assert(srv:ws(ta))
    local r = wa:request("Conversation.create", { participants = { "bob" }, distinct = false, metadata = { n = "0" } })
    local cid = r.body.data.id
    local start_ts = r.timestamp
    -- steady traffic: pipelined socket creates, REST receipts and patches in between
    local acked, sent = {}, 0
    local rid_to_id = {}
    for i = 1, 150 do
      local id = "layer:///messages/" .. L.uuid()
      sent = sent + 1
      rid_to_id["d" .. i] = id
      wa:send_json { type = "request", body = { method = "Message.create", request_id = "d" .. i, object_id = cid,
        data = { id = id, parts = { { mime_type = "text/plain", body = "msg " .. i } } } } }
      if i % 10 == 0 then
        -- read what has been answered so far
        while true do
          local p = wa:wait(function(x) return x.type == "response" end, 0.05)
          if not p then break end
          if p.body.success then acked[#acked + 1] = rid_to_id[p.body.request_id] end
        end
        assert.equal(204, (srv:request { method = "PATCH", path = "/conversations/" .. cid:sub(24), token = ta,
          content_type = "application/vnd.layer-patch+json",
          body = '[{"operation":"set","property":"metadata.n","value":"' .. i .. '"}]' }))
        if #acked > 0 then
          assert.equal(204, (srv:request { method = "POST", path = "/messages/" .. acked[#acked]:sub(19) .. "/receipts",
            token = tb, body = { type = "read" } }))
        end
      end
    end
    -- a few more in flight, then the crash
    for i = 151, 160 do
      wa:send_json { type = "request", body = { method = "Message.create", request_id = "d" .. i, object_id = cid,
        data = { id = "layer:///messages/" .. L.uuid(), parts = { { mime_type = "text/plain", body = "late " .. i } } } } }
    end
    srv:kill9()
    assert.truthy(#acked >= 100, "acknowledged " .. #acked)

    srv = L.start { db = db, log_level = "error" }
    -- sessions survive too
    local st, h = srv:request { path = "/conversations/" .. cid:sub(24) .. "/messages?page_size=1", token = tb }
    assert.equal(200, st)
    assert.truthy(tonumber(h["layer-count"]) >= #acked)
    for _, id in ipairs(acked) do
      assert.equal(200, (srv:request { path = "/messages/" .. id:sub(19), token = tb }), id)
    end
    local _, _, _, cv = srv:request { path = "/conversations/" .. cid:sub(24), token = tb }
    assert.equal("150", cv.metadata.n)
    -- and bob can replay all of it from the event log
    local wb = assert(srv:ws(tb))
    wb:send_json { type = "request", body = { method = "Event.replay", request_id = "rp", data = { from_timestamp = start_ts } } }
    local created, patches = {}, 0
    while true do
      local p = assert(wb:receive(5))
      if p.type == "response" then assert.is_true(p.body.success) break end
      if p.body.operation == "create" and p.body.object.type == "Message" then created[p.body.object.id] = true end
      if p.body.operation == "patch" then patches = patches + 1 end
    end
    for _, id in ipairs(acked) do assert.is_true(created[id], id) end
    assert.truthy(patches >= #acked)
    -- positions keep rising after the restart
    local m = wb:request("Message.create", { parts = { { mime_type = "text/plain", body = "after" } } }, cid)
    assert.is_true(m.body.success)
    assert.truthy(m.body.data.position > #acked)
    wb:close()
    wa:close()
  end)
end)
