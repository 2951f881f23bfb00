/**
 * deploy's warning about bundled npm packages whose engines.node excludes the embedded Node
 * (src/cli/bundle.ts: bundledPackages, engineWarnings). No server: package folders in a temp dir;
 * test/cli.test.ts bundles a real package.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundledPackages, engineWarnings, type BundledPackage } from '../../src/cli/bundle';

const pkg = (name: string, engines?: string): BundledPackage => ({ dir: `/x/node_modules/${name}`, name, version: '1.0.0', engines });

describe('engineWarnings', () => {
  it('warns for a range that excludes the target, and only then', () => {
    const packages = [pkg('any'), pkg('old-ok', '>=14'), pkg('needs-20', '>=20.0.0'), pkg('split', '^18.17.0 || >=20.5.0')];
    expect(engineWarnings(packages, 'node24.11.1')).toEqual([]);
    expect(engineWarnings(packages, 'node18.20.4')).toEqual([
      'needs-20@1.0.0 requires Node >=20.0.0 (its engines.node) but the server embeds Node 18.20.4: the worker may fail at run time where it uses what that Node lacks',
    ]);
    expect(engineWarnings(packages, 'node20.4').map((w) => w.split(' ')[0])).toEqual(['split@1.0.0']);
    expect(engineWarnings(packages, 'node18').map((w) => w.split(' ')[0])).toEqual(['needs-20@1.0.0', 'split@1.0.0']);
  });

  it('names a range semver cannot read instead of guessing', () => {
    expect(engineWarnings([pkg('odd', 'the newest please')], 'node22.1')).toEqual([
      'odd@1.0.0 states engines.node "the newest please", which is not a version range',
    ]);
  });
});

describe('bundledPackages', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-engines-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };

  it('finds each package folder once, scoped and nested ones too, and reads its package.json', () => {
    put('node_modules/a/package.json', JSON.stringify({ name: 'a', version: '2.0.0', engines: { node: '>=22' } }));
    put('node_modules/@s/b/package.json', JSON.stringify({ name: '@s/b', version: '0.1.0' }));
    put('node_modules/a/node_modules/c/package.json', '{ not json');
    const inputs = Object.fromEntries(
      ['node_modules/a/index.js', 'node_modules/a/lib/x.js', 'node_modules/@s/b/dist/b.js', 'node_modules/a/node_modules/c/c.js', 'src/main.ts', '<define:process>']
        .map((k) => [k, { bytes: 1, imports: [] }]),
    );
    const found = bundledPackages({ inputs, outputs: {} }, root);
    expect(found.map((p) => [p.name, p.version, p.engines])).toEqual([
      ['a', '2.0.0', '>=22'],
      ['@s/b', '0.1.0', undefined],
      ['c', '?', undefined],
    ]);
  });

});
