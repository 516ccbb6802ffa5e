-- layer-scm-1.rockspec: builds the layer module with LuaRocks' builtin backend.
-- From a checkout: luarocks make rockspec/layer-scm-1.rockspec
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
  CURL = { header = "curl/curl.h", library = "curl" },
  LIBWEBSOCKETS = { header = "libwebsockets.h", library = "websockets" },
  OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
}
build = {
  type = "builtin",
  modules = {
    ["layer.core"] = {
      sources = {
        "src/core/cache.c",
        "src/core/driver.c",
        "src/core/http.c",
        "src/core/json.c",
        "src/core/loop.c",
        "src/core/packet.c",
        "src/core/patch.c",
        "src/core/proxy.c",
        "src/core/resolve.c",
        "src/core/session.c",
        "src/core/state.c",
        "src/core/ws.c",
        "src/lua/compat.c",
        "src/lua/lcache.c",
        "src/lua/lclient.c",
        "src/lua/lconv.c",
        "src/lua/ldev.c",
        "src/lua/lmodule.c",
        "src/lua/lobject.c",
        "src/lua/lpacket.c",
        "src/lua/lpatch.c",
        "src/lua/ltransport.c",
        "src/lua/lstate.c",
        "src/lua/scratch.c",
      },
      incdirs = { "src/core", "src/lua", "$(CURL_INCDIR)", "$(LIBWEBSOCKETS_INCDIR)", "$(OPENSSL_INCDIR)", "$(SQLITE_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(LIBWEBSOCKETS_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(SQLITE_LIBDIR)" },
      libraries = { "curl", "websockets", "crypto", "sqlite3", "m", "pthread" },
      defines = { "_GNU_SOURCE" },
    },
    layer = "lua/layer/init.lua",
    ["layer.client"] = "lua/layer/client.lua",
    ["layer.dev"] = "lua/layer/dev.lua",
    ["layer.state"] = "lua/layer/state.lua",
    ["layer.ngx"] = "lua/layer/ngx.lua", -- OpenResty only (needs its ngx, bit and ngx.semaphore)
  },
  copy_directories = { "docs", "examples" },
}
