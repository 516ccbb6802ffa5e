// check-vectors.js: re-runs the published layer-patch 1.2.1 on every vector in
// layer-patch/vectors.json and reports any whose result differs from `expect`.
//   npm install --prefix bench/node && node spec/data/check-vectors.js
'use strict';
const fs = require('fs');
const path = require('path');
const Parser = require(path.join(__dirname, '..', '..', 'bench', 'node', 'node_modules', 'layer-patch'));
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, 'layer-patch', 'vectors.json'), 'utf8'));

let same = 0, differ = 0;
for (const v of vectors) {
  const cache = JSON.parse(JSON.stringify(v.cache || {}));
  const object = JSON.parse(JSON.stringify(v.object));
  const options = v.options || {};
  const config = { returnIds: Boolean(options.returnIds) };
  // As the vectors were made: a lookup only with a cache, a miss is null,
  // creation only when asked for.
  if (v.cache && options.getObjectCallback !== false) config.getObjectCallback = (id) => (id in cache ? cache[id] : null);
  if (options.createObjectCallback) config.createObjectCallback = (id, obj) => { cache[id] = obj; return obj; };
  if (options.changeCallbacks) {
    config.changeCallbacks = {};
    for (const type of Object.keys(options.changeCallbacks)) {
      config.changeCallbacks[type] = {};
      for (const key of options.changeCallbacks[type]) config.changeCallbacks[type][key] = () => {};
    }
  }
  const parser = new Parser(config);
  let threw = false;
  try {
    parser.parse({ object, type: options.type || 'Conversation', operations: v.operations });
  } catch (e) { threw = true; }
  const ok = v.error ? threw : (!threw && JSON.stringify(object) === JSON.stringify(v.expect));
  if (ok) same++; else { differ++; console.log('differs: ' + v.name); }
}
console.log(`${same} vectors reproduced, ${differ} differ`);
process.exit(differ ? 1 : 0);
