// npm run build: tsc (dist/ with .d.ts for the SDK and the CLI), then esbuild bundles the
// in-server runtime (src/runtime/main.ts) into dist/runtime.js.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const t0 = Date.now();

const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  console.error(`build-ts: tsc failed (${tsc.status ?? tsc.signal})`);
  process.exit(1);
}

const entry = join(root, 'src', 'runtime', 'main.ts');
if (!existsSync(entry)) {
  console.error(`build-ts: ${relative(root, entry)} is missing: cannot build dist/runtime.js`);
  process.exit(1);
}
const esbuild = require('esbuild');
try {
  await esbuild.build({
    entryPoints: [entry],
    outfile: join(root, 'dist', 'runtime.js'),
    absWorkingDir: root,
    bundle: true,
    platform: 'node', // node built-ins stay external, everything else is bundled
    format: 'cjs',
    target: 'node18',
    minify: false,
    sourcemap: false,
    logLevel: 'warning',
  });
} catch {
  // esbuild already printed the errors
  console.error('build-ts: esbuild failed for dist/runtime.js');
  process.exit(1);
}
console.log(`build-ts: dist/ built in ${Date.now() - t0} ms`);
