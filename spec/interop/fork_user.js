// spec/interop/fork_user.js - starts one user.js process (one layer-websdk client) and calls its commands over IPC.
'use strict';
const { fork } = require('child_process');
const path = require('path');

const env = Object.assign({}, process.env, { NODE_PATH: path.join(__dirname, 'node', 'node_modules') });

// extra: more user.js arguments (a display name for the identity token).
module.exports = function user(name, base, secret, ...extra) {
  const child = fork(path.join(__dirname, 'user.js'), [name, base, secret, ...extra],
    { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let seq = 0;
  const waiting = new Map();
  let readyResolve;
  const ready = new Promise((r) => { readyResolve = r; });
  const exited = new Promise((r) => child.on('exit', r));
  child.on('message', (m) => {
    if (m.ready) return readyResolve();
    const w = waiting.get(m.seq);
    waiting.delete(m.seq);
    if (m.ok) w.resolve(m.result); else w.reject(new Error(name + ': ' + m.error));
  });
  child.on('exit', (code) => { for (const w of waiting.values()) w.reject(new Error(name + ' exited ' + code)); });
  return {
    child,
    ready,
    exited,
    call(cmd, args) {
      seq += 1;
      const s = seq;
      return new Promise((resolve, reject) => { waiting.set(s, { resolve, reject }); child.send({ seq: s, cmd, args }); });
    },
  };
};
