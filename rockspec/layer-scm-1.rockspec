-- layer-scm-1.rockspec: builds the layer module and the local server with LuaRocks.
-- From a checkout: luarocks --lua-version=5.4 make rockspec/layer-scm-1.rockspec
package = "layer"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Lua client for the Layer Client API, with its core in C",
  detailed = [[
    Conversations, messages and identities of the Layer chat platform as live
    Lua objects. A C core decodes WebSocket change packets, applies Layer-Patch
    operations atomically and keeps a bounded object cache; it runs on
    Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT without hidden threads.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
-- REST over libcurl, the WebSocket over libwebsockets, HS256 development
-- tokens over OpenSSL's libcrypto, the optional state file over SQLite.
external_dependencies = {
  CURL = { library = "curl" }, -- Debian keeps curl.h under a multiarch directory; pkg-config finds it
  LIBWEBSOCKETS = { header = "libwebsockets.h", library = "websockets" },
  OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
}
-- Built by the Makefile's rock-build target, so one source list serves both
-- and the rock also carries the local server (bin/layer-server), which
-- layer.dev.start_server finds next to the installed module.
build = {
  type = "command",
  build_command = [[$(MAKE) --no-print-directory rock-build ROCK_LUA_INCDIR="$(LUA_INCDIR)" ]] ..
    [[ROCK_CFLAGS="$(CFLAGS)" ROCK_LIBFLAG="$(LIBFLAG)" CC="$(CC)"]],
  install = {
    lib = { ["layer.core"] = "build/rock/layer/core.so" },
    lua = {
      layer = "lua/layer/init.lua",
      ["layer.client"] = "lua/layer/client.lua",
      ["layer.loop"] = "lua/layer/loop.lua",
      ["layer.errors"] = "lua/layer/errors.lua",
      ["layer.ids"] = "lua/layer/ids.lua",
      ["layer.requests"] = "lua/layer/requests.lua",
      ["layer.scheduler"] = "lua/layer/scheduler.lua",
      ["layer.conversation"] = "lua/layer/conversation.lua",
      ["layer.message"] = "lua/layer/message.lua",
      ["layer.identity"] = "lua/layer/identity.lua",
      ["layer.announcement"] = "lua/layer/announcement.lua",
      ["layer.part"] = "lua/layer/part.lua",
      ["layer.dev"] = "lua/layer/dev.lua",
      ["layer.state"] = "lua/layer/state.lua",
      ["layer.ngx"] = "lua/layer/ngx.lua", -- OpenResty only (needs its ngx, bit and ngx.semaphore)
    },
    bin = { ["layer-server"] = "build/rock/layer-server" },
  },
  copy_directories = { "docs", "examples" },
}
