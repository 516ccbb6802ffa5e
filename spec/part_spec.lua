-- layer.part: a Part's download.
local manual = require "support.manual_client"
local part = require "layer.part"

describe("layer.part", function()
  it("gives an inline part's body back", function()
    local h = manual.new()
    local msg = h.message()
    local got
    msg.parts[1]:download(function(data) got = data end)
    h.step()
    assert.equal("hello", got)
    assert.equal("function", type(part.methods(h.client).download))
    h.client:close()
  end)

  it("refuses rich content without a usable URL with a typed error", function()
    local h = manual.new()
    local msg = h.message({ { mime_type = "image/png", content = { id = "c1", size = 3 } } })
    local got
    msg.parts[1]:download(function(data, err) got = { data, err } end)
    h.step()
    assert.is_nil(got[1])
    assert.equal("invalid_response", got[2].id)
    h.client:close()
  end)
end)
