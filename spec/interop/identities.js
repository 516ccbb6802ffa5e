// spec/interop/identities.js - layer-websdk users against layer-server: profile changes (identities:change),
// auto presence going offline with the last socket, and user ids with spaces, '*' and non-ASCII letters.
// Usage: node identities.js <base> <identity secret> <admin token> profile|presence|ids
'use strict';
const assert = require('assert');
const http = require('http');
const forkUser = require('./fork_user');

const [, , base, secret, adminToken, scenario] = process.argv;
const step = (s) => console.log('interop: ' + s);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// layer-websdk's strictEncodeURI, which it gives its own user after login: encodeURIComponent, and !~'() as %XX too.
const idOf = (userId) => 'layer:///identities/' + encodeURIComponent(userId).replace(/[!~'()]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// POST /admin/<path>, as a test harness changes an identity behind the users' backs.
function admin(path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + '/admin/' + path, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + adminToken, 'Content-Type': 'application/json' },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => (res.statusCode < 300 ? resolve(JSON.parse(text)) : reject(new Error('admin ' + path + ': ' + res.statusCode + ' ' + text))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function profile(start) {
  const alice = start('alice');
  const bob = start('bob');
  await Promise.all([alice.ready, bob.ready]);
  await alice.call('connect');
  await bob.call('connect');
  const conv = await alice.call('createConversation', { participants: ['bob'] });
  await bob.call('waitConversation', { id: conv.id });
  assert.strictEqual((await alice.call('identity', { id: idOf('bob') })).displayName, 'BOB');

  await admin('identities', { user_id: 'bob', display_name: 'Robert B.', first_name: 'Robert' });
  const seen = await alice.call('waitIdentityChange', { id: idOf('bob'), property: 'displayName', newValue: 'Robert B.' });
  assert.strictEqual(seen.displayName, 'Robert B.');
  await alice.call('waitIdentityChange', { id: idOf('bob'), property: 'firstName', newValue: 'Robert' });
  const own = await bob.call('waitIdentityChange', { id: idOf('bob'), property: 'displayName', newValue: 'Robert B.' });
  assert.strictEqual((await bob.call('me')).displayName, own.displayName);
  step('an admin profile change reached identities:change of the peer and of the user themself');

  // bob logs in on a second device with a new display_name claim in the identity token
  const bob2 = start('bob', 'Bobby');
  await bob2.ready;
  await bob2.call('connect');
  await alice.call('waitIdentityChange', { id: idOf('bob'), property: 'displayName', newValue: 'Bobby' });
  await bob.call('waitIdentityChange', { id: idOf('bob'), property: 'displayName', newValue: 'Bobby' });
  step('a new display_name claim at login reached identities:change');
}

async function presence(start) {
  const alice = start('alice');
  const bob = start('bob');
  await Promise.all([alice.ready, bob.ready]);
  await alice.call('connect');
  await bob.call('connect');
  const conv = await alice.call('createConversation', { participants: ['bob'] });
  await bob.call('waitConversation', { id: conv.id });

  // a second device: layer-websdk sets presence to auto on connect, which shows bob available
  const bob2 = start('bob');
  await bob2.ready;
  await bob2.call('connect');
  await alice.call('waitIdentityChange', { id: idOf('bob'), property: 'status', newValue: 'available' });
  step('bob (presence auto) shows available to alice');

  await bob.call('disconnect');
  await sleep(500);
  const early = (await alice.call('identityChanges', { id: idOf('bob') })).filter((c) => c.property === 'status' && c.newValue === 'offline');
  assert.deepStrictEqual(early, [], 'bob still has a socket open');
  assert.strictEqual((await alice.call('identity', { id: idOf('bob') })).status, 'available');
  bob2.child.kill(); // the last socket goes as a closed tab's does
  await bob2.exited;
  const off = await alice.call('waitIdentityChange', { id: idOf('bob'), property: 'status', newValue: 'offline' });
  assert.strictEqual(off.status, 'offline');
  step('bob went offline when his last socket closed, not before');
}

// jane doe, a*b, josé and o'brien use layer-websdk; the spec's Lua client (luaUser) joins the chat.
async function ids(start, luaUser) {
  const names = ['jane doe', 'a*b', 'josé', "o'brien"];
  const sdk = names.map((n) => start(n));
  const [jane, star, jose, obrien] = sdk;
  await Promise.all(sdk.map((u) => u.ready));
  const me = [];
  for (const u of sdk) me.push(await u.call('connect'));
  assert.deepStrictEqual(me.map((m) => m.user), ['layer:///identities/jane%20doe', 'layer:///identities/a*b',
    'layer:///identities/jos%C3%A9', 'layer:///identities/o%27brien']);
  assert.deepStrictEqual(me.map((m) => m.displayName), ['JANE DOE', 'A*B', 'JOSÉ', "O'BRIEN"]);
  step('users "jane doe", "a*b", "josé" and "o\'brien" logged in');

  const all = names.concat([luaUser]);
  const conv = await jane.call('createConversation', { participants: all.slice(1) });
  for (const [i, u] of sdk.entries()) {
    const c = await u.call('waitConversation', { id: conv.id });
    assert.deepStrictEqual(c.participants, all.slice().sort());
    assert.deepStrictEqual(c.participantIds, all.map(idOf).sort());
    assert.ok(c.participantIds.includes(me[i].user), names[i] + ' finds their own identity among the participants');
  }
  const m1 = await jane.call('send', { conversation: conv.id, body: 'hola from jane' });
  for (const u of [star, jose, obrien]) {
    await u.call('waitMessage', { id: m1.id, body: 'hola from jane' });
    const got = await u.call('waitMessageText', { body: 'hola from jane' });
    assert.deepStrictEqual(got.sender, { id: idOf('jane doe'), userId: 'jane doe', displayName: 'JANE DOE', status: got.sender.status });
  }
  const m2 = await star.call('send', { conversation: conv.id, body: 'hi from a*b' });
  await jane.call('waitMessage', { id: m2.id, body: 'hi from a*b' });
  await jose.call('waitMessage', { id: m2.id, body: 'hi from a*b' });
  const m3 = await obrien.call('send', { conversation: conv.id, body: "hi from o'brien" });
  await jane.call('waitMessage', { id: m3.id, body: "hi from o'brien" });
  assert.deepStrictEqual((await obrien.call('waitMessageText', { body: "hi from o'brien" })).sender.id, me[3].user,
    "o'brien's own message comes from o'brien's own identity");
  step('the SDK users chat in a conversation with the Lua user');

  // the Lua client answers in the group and opens a 1:1 conversation with josé
  for (const u of sdk) {
    const got = await u.call('waitMessageText', { body: 'hello from ' + luaUser });
    assert.strictEqual(got.conversation, conv.id);
    assert.deepStrictEqual(got.sender, { id: idOf(luaUser), userId: luaUser, displayName: 'Zoë L.', status: got.sender.status });
  }
  const q = await jose.call('waitMessageText', { body: '¿qué tal, josé?' });
  assert.notStrictEqual(q.conversation, conv.id);
  assert.deepStrictEqual((await jose.call('waitConversation', { id: q.conversation })).participants, ['josé', luaUser].sort());
  await jose.call('send', { conversation: q.conversation, body: 'bien, ' + luaUser });
  step('the Lua user\'s messages reached the SDK users, and josé answered in the 1:1 conversation');

  const errs = [];
  for (const u of sdk) errs.push(...(await u.call('status')).errors);
  assert.deepStrictEqual(errs, [], 'no send errors reported by the SDK');
}

async function main() {
  const started = [];
  const start = (name, ...extra) => {
    const u = forkUser(name, base, secret, ...extra);
    started.push(u);
    return u;
  };
  try {
    if (scenario === 'profile') await profile(start);
    else if (scenario === 'presence') await presence(start);
    else if (scenario === 'ids') await ids(start, process.argv[6]);
    else throw new Error('unknown scenario ' + scenario);
    console.log('INTEROP OK');
  } finally {
    for (const u of started) u.child.kill();
  }
}

main().then(() => process.exit(0), (e) => { console.error('INTEROP FAILED: ' + (e && e.stack || e)); process.exit(1); });
