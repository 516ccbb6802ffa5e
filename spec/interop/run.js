// spec/interop/run.js - drives two layer-websdk users (separate processes) against layer-server and checks what the SDK reports.
'use strict';
const assert = require('assert');
const forkUser = require('./fork_user');

const [, , base, secret] = process.argv;
const user = (name) => forkUser(name, base, secret);

const step = (s) => console.log('interop: ' + s);

async function main() {
  const alice = user('alice');
  const bob = user('bob');
  await Promise.all([alice.ready, bob.ready]);
  try {
    const a = await alice.call('connect');
    const b = await bob.call('connect');
    assert.strictEqual(a.user, 'layer:///identities/alice');
    assert.strictEqual(b.displayName, 'BOB');
    assert.ok(a.challenges >= 1);
    step('both users logged in through the nonce/identity-token challenge');

    const conv = await alice.call('createConversation', { participants: ['bob'] });
    assert.strictEqual(conv.result, 'Created');
    const again = await alice.call('createConversation', { participants: ['bob'] });
    assert.strictEqual(again.id, conv.id, 'distinct conversation found again');
    const seenByBob = await bob.call('waitConversation', { id: conv.id });
    assert.deepStrictEqual(seenByBob.participants, ['alice', 'bob']);
    step('distinct conversation created (' + conv.id + ') and seen by bob');

    const m1 = await alice.call('send', { conversation: conv.id, body: 'hello bob' });
    await bob.call('waitMessage', { id: m1.id, body: 'hello bob' });
    const m2 = await bob.call('send', { conversation: conv.id, body: 'hi alice' });
    await alice.call('waitMessage', { id: m2.id, body: 'hi alice' });
    step('messages exchanged through change packets');

    await alice.call('setMetadata', { conversation: conv.id, key: 'title', value: 'Interop chat' });
    await bob.call('waitMetadata', { conversation: conv.id, key: 'title', value: 'Interop chat' });
    step('metadata change seen by the other user');

    await bob.call('markRead', { id: m1.id });
    const st = await alice.call('waitStatus', { id: m1.id, identity: 'layer:///identities/bob', status: 'read' });
    assert.strictEqual(st.readStatus, 'ALL');
    step('read receipt turned into recipient_status "read"');

    await alice.call('deleteAll', { id: m1.id });
    await bob.call('waitGone', { id: m1.id });
    step('message deleted for all participants');

    await bob.call('disconnect');
    const m3 = await alice.call('send', { conversation: conv.id, body: 'while you were away 1' });
    const m4 = await alice.call('send', { conversation: conv.id, body: 'while you were away 2' });
    assert.strictEqual((await bob.call('hasMessage', { id: m3.id })).has, false, 'bob is really offline');
    await bob.call('reconnect');
    await bob.call('waitMessage', { id: m3.id, body: 'while you were away 1' });
    await bob.call('waitMessage', { id: m4.id, body: 'while you were away 2' });
    step('bob reconnected and received the missed messages through Event.replay');

    const errs = (await alice.call('status')).errors.concat((await bob.call('status')).errors);
    assert.deepStrictEqual(errs, [], 'no send errors reported by the SDK');
    console.log('INTEROP OK');
  } finally {
    alice.child.kill();
    bob.child.kill();
  }
}

main().then(() => process.exit(0), (e) => { console.error('INTEROP FAILED: ' + (e && e.stack || e)); process.exit(1); });
