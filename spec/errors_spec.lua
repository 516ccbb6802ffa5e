-- layer.errors: the typed error values (ids, retryability, how they print).
local errors = require "layer.errors"

describe("layer.errors", function()
  it("keeps Layer's error JSON fields and the HTTP status", function()
    local e = errors.make_error({ id = "not_found", code = 102, message = "no such thing", url = "u",
      data = { x = 1 } }, 404)
    assert.same({ "not_found", 102, "no such thing", "u", 404, false },
      { e.id, e.code, e.message, e.url, e.http_status, e.retryable })
    assert.is_true(errors.is_error(e))
    assert.is_false(errors.is_error({ id = "not_found" }))
  end)

  it("names errors without a body by where they came from", function()
    assert.equal("http_error", errors.make_error(nil, 418).id)
    local t = errors.make_error(nil, 0, "connection refused")
    assert.same({ "transport_error", nil, "connection refused", true }, { t.id, t.http_status, t.message, t.retryable })
  end)

  it("marks overload and server failures retryable and reads retry_after", function()
    assert.is_true(errors.make_error({ id = "x" }, 503).retryable)
    assert.is_true(errors.make_error({ id = "x" }, 429).retryable)
    assert.is_true(errors.make_error({ id = "rate_limit_exceeded" }, 400).retryable)
    assert.equal(7, errors.make_error({ id = "x", data = { retry_after = "7" } }, 429).retry_after)
  end)

  it("prints and concatenates as its message", function()
    local e = errors.make_error({ id = "not_found", message = "gone" }, 404)
    assert.equal("layer error not_found (HTTP 404): gone", tostring(e))
    assert.equal("failed: layer error not_found (HTTP 404): gone", "failed: " .. e)
  end)

  it("is the Error that layer.client exports", function()
    assert.equal(errors.Error, require("layer.client").Error)
    assert.is_true(require("layer").is_error(errors.make_error(nil, 500)))
  end)
end)
