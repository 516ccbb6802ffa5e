-- layer.loop: one event loop for many clients in one process (bot farms,
-- OpenResty workers). The clients made with layer.client{ ..., loop = L }
-- share its epoll set, libwebsockets context and libcurl multi handle;
-- L:step(timeout) runs one I/O pass for all of them and then steps only the
-- clients that have work. L:pollfd()/events()/timeout() make the whole loop
-- pollable, as a single client is (docs/client.md, "Many clients on one loop").
local core = require "layer.core"

local Loop = {}
Loop.__index = Loop
Loop.__name = "layer.loop"

local function new()
  -- clients by transport id, weakly: a client nobody holds is collected as usual
  return setmetatable({ _u = core.loop(), _clients = setmetatable({}, { __mode = "v" }) }, Loop)
end

-- The transport of a new client on this loop (layer.client calls it).
function Loop:_transport(client, options)
  if self._closed then error("layer.client: the loop is closed", 4) end
  options.loop = self._u
  local t = core.transport(client._c, options)
  self._clients[t:id()] = client
  return t
end

-- One pass: I/O for every client (waiting up to timeout seconds, 0 = never
-- block, a negative number = until there is work), then a step of each client
-- that has work, with budget as client:step's. A handler error that a client's
-- step raises is raised here; the clients not stepped yet go first next time.
function Loop:step(timeout, budget)
  if self._closed then return nil, "closed" end
  local u, clients = self._u, self._clients
  u:step(timeout or 0)
  while not self._closed do
    local id = u:next()
    if not id then break end
    local c = clients[id]
    if not c or c._closed then
      u:skip()
    elseif not c._stepping then -- a step of c's own is under way (a handler stepping the loop): it settles then
      c:_step(0, budget)
      if not c._closed then c._transport:settle() end
    end
  end
  return true
end

function Loop:run()
  while not self._closed do self:step(self:timeout() or 1) end
end

-- Seconds until step() is needed without fd activity (0: work is waiting), or nil.
function Loop:timeout()
  if self._closed then return nil end
  return self._u:timeout()
end

function Loop:pollfd()
  if self._closed then return nil end
  return self._u:pollfd()
end
function Loop:events() return "r" end
function Loop:getfd() return self:pollfd() end
function Loop:dirty() return self:timeout() == 0 end
function Loop:wake() if not self._closed then self._u:wake() end end

-- The clients on the loop now (open or closing).
function Loop:clients()
  local list = {}
  for _, c in pairs(self._clients) do
    if not c._closed then list[#list + 1] = c end
  end
  return list
end

function Loop:closed() return self._closed == true end

-- Closes every client still on the loop, then the loop. A client closing from
-- inside its own handler finishes its step first, as client:close() says.
function Loop:close()
  if self._closed then return end
  self._closed = true
  for _, c in pairs(self._clients) do
    if not c._closed then c:close() end
  end
  local cqueues = package.loaded.cqueues
  if cqueues and cqueues.cancel then cqueues.cancel(self._u:pollfd()) end
  self._u:close() -- the C loop itself goes with the last transport on it
end

Loop.__close = Loop.close

return { new = new }
