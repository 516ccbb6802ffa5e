// patch_engine.js - measures layer-patch@1.2.1 (Node) on the same operation stream as
// bench/patch_engine.c, configured the way layer-websdk configures it (change callbacks on).
//
//   node bench/patch_engine.js STREAM.json CANONICAL_OUT [passes]
//
// layer-patch is installed by the driver with `npm install --prefix bench/node`.
'use strict';
const fs = require('fs');
const path = require('path');
const Parser = require(path.join(__dirname, 'node', 'node_modules', 'layer-patch'));

const [streamPath, outPath, passesArg] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node patch_engine.js STREAM.json CANONICAL_OUT [passes]');
  process.exit(1);
}
const passes = Number(passesArg || 7);
const stream = JSON.parse(fs.readFileSync(streamPath, 'utf8'));
const objects = stream.objects;
const patches = stream.patches; // pre-parsed: [{type, ops}]
let nOps = 0;
for (const p of patches) nOps += p.ops.length;

// The consumer of change reports: websdk's _handlePatchEvent gets (object, new, old, paths).
let nChanges = 0;
const onChange = function (object, newValue, oldValue, paths) { nChanges++; };
const parser = new Parser({
  getObjectCallback: (id) => objects[id], // the client's cache lookup (getObject)
  changeCallbacks: { Conversation: { all: onChange }, Message: { all: onChange } },
});

let conv, msg;
const secs = [];
// Pass -1 warms the JIT; it is not counted.
for (let pass = -1; pass < passes; pass++) {
  // Fresh copies of the base objects (layer-patch mutates in place); not timed.
  conv = JSON.parse(JSON.stringify(stream.conversation));
  msg = JSON.parse(JSON.stringify(stream.message));
  nChanges = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < patches.length; i++) {
    const p = patches[i];
    parser.parse({ object: p.type === 'Message' ? msg : conv, type: p.type, operations: p.ops });
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (pass >= 0) secs.push(dt);
}

function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = canonical(v[k]);
    return o;
  }
  return v;
}
fs.writeFileSync(outPath, JSON.stringify({ conversation: canonical(conv), message: canonical(msg) }) + '\n');

secs.sort((a, b) => a - b);
const med = secs[passes >> 1];
console.log(`RESULT impl=JS patches=${patches.length} ops=${nOps} changes=${nChanges} passes=${passes} ` +
  `median_s=${med.toFixed(6)} best_s=${secs[0].toFixed(6)} ops_per_s=${Math.round(nOps / med)} ` +
  `patches_per_s=${Math.round(patches.length / med)}`);
