-- layer.scheduler: the emitter (on / once / off) and the coroutines handlers run on.
local layer = require "layer"
local scheduler = require "layer.scheduler"

local function manual_client()
  return layer.client{ transport = "manual", session_token = "t", app_id = "layer:///apps/staging/test" }
end

describe("layer.scheduler", function()
  it("gives layer.client its methods, the same functions", function()
    local client = manual_client()
    for _, name in ipairs({ "on", "once", "off", "spawn", "_emit", "_run", "_resume" }) do
      assert.equal(scheduler.methods[name], client[name])
    end
    client:close()
  end)

  it("refuses event names it never emits", function()
    local client = manual_client()
    local ok, err = pcall(client.on, client, "mesage", function() end)
    assert.is_false(ok)
    assert.matches('unknown event "mesage"', err, 1, true)
    client:close()
  end)

  it("runs handlers on pooled coroutines, once handlers once, and off during dispatch", function()
    local client = manual_client()
    local seen, threads = {}, {}
    local function second(_, text) seen[#seen + 1] = "second " .. text end
    client:on("log", function(_, text)
      threads[#threads + 1] = scheduler.running_coroutine()
      seen[#seen + 1] = "first " .. text
      client:off("log", second)
    end)
    client:on("log", second)
    client:once("log", function(_, text) seen[#seen + 1] = "once " .. text end)
    client:_emit("log", "info", "a")
    client:_emit("log", "info", "b")
    assert.same({ "first a", "once a", "first b" }, seen)
    assert.is_not_nil(threads[1])
    assert.equal(threads[1], threads[2]) -- the first handler's coroutine came back to the pool
    assert.is_nil(scheduler.running_coroutine()) -- on the main thread
    client:close()
  end)

  it("passes more than four spawn arguments through", function()
    local client = manual_client()
    local got
    client:spawn(function(...) got = { ... } end, 1, 2, 3, 4, 5, 6)
    assert.same({ 1, 2, 3, 4, 5, 6 }, got)
    client:close()
  end)

  it("hands a handler's error to error handlers as a typed error", function()
    local client = manual_client()
    local got
    client:on("error", function(err) got = err end)
    client:spawn(function() error("boom", 0) end)
    assert.equal("handler_error", got.id)
    assert.matches("boom", got.message, 1, true)
    client:close()
  end)

  it("yields WAIT while a request is out", function()
    assert.equal("layer: waiting for a response", tostring(scheduler.WAIT))
  end)
end)
