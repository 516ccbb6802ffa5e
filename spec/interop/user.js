// spec/interop/user.js - one layer-websdk 3.4.18 client in its own process, driven by run.js over IPC.
'use strict';
// Globals layer-websdk expects from a browser (websdk-wire-reference.md section 7).
global.window = global;
global.XMLHttpRequest = require('xhr2');
global.WebSocket = require('websocket').w3cwebsocket;
global.getNativeSupport = (n) => ({
  setImmediate, OnlineEvents: null,
  atob: (s) => Buffer.from(s, 'base64').toString('binary'),
  btoa: (s) => Buffer.from(s, 'binary').toString('base64'),
})[n];
const crypto = require('crypto');
const layer = require('layer-websdk');

const [, , userId, base, secret, displayName] = process.argv;
const b64u = (b) => Buffer.from(b).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
function identityToken(nonce) {
  const now = Math.floor(Date.now() / 1000);
  const h = b64u(JSON.stringify({ typ: 'JWT', alg: 'HS256', cty: 'layer-eit;v=1' }));
  // layer-websdk reads the payload with atob (bytes as Latin-1), so non-ASCII claims go as \u escapes.
  const claims = JSON.stringify({ prn: userId, nce: nonce, iat: now, exp: now + 600, display_name: displayName || userId.toUpperCase() })
    .replace(/[\u0080-\uffff]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
  const p = b64u(claims);
  return h + '.' + p + '.' + b64u(crypto.createHmac('sha256', secret).update(h + '.' + p).digest());
}

const client = new layer.Client({
  appId: 'layer:///apps/staging/00000000-0000-0000-0000-00000000000' + (userId === 'alice' ? '1' : '2'),
  url: base,
  websocketUrl: base.replace(/^http/, 'ws') + '/ws',
  telemetryEnabled: false,
  logLevel: process.env.INTEROP_DEBUG ? layer.Constants.LOG.DEBUG : layer.Constants.LOG.ERROR,
});
const seen = { challenges: 0, synced: 0, errors: [], identityChanges: [] };
client.on('challenge', (evt) => { seen.challenges++; evt.callback(identityToken(evt.nonce)); });
client.socketManager.on('synced', () => { seen.synced++; });
client.on('messages:sent-error', (e) => seen.errors.push(String(e.error && e.error.message)));
client.on('conversations:sent-error', (e) => seen.errors.push(String(e.error && e.error.message)));
client.on('identities:change', (e) => {
  for (const c of e.changes) seen.identityChanges.push({ id: e.target.id, property: c.property, newValue: c.newValue });
});

function waitFor(what, fn, ms) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    (function poll() {
      let v;
      try { v = fn(); } catch (e) { v = undefined; }
      if (v) return resolve(v);
      if (Date.now() - t0 > (ms || 15000)) return reject(new Error(userId + ': timed out waiting for ' + what));
      setTimeout(poll, 50);
    })();
  });
}
const once = (obj, ok, bad) => new Promise((resolve, reject) => {
  obj.once(ok, resolve);
  if (bad) obj.once(bad, (e) => reject(new Error(bad + ': ' + (e.error && e.error.message))));
});
const text = (m) => m && !m.isDestroyed && m.parts && m.parts[0] && m.parts[0].body;
const identityInfo = (i) => i && { id: i.id, userId: i.userId, displayName: i.displayName, status: i.status };
const messageInfo = (m) => ({ id: m.id, conversation: m.conversationId, body: text(m), sender: identityInfo(m.sender) });

const commands = {
  async connect() {
    client.connect(userId);
    await once(client, 'ready');
    await waitFor('socket open', () => client.socketManager.isOpen);
    return { user: client.user.id, displayName: client.user.displayName, challenges: seen.challenges };
  },
  async me() { return identityInfo(client.user); },
  async identity({ id }) { return identityInfo(client.getIdentity(id)); },
  // An identities:change event seen (now or later) for identity id: property set to newValue.
  async waitIdentityChange({ id, property, newValue }) {
    await waitFor(id + ' ' + property + ' -> ' + newValue, () => seen.identityChanges.some((c) =>
      c.id === id && c.property === property && String(c.newValue) === String(newValue)));
    return identityInfo(client.getIdentity(id));
  },
  async identityChanges({ id }) { return seen.identityChanges.filter((c) => c.id === id); },
  // A message with this text in any conversation (for senders whose ids the caller does not know).
  async waitMessageText({ body }) {
    const m = await waitFor('a message "' + body + '"', () =>
      Object.values(client._models.messages).find((x) => text(x) === body));
    return messageInfo(m);
  },
  async createConversation({ participants, metadata }) {
    const conv = client.createConversation({ participants, distinct: true, metadata });
    conv.send();
    const evt = await once(conv, 'conversations:sent', 'conversations:sent-error');
    return { id: conv.id, result: evt.result };
  },
  async waitConversation({ id }) {
    const c = await waitFor('conversation ' + id, () => client.getConversation(id));
    return { participants: c.participants.map((p) => p.userId).sort(), participantIds: c.participants.map((p) => p.id).sort() };
  },
  async send({ conversation, body }) {
    const conv = client.getConversation(conversation);
    const msg = conv.createMessage(body);
    msg.send();
    await once(msg, 'messages:sent', 'messages:sent-error');
    return { id: msg.id, position: msg.position };
  },
  async waitMessage({ id, body }) {
    await waitFor('message ' + id, () => text(client.getMessage(id)) === body);
    return { ok: true };
  },
  async hasMessage({ id }) { return { has: !!text(client.getMessage(id)) }; },
  async setMetadata({ conversation, key, value }) {
    client.getConversation(conversation).setMetadataProperties({ [key]: value });
    return { ok: true };
  },
  async waitMetadata({ conversation, key, value }) {
    await waitFor('metadata ' + key, () => { const c = client.getConversation(conversation); return c && c.metadata && c.metadata[key] === value; });
    return { ok: true };
  },
  async markRead({ id }) { client.getMessage(id).isRead = true; return { ok: true }; },
  async waitStatus({ id, identity, status }) {
    await waitFor('recipient status ' + status, () => client.getMessage(id).recipientStatus[identity] === status);
    return { readStatus: client.getMessage(id).readStatus };
  },
  async deleteAll({ id }) { client.getMessage(id).delete(layer.Constants.DELETION_MODE.ALL); return { ok: true }; },
  async waitGone({ id }) {
    await waitFor('message deleted ' + id, () => { const m = client.getMessage(id); return !m || m.isDestroyed; });
    return { ok: true };
  },
  async disconnect() {
    client.socketManager.close();
    await waitFor('socket closed', () => !client.socketManager.isOpen);
    return { synced: seen.synced };
  },
  async reconnect() {
    const before = seen.synced;
    client.socketManager.connect();
    await waitFor('replay (synced event)', () => seen.synced > before);
    return { synced: seen.synced };
  },
  async status() { return { errors: seen.errors }; },
};

process.on('message', async (msg) => {
  try {
    const result = await commands[msg.cmd](msg.args || {});
    process.send({ seq: msg.seq, ok: true, result });
  } catch (e) {
    process.send({ seq: msg.seq, ok: false, error: String(e && e.stack || e) });
  }
});
process.send({ ready: true });
