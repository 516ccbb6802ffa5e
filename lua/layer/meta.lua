---@meta
-- layer/meta.lua: the public API as LuaLS (sumneko) / EmmyLua annotations, for
-- editors and for docs/reference.md (scripts/gen-reference.lua writes it from
-- this file; spec/reference_spec.lua checks every name here against the code).
-- Never needed at run time: requiring it defines nothing and returns {}.
-- Conventions for the generator: a `---` text block describes what follows it,
-- `function X:f()` is a method of the class bound to `local X`, `function X.f()`
-- a function; `---@return type # text`.

---------------------------------------------------------------------------
-- require "layer"

---The module: the client, and the data plane (Layer-Patch, packets, JSON, the cache) on its own.
---@class layer
---@field _NAME string "layer"
---@field _VERSION string the C core's version
---@field null lightuserdata JSON null; the very value `cjson.null` is
---@field array_mt table metatable of arrays coming out of the module
local layer = {}

---A client: logs in, keeps the WebSocket, runs handlers inside `step()`.
---@param options layer.ClientOptions
---@return layer.Client
function layer.client(options) end

---One transport loop (epoll set, libwebsockets context, curl multi handle) for many clients: pass it as `loop`.
---@return layer.Loop
function layer.loop() end

---Whether `v` is an error value returned by a client call.
---@param v any
---@return boolean
function layer.is_error(v) end

---Whether `t` carries the array metatable (`layer.array_mt`).
---@param t any
---@return boolean
function layer.is_array(t) end

---Marks `t` (or a new table) as a JSON array, so it encodes as one even when empty.
---@param t? table
---@return table # t, with the metatable `layer.array_mt`
function layer.array(t) end

---Applies Layer-Patch operations atomically; the input is never modified. JSON text in gives JSON text out.
---@param object table|string the object (Lua value or JSON text)
---@param operations table|string the operations (Lua list or JSON text)
---@param options? layer.PatchOptions
---@return table|string|nil # the new object, or nil on failure
---@return layer.Change[]|string|nil # the change list; on failure the message
---@return integer|table|nil # on failure the 1-based index of the failing operation; with `register` the values registered
function layer.patch(object, operations, options) end

---Decodes one WebSocket frame into a validated, typed packet.
---@param text string the frame
---@param limits? {max_bytes?: integer, max_depth?: integer} defaults 1 MiB and 32 levels
---@return layer.Packet|nil # the packet, or nil
---@return string? # why the frame was refused (names the field)
function layer.decode_packet(text, limits) end

---Strict RFC 8259 JSON text to Lua values (`null` is `layer.null`, arrays carry `layer.array_mt`).
---@param text string
---@return any # the value, or nil
---@return string? # the error, with its byte offset
function layer.json_decode(text) end

---Lua value to compact JSON text; number text never depends on the C locale.
---@param value any
---@return string
function layer.json_encode(value) end

---The C object cache on its own, fed with raw frames.
---@param limits? {max_messages_per_conversation?: integer, max_bytes?: integer}
---@return layer.Cache
function layer.cache(limits) end

---A UUID: random (version 4), or derived from `name` with SHA-256 (same name, same UUID).
---@param name? string
---@return string
function layer.uuid(name) end

---An HS256 identity token for the local server (claims `prn`, `nce`, `iat`, `exp`).
---@param claims {secret: string, user_id: string, nonce: string, ttl?: number, display_name?: string, avatar_url?: string, first_name?: string, last_name?: string}
---@return string # the JWT
function layer.dev_token(claims) end

---------------------------------------------------------------------------
-- layer.client{...}

---The options of `layer.client`; unknown names are refused.
---@class layer.ClientOptions
---@field url string REST base URL, `http://` or `https://` (required unless `transport = "manual"`)
---@field websocket_url? string WebSocket base (`ws(s)://host:port`); default derived from `url`
---@field app_id? string sent with the identity token to `POST /sessions`
---@field identity? fun(nonce: string): string returns an identity token; called again whenever the session expires
---@field session_token? string use an existing session instead of logging in (pass `user_id` too)
---@field user_id? string the user of `session_token`, for `client.user`
---@field api_version? integer 3 (default) or 2 (`update` packets, `layer-2.0`)
---@field keepalive? number seconds of silence before a `Counter.read` (30)
---@field dead_after? number seconds without any packet before the socket is dead (45)
---@field request_timeout? number seconds a socket request may take; also the HTTP request timeout (45)
---@field connect_timeout? number seconds for DNS, TCP, TLS and the handshake (15)
---@field backoff_base? number first reconnect delay in seconds (1.6), doubling
---@field backoff_cap? number largest reconnect delay in seconds (480)
---@field backoff_jitter? number up to this fraction of the delay added at random (0.5)
---@field random_seed? integer seed for the jitter (tests)
---@field max_messages_per_conversation? integer cache bound; the oldest positions go first
---@field max_bytes? integer cache bound in bytes; least recently changed objects go first
---@field max_events_per_step? integer events dispatched per `step()` (1000)
---@field change_lists? boolean `false`: update handlers get no change list (nil) and patches apply in place (faster); default `true`
---@field transport? "manual"|fun(client: layer.Client, options: layer.ClientOptions): table no sockets (feed `client:engine()`), or a transport written in Lua (`layer.ngx.transport`)
---@field manual_clock? number the engine keeps a clock the caller sets, starting at this many seconds (`engine:set_time`)
---@field ca_file? string PEM bundle to trust instead of the system store
---@field ca_path? string directory of hashed CA certificates
---@field insecure? boolean `true` turns certificate checks off; nothing else does
---@field proxy? string `http://[user:password@]host[:port]` for REST and the WebSocket; `""` never; default the environment
---@field state? string SQLite file keeping the sync state across restarts (docs/client.md, Restarts)
---@field catch_up? number with `state`: seconds of history a file without a cursor starts from
---@field loop? layer.Loop share this loop with other clients (`layer.loop()`); default a loop of its own

---A Layer client. Request methods return their results directly inside handlers and coroutines, take a callback as their last argument elsewhere, and fail with `nil, err` (`layer.Error`).
---@class layer.Client
---@field user? {user_id: string, id: string} the logged-in user, once known
---@field session_token? string the session token, once authenticated
local client = {}

---One pass: waits up to `timeout` seconds (default 0), services sockets and timers, then dispatches events within `budget` (a count, or `{events=, ms=}`).
---@param timeout? number
---@param budget? integer|{events?: integer, ms?: number}
---@return true|nil # true, or nil once closed
---@return string? # "closed"
function client:step(timeout, budget) end

---`step(client:timeout())` until the client is closed.
function client:run() end

---Seconds until `step` is needed without fd activity; 0 if events are pending; nil if nothing is scheduled.
---@return number?
function client:timeout() end

---One epoll fd that never changes; readable means "call step". nil once closed (or for transports without one).
---@return integer?
function client:pollfd() end

---cqueues' pollable protocol: always `"r"`.
---@return string
function client:events() end

---luasocket's `socket.select` protocol: the same fd as `pollfd()`.
---@return integer?
function client:getfd() end

---luasocket's `socket.select` protocol: whether `timeout()` is 0.
---@return boolean
function client:dirty() end

---Whether the client is closed.
---@return boolean?
function client:closed() end

---Closes the client, also from inside a handler (the step finishes first); waiting coroutines get `client_closed`. `__close` on Lua 5.4.
function client:close() end

---Counters of the engine and the cache.
---@return layer.Stats
function client:stats() end

---The protocol engine, for transports and tests that feed it themselves (`transport = "manual"`).
---@return layer.Engine
function client:engine() end

---Adds a handler; it runs as a coroutine. An unknown event name raises.
---@param name layer.Event
---@param fn function
---@return function # fn
function client:on(name, fn) end

---Adds a handler that runs once.
---@param name layer.Event
---@param fn function
---@return function # fn
function client:once(name, fn) end

---Removes `fn`, or every handler of `name`; safe during dispatch.
---@param name layer.Event
---@param fn? function
---@return boolean # whether a handler was removed
function client:off(name, fn) end

---Runs `fn(...)` on one of the client's coroutines, where request methods return their results directly.
---@param fn function
---@param ... any
function client:spawn(fn, ...) end

---Runs `fn` on one of the client's coroutines and returns what it returns, pumping the client until then
---(at top level), or waiting only the calling handler. After `seconds`: nil and an error with id "timeout".
---@param fn function
---@param seconds? number deadline (none without it)
---@return any ...
function client:wait(fn, seconds) end

---Any REST call; a table body is sent as JSON.
---@param method string
---@param path string starting with "/"
---@param body? string|table
---@param content_type? string
---@param callback? fun(result: any, err: layer.Error?)
---@return any # the decoded response (or the request id with a callback)
---@return layer.Error?
function client:request(method, path, body, content_type, callback) end

---Creates a conversation (distinct by default: the existing one with the same participants comes back).
---@param opts {participants: (string|layer.Identity)[], distinct?: boolean, metadata?: table, id?: string}
---@param callback? fun(conv: layer.Conversation?, err: layer.Error?)
---@return layer.Conversation?
---@return layer.Error?
function client:create_conversation(opts, callback) end

---Lists conversations, newest first; the list's `.total` is the `Layer-Count` header.
---@param opts? {page_size?: integer, from_id?: string, sort_by?: "created_at"|"last_message"}
---@param callback? fun(list: layer.Conversation[]?, err: layer.Error?)
---@return layer.Conversation[]?
---@return layer.Error?
function client:conversations(opts, callback) end

---A conversation: the cached object at once, else fetched.
---@param id string `layer:///conversations/<uuid>` or the uuid
---@param callback? fun(conv: layer.Conversation?, err: layer.Error?)
---@return layer.Conversation?
---@return layer.Error?
function client:conversation(id, callback) end

---A message: the cached object at once, else fetched.
---@param id string `layer:///messages/<uuid>` or the uuid
---@param callback? fun(msg: layer.Message?, err: layer.Error?)
---@return layer.Message?
---@return layer.Error?
function client:message(id, callback) end

---A user's identity, fetched.
---@param user_id string
---@param callback? fun(identity: layer.Identity?, err: layer.Error?)
---@return layer.Identity?
---@return layer.Error?
function client:identity(user_id, callback) end

---Follows a user.
---@param user_id string
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function client:follow(user_id, callback) end

---Stops following a user.
---@param user_id string
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function client:unfollow(user_id, callback) end

---The user's announcements; the list's `.total` is the `Layer-Count` header.
---@param callback? fun(list: layer.Announcement[]?, err: layer.Error?)
---@return layer.Announcement[]?
---@return layer.Error?
function client:announcements(callback) end

---------------------------------------------------------------------------
-- Events

---Event names for `client:on`, with the arguments their handlers get. Others raise.
---@alias layer.Event
---| "ready" # (): once: logged in and the socket is open
---| "connected" # (): the WebSocket opened
---| "disconnected" # (reason: string, retry_in: number?): the socket closed; seconds until the next attempt, nil if none
---| "reconnecting" # (attempt: integer): a reconnect attempt starts
---| "synced" # (replayed: integer): an `Event.replay` finished (after reconnects and counter gaps)
---| "message" # (msg: layer.Message): a new message (also `message.create`)
---| "conversation.create" # (conv: layer.Conversation): a conversation appeared
---| "conversation.update" # (conv: layer.Conversation, changes: layer.Change[]?): a conversation changed
---| "conversation.delete" # (conv: layer.Conversation|string, mode: string): a conversation was deleted (`all_participants`, `my_devices`)
---| "conversation.truncate" # (conv: layer.Conversation|string, removed: integer): a `from_position` delete removed messages
---| "conversation.mark_read" # (conv: layer.Conversation|string, marked: integer): `Conversation.mark_all_read` marked messages
---| "message.create" # (msg: layer.Message): a message appeared
---| "message.update" # (msg: layer.Message, changes: layer.Change[]?): a message changed (receipts)
---| "message.delete" # (msg: layer.Message|string, mode: string): a message was deleted
---| "identity.create" # (identity: layer.Identity): an identity appeared
---| "identity.update" # (identity: layer.Identity, changes: layer.Change[]?): an identity changed
---| "identity.delete" # (identity: layer.Identity|string, mode: string): an identity was deleted
---| "announcement.create" # (announcement: layer.Announcement): an announcement appeared
---| "announcement.update" # (announcement: layer.Announcement, changes: layer.Change[]?): an announcement changed
---| "announcement.delete" # (announcement: layer.Announcement|string, mode: string): an announcement was deleted
---| "typing" # (conv: layer.Conversation|string, sender: table, action: string): `started`, `paused`, `finished` (also after 6 s of silence)
---| "error" # (err: layer.Error): a failure not tied to a request (transport, handler errors)
---| "log" # (level: string, text: string): `"error"`, `"warn"` or `"info"`; errors come here without an `error` handler

---One changed top-level property of an `*.update` event. `paths`, `old` and `new` are converted when the
---entry is first read for one of them; read them while the event's handlers run (afterwards an unread one raises).
---@class layer.Change
---@field property string the top-level property
---@field paths string[] the property paths the operations touched, in order of first use
---@field old any the old value (nil when it was absent)
---@field new any the new value (nil when it is now absent)

---------------------------------------------------------------------------
-- Objects

---A conversation: a read-only userdata backed by the cache; the same id is the same userdata while held.
---@class layer.Conversation
---@field id string `layer:///conversations/<uuid>`
---@field url string
---@field messages_url string
---@field created_at string ISO 8601
---@field participants layer.Identity[] cached Identity objects, else plain `{id, url, user_id, display_name, avatar_url}` tables
---@field distinct boolean
---@field metadata table
---@field unread_message_count integer
---@field total_message_count integer
---@field last_message layer.Message|lightuserdata the cached message (or a reference), or `layer.null`
---@field object_type string "Conversation"
---@field deleted boolean true once deleted (a held object stays readable)
local conv = {}

---Sends a message over the WebSocket with a client-chosen id; parts over 2 KB go up as rich content first.
---@param content string|{parts: (string|{body?: string, mime_type?: string, content?: table})[], notification?: table, id?: string}
---@param callback? fun(msg: layer.Message?, err: layer.Error?)
---@return layer.Message?
---@return layer.Error?
function conv:send(content, callback) end

---Fetches a page of messages, newest first; `.total` is the `Layer-Count` header.
---@param opts? {page_size?: integer, from_id?: string}
---@param callback? fun(list: layer.Message[]?, err: layer.Error?)
---@return layer.Message[]?
---@return layer.Error?
function conv:messages(opts, callback) end

---The messages the cache holds, oldest first (no request).
---@return layer.Message[]
function conv:cached_messages() end

---Sets `metadata.<path>` ("a.b" is nested).
---@param path string
---@param value string|table
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function conv:set_metadata(path, value, callback) end

---Deletes `metadata.<path>`.
---@param path string
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function conv:delete_metadata(path, callback) end

---Adds participants: user ids, identity ids or Identity objects.
---@param list (string|layer.Identity)[]
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function conv:add_participants(list, callback) end

---Removes participants: user ids, identity ids or Identity objects.
---@param list (string|layer.Identity)[]
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function conv:remove_participants(list, callback) end

---Deletes the conversation for everyone (`all_participants`) or this user's devices; `leave` leaves it.
---@param opts? {mode?: "all_participants"|"my_devices", leave?: boolean}
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function conv:delete(opts, callback) end

---Marks every message up to the last one read.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function conv:mark_all_read(callback) end

---Sends a typing indicator.
---@param state "started"|"paused"|"finished"
---@return boolean
function conv:typing(state) end

---A message: a read-only userdata backed by the cache.
---@class layer.Message
---@field id string `layer:///messages/<uuid>`
---@field url string
---@field conversation layer.Conversation the cached conversation, or a reference with its methods
---@field parts layer.Part[]
---@field sent_at string ISO 8601
---@field received_at string ISO 8601
---@field sender layer.Identity the cached Identity, else a plain `{id, user_id, display_name, ...}` table
---@field recipient_status table identity id -> "sent", "delivered" or "read"
---@field is_unread boolean
---@field position integer
---@field object_type string "Message"
---@field deleted boolean
local msg = {}

---Sends a read receipt.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function msg:mark_read(callback) end

---Sends a delivery receipt.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function msg:mark_delivered(callback) end

---Deletes the message for everyone or this user's devices.
---@param opts? {mode?: "all_participants"|"my_devices"}
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function msg:delete(opts, callback) end

---The bodies of its `text/*` parts, joined by newlines.
---@return string
function msg:text() end

---One part of a message (a table with the metatable of its client's parts).
---@class layer.Part
---@field id string `<message id>/parts/<n>`
---@field mime_type string
---@field body? string inline data
---@field encoding? string
---@field size? integer
---@field content? {id: string, size: integer, download_url: string, expiration: string, refresh_url: string} rich content
local part = {}

---The part's data: the inline body, or its rich content (refreshing an expired URL).
---@param callback? fun(data: string?, err: layer.Error?)
---@return string?
---@return layer.Error?
function part:download(callback) end

---An identity: a read-only userdata backed by the cache.
---@class layer.Identity
---@field id string `layer:///identities/<encoded user id>`
---@field url string
---@field user_id string
---@field display_name string
---@field avatar_url? string
---@field first_name? string
---@field last_name? string
---@field email_address? string
---@field phone_number? string
---@field public_key? string
---@field type? string
---@field metadata table
---@field object_type string "Identity"
---@field deleted boolean
local identity = {}

---Follows this user.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function identity:follow(callback) end

---Stops following this user.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function identity:unfollow(callback) end

---An announcement: a message from the service, outside conversations.
---@class layer.Announcement
---@field id string `layer:///announcements/<uuid>`
---@field url string
---@field sent_at string ISO 8601
---@field received_at string ISO 8601
---@field sender {id: lightuserdata, name: string, display_name: string} `id` is `layer.null`: the service, not a user
---@field parts layer.Part[]
---@field recipient_status table
---@field is_unread boolean
---@field position integer
---@field object_type string "Announcement"
---@field deleted boolean
local announcement = {}

---Sends a read receipt.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function announcement:mark_read(callback) end

---Deletes it.
---@param callback? fun(ok: true?, err: layer.Error?)
---@return true?
---@return layer.Error?
function announcement:delete(callback) end

---------------------------------------------------------------------------
-- Values

---What a failed call returns as its second value; `tostring` and `..` give a readable message.
---@class layer.Error
---@field id string Layer's error id, or `transport_error`, `http_error`, `invalid_response`, `request_timeout`, `client_error`, `client_closed`, `handler_error`, `out_of_memory` (an allocation failed; what was lost or put off is in the message)
---@field code? integer Layer's error code
---@field message string
---@field url? string
---@field data? any
---@field http_status? integer nil for transport failures
---@field retryable boolean trying again later may succeed (429, 5xx, timeouts, transport failures); the client has already retried
---@field retry_after? number seconds, when the server said so

---`client:stats()`: engine and cache counters (integers on Lua 5.3+).
---@class layer.Stats
---@field packets integer
---@field changes_applied integer
---@field duplicates_suppressed integer
---@field replays integer
---@field reconnects integer
---@field gaps integer
---@field last_counter integer
---@field out_of_memory integer allocation failures the engine reported (as `out_of_memory` errors)
---@field objects integer
---@field conversations integer
---@field messages integer
---@field identities integer
---@field announcements integer
---@field bytes integer heap held by the cache
---@field pinned integer objects held by Lua
---@field evicted integer objects dropped by the bounds so far

---Options of `layer.patch`.
---@class layer.PatchOptions
---@field objects? table|string id -> object map for operations that carry an `id`
---@field register? boolean an unknown `id` with a `value` stores the value under the id
---@field return_ids? boolean an unknown `id` without a usable value resolves to the id string
---@field changes? boolean `false` skips building the change list

---A decoded frame (`layer.decode_packet`); which fields are set depends on `type`.
---@class layer.Packet
---@field type "change"|"response"|"signal"|"operation"|"request"
---@field counter? integer
---@field timestamp? string ISO 8601, as sent
---@field time? number the timestamp as Unix seconds
---@field object? {type: string, id: string, url: string}
---@field operation? string change: "create", "delete", "update" or "patch"
---@field object_type? string
---@field object_id? string
---@field data? any
---@field mode? string
---@field from_position? integer
---@field operations? table
---@field request_id? string|integer
---@field method? string
---@field success? boolean
---@field error? table
---@field signal? string
---@field action? string
---@field sender? table
---@field position? integer
---@field identity? string

---A transport loop shared by many clients (docs/client.md, "Many clients on one loop"). A client on it
---forwards `step`, `run`, `pollfd` and `timeout` to the loop.
---@class layer.Loop
local loop = {}

---One I/O pass for every client (waiting up to `timeout` seconds; 0 never blocks, negative until there is
---work), then a step of each client that has work, with `budget` as `client:step`'s.
---@param timeout? number
---@param budget? integer|{events?: integer, ms?: number}
function loop:step(timeout, budget) end

---Steps until every client on the loop is closed.
function loop:run() end

---Seconds until the loop needs a step without fd activity (0: work pending), or nil.
---@return number?
function loop:timeout() end

---The epoll fd to poll for readability (cqueues, luv, a game loop), or nil once closed.
---@return integer?
function loop:pollfd() end

---Always "r" (the cqueues pollable protocol).
---@return string
function loop:events() end

---Same as `pollfd()`.
---@return integer?
function loop:getfd() end

---Whether a step is due now.
---@return boolean
function loop:dirty() end

---Makes the fd readable: work was queued outside a step.
function loop:wake() end

---The open clients on the loop.
---@return layer.Client[]
function loop:clients() end

---Whether the loop was closed.
---@return boolean
function loop:closed() end

---Closes every client on the loop, then the loop.
function loop:close() end

---The C object cache fed with raw frames (`layer.cache()`).
---@class layer.Cache
local cache = {}

---Applies a change or operation frame: create is an upsert, patches are atomic, deletes honour `from_position`.
---@param frame string
---@param want_changes? boolean
---@return string|nil # "created", "replaced", "patched", "deleted", "truncated", "ignored", "marked_read"; nil on failure
---@return string? # the object id; on failure the message
---@return layer.Change[]|integer|nil # patched: the changes; truncated / marked_read: the count
function cache:apply(frame, want_changes) end

---The object as a Lua table, or nothing.
---@param id string
---@return table?
function cache:get(id) end

---The object as JSON text, or nothing.
---@param id string
---@return string?
function cache:get_json(id) end

---Cache counters (the cache half of `layer.Stats`).
---@return table
function cache:stats() end

---Repacks patched objects, up to `max_slots` table slots (all by default).
---@param max_slots? integer
---@return integer # entries repacked
function cache:compact(max_slots) end

---Frees the cache; using it afterwards raises.
function cache:close() end

---The protocol engine (`client:engine()`), sans-IO: a transport feeds it and takes its outputs.
---@class layer.Engine
local engine = {}

---Delivers one received WebSocket frame.
---@param frame string
function engine:feed(frame) end

---Reports the WebSocket open.
function engine:ws_opened() end

---Reports the WebSocket closed.
---@param reason? string
function engine:ws_closed(reason) end

---Delivers an HTTP response (status 0: transport failure, the reason in body).
---@param id integer
---@param status integer
---@param body? string
---@param retry_after? string
---@param layer_count? integer
function engine:http_response(id, status, body, retry_after, layer_count) end

---The next frame to send, or nil.
---@return string?
function engine:take_frame() end

---The next HTTP request to make, or nil.
---@return {id: integer, method: string, path: string, body?: string, content_type?: string, headers?: string, authenticated: boolean}?
function engine:take_http() end

---Whether a WebSocket should be open.
---@return boolean
function engine:ws_wanted() end

---The session token once logged in, else nil.
---@return string?
function engine:session_token() end

---The WebSocket subprotocol (`layer-3.0`; `layer-2.0` with `api_version = 2`).
---@return string
function engine:subprotocol() end

---Seconds until the engine needs a tick (0: work pending), or nil.
---@return number?
function engine:deadline() end

---Runs due timers (keepalive, dead socket, request timeouts, reconnects).
function engine:tick() end

---With `manual_clock`: sets the engine's clock.
---@param seconds number
function engine:set_time(seconds) end

---The engine's clock in seconds.
---@return number
function engine:now() end

---Closes the engine; the client notices at its next step and closes too.
function engine:close() end

---Whether the engine is closed.
---@return boolean
function engine:closed() end

---------------------------------------------------------------------------
-- require "layer.dev"

---Development helpers: the local server and tokens for it.
---@class layer.dev
local dev = {}

---Starts the local server (`$LAYER_SERVER`, `build/layer-server`, the rock's `bin/`, or PATH) on 127.0.0.1.
---@param opts? {port?: integer, db?: string, secret?: string, admin_token?: string, max_lifetime?: integer, log?: string, log_level?: string, binary?: string, args?: string[]} `args`: extra flags for layer-server (`{"--request-timeout", "5"}`)
---@return layer.Server
function dev.start_server(opts) end

---An identity callback for the local server that signs dev tokens for `user_id`.
---@param secret string
---@param user_id string
---@param profile? {display_name?: string, avatar_url?: string, first_name?: string, last_name?: string}
---@return fun(nonce: string): string
function dev.identity(secret, user_id, profile) end

---A running local server (`layer.dev.start_server`).
---@class layer.Server
---@field url string
---@field port integer
---@field pid integer
---@field secret string
---@field admin_token string
---@field log string the server's log file
---@field stop fun(signal?: string) stops it with SIGTERM (or the signal named) and waits; it also stops after `max_lifetime` seconds
---@field alive fun(): boolean whether it still runs

---------------------------------------------------------------------------
-- require "layer.ngx" (OpenResty only)

---The client inside OpenResty on cosockets; its loop runs on an `ngx.timer`.
---@class layer.ngx
local ngx_layer = {}

---A `layer.client` on cosockets whose loop starts on a timer at once; call from `init_worker_by_lua*` or later. `proxy`, `ca_file` and `ca_path` are refused.
---@param options layer.ClientOptions
---@return layer.Client
function ngx_layer.client(options) end

---The cosocket transport, for `layer.client{transport = ...}`.
---@param client layer.Client
---@param options layer.ClientOptions
---@return table
function ngx_layer.transport(client, options) end

return {} --[[@as layer]]
