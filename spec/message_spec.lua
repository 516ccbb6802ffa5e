-- layer.message: the client's message(id) and a Message's methods.
local message = require "layer.message"
local manual = require "support.manual_client"

describe("layer.message", function()
  it("gives layer.client message(id), the same function", function()
    local h = manual.new()
    assert.equal(message.client_methods.message, h.client.message)
    h.client:close()
  end)

  it("returns a cached message at once", function()
    local h = manual.new()
    local msg = h.message()
    assert.equal(msg, h.client:message(manual.MSG))
    h.client:close()
  end)

  it("joins the text parts", function()
    local h = manual.new()
    local msg = h.message({ { body = "a", mime_type = "text/plain" }, { body = "x", mime_type = "image/png" },
      { body = "b", mime_type = "text/markdown" } })
    assert.equal("a\nb", msg:text())
    h.client:close()
  end)

  it("posts receipts and deletes with a mode", function()
    local h = manual.new()
    local msg = h.message()
    msg:mark_read(function() end)
    local req = h.take_http()
    assert.same({ "POST", "/messages/00000000-0000-4000-8000-000000000001/receipts", '{"type":"read"}' },
      { req.method, req.path, req.body })
    msg:delete({ mode = "my_devices" }, function() end)
    req = h.take_http()
    assert.same({ "DELETE", "/messages/00000000-0000-4000-8000-000000000001?mode=my_devices" },
      { req.method, req.path })
    h.client:close()
  end)
end)
