// websdk_echo.js - the layer-websdk side of bench/client_e2e.lua: sequential echo round trips to the echo bot.
//   node bench/websdk_echo.js BASE_URL SECRET USER_ID ROUND_TRIPS WARMUP
// Prints "SAMPLES ms,ms,..." (send() to the bot's echo in a messages:add handler) and
// "SOCKET ms,..." (send() to the echo's change packet arriving at websdk's socketManager).
'use strict';
const path = require('path');
const crypto = require('crypto');
const modules = path.join(__dirname, 'websdk', 'node_modules');
const need = (name) => require(path.join(modules, name));

// Globals layer-websdk expects from a browser (the approach of spec/interop/user.js).
global.window = global;
global.XMLHttpRequest = need('xhr2');
global.WebSocket = need('websocket').w3cwebsocket;
global.getNativeSupport = (n) => ({
  setImmediate, OnlineEvents: null,
  atob: (s) => Buffer.from(s, 'base64').toString('binary'),
  btoa: (s) => Buffer.from(s, 'binary').toString('base64'),
})[n];
const layer = need('layer-websdk');

const [, , base, secret, userId, nArg, warmArg] = process.argv;
const N = Number(nArg || 300);
const WARMUP = Number(warmArg || 30);
const BOT = 'echo-bot';
setTimeout(() => { console.error('websdk_echo: timed out'); process.exit(2); }, 240000).unref();

const b64u = (b) => Buffer.from(b).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
function identityToken(nonce) {
  const now = Math.floor(Date.now() / 1000);
  const h = b64u(JSON.stringify({ typ: 'JWT', alg: 'HS256', cty: 'layer-eit;v=1' }));
  const p = b64u(JSON.stringify({ prn: userId, nce: nonce, iat: now, exp: now + 600, display_name: userId }));
  return h + '.' + p + '.' + b64u(crypto.createHmac('sha256', secret).update(h + '.' + p).digest());
}

const client = new layer.Client({
  appId: 'layer:///apps/staging/00000000-0000-0000-0000-0000000000e2',
  url: base,
  websocketUrl: base.replace(/^http/, 'ws') + '/ws',
  telemetryEnabled: false,
  logLevel: layer.Constants.LOG.ERROR,
});
client.on('challenge', (evt) => evt.callback(identityToken(evt.nonce)));

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
let expect = null;
let sockAt = null;
let resolveEcho = null;

// Socket level: the change packet of the bot's echo reaches websdk.
client.socketManager.on('message', (evt) => {
  const d = evt.data;
  const b = d && d.body;
  if (expect && b && b.operation === 'create' && b.object && b.object.type === 'Message' && b.data &&
      b.data.sender && b.data.sender.user_id === BOT && b.data.parts && b.data.parts[0] &&
      b.data.parts[0].body === expect) {
    sockAt = nowMs();
  }
});
// Handler level: websdk's public event for a new message.
client.on('messages:add', (evt) => {
  for (const m of evt.messages) {
    if (expect && m.sender && m.sender.userId === BOT && m.parts[0] && m.parts[0].body === expect && resolveEcho) {
      const r = resolveEcho;
      resolveEcho = null;
      r(nowMs());
    }
  }
});

const once = (obj, ok, bad) => new Promise((resolve, reject) => {
  obj.once(ok, resolve);
  if (bad) obj.once(bad, (e) => reject(new Error(bad + ': ' + (e.error && e.error.message))));
});
function waitFor(fn, ms) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    (function poll() {
      if (fn()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error('timed out'));
      setTimeout(poll, 10);
    })();
  });
}

async function main() {
  client.connect(userId);
  await once(client, 'ready');
  await waitFor(() => client.socketManager.isOpen, 20000);
  const conv = client.createConversation({ participants: [BOT], distinct: false });
  conv.send();
  await once(conv, 'conversations:sent', 'conversations:sent-error');
  const samples = [];
  const socket = [];
  for (let i = 1; i <= WARMUP + N; i++) {
    expect = 'echo: ping ' + i;
    sockAt = null;
    const echoed = new Promise((resolve, reject) => {
      resolveEcho = resolve;
      setTimeout(() => reject(new Error('no echo for ping ' + i)), 20000).unref();
    });
    const t0 = nowMs();
    conv.createMessage('ping ' + i).send();
    const t1 = await echoed;
    if (i > WARMUP) {
      samples.push((t1 - t0).toFixed(3));
      if (sockAt !== null) socket.push((sockAt - t0).toFixed(3));
    }
  }
  console.log('SAMPLES ' + samples.join(','));
  console.log('SOCKET ' + socket.join(','));
}

main().then(() => process.exit(0), (e) => { console.error('websdk_echo failed: ' + (e && e.stack || e)); process.exit(1); });
