-- layer.announcement: the client's announcements list and an Announcement's methods.
local announcement = require "layer.announcement"
local manual = require "support.manual_client"

local A = "layer:///announcements/00000000-0000-4000-8000-00000000000a"

describe("layer.announcement", function()
  it("lists announcements as cached objects", function()
    local h = manual.new()
    assert.equal(announcement.client_methods.announcements, h.client.announcements)
    local got
    h.client:announcements(function(list) got = list end)
    h.respond(h.take_http(), 200, { { id = A, position = 1, parts = {} } })
    h.step()
    assert.equal(1, #got)
    assert.equal(A, got[1].id)
    got[1]:mark_read(function() end)
    local req = h.take_http()
    assert.same({ "POST", "/announcements/00000000-0000-4000-8000-00000000000a/receipts" }, { req.method, req.path })
    got[1]:delete(function() end)
    req = h.take_http()
    assert.same({ "DELETE", "/announcements/00000000-0000-4000-8000-00000000000a" }, { req.method, req.path })
    h.client:close()
  end)
end)
