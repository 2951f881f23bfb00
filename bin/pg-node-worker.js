#!/usr/bin/env node
'use strict';
// the CLI (and the installed launcher, which runs the system's node) needs Node 18 or later
if (Number(process.versions.node.split('.')[0]) < 18) {
  process.stderr.write('pg-node-worker: needs Node.js 18 or later (this is ' + process.version + ')\n');
  process.exit(1);
}
let main;
try {
  main = require('../dist/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    process.stderr.write('pg-node-worker: the CLI is not built: run `npm run build` in ' + require('path').resolve(__dirname, '..') + '\n');
    process.exit(1);
  }
  throw e;
}
main.cli(process.argv.slice(2));
