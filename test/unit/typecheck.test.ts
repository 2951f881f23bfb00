/**
 * dev's type checker (src/cli/typecheck.ts) on files a test writes into a temp folder: a project
 * without `typescript` is told so once, one with it gets file:line:col diagnostics on every check.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTypeCheck } from '../../src/cli/typecheck';

const REPO = path.resolve(__dirname, '..', '..');
const dirs: string[] = [];

function project(withTypeScript: boolean, source: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-tc-'));
  dirs.push(dir);
  if (withTypeScript) fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  const file = path.join(dir, 'w.ts');
  fs.writeFileSync(file, source);
  return file;
}

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const WORKER = `import { defineWorker } from 'pg-node-worker';
export default defineWorker({
  name: 'tc',
  async main(ctx) {
    const n: bigint = 3n;
    ctx.log.info(NUMBER);
  },
});
`;

describe('the type checker beside dev', () => {
  it('says once that a project without typescript is not type-checked', () => {
    const out: string[] = [];
    const err: string[] = [];
    const file = project(false, WORKER.replace('NUMBER', 'n'));
    expect(startTypeCheck(file, { out: (l) => out.push(l), err: (l) => err.push(l) })).toBeUndefined();
    expect(out).toEqual([]);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/types are not checked: the package "typescript" is not installed for .*w\.ts \(npm install -D typescript/);
  });

  it('reports file:line:col diagnostics against the SDK types, and a clean check after a fix', async () => {
    const out: string[] = [];
    const file = project(true, WORKER.replace('NUMBER', 'n.toFixed(2)'));
    const checker = startTypeCheck(file, { out: (l) => out.push(l), err: (l) => out.push('err: ' + l) })!;
    try {
      await expect.poll(() => out.join('\n'), { timeout: 20000 }).toMatch(/^type check: 1 error \(the worker runs anyway\):$/m);
      // the report is one message, so nothing printed meanwhile can split it
      expect(out, out.join('\n')).toContain(
        `type check: 1 error (the worker runs anyway):\n  ${file}:6:20: error TS2339: Property 'toFixed' does not exist on type 'bigint'.`,
      );
      out.length = 0;
      // saved as an editor's safe write does (see test/dev.test.ts: save())
      fs.writeFileSync(file + '.saving', WORKER.replace('NUMBER', 'String(n)'));
      fs.renameSync(file + '.saving', file);
      await expect.poll(() => out, { timeout: 20000 }).toContain('type check: no errors');
    } finally {
      checker.close();
    }
  }, 45000);
});
