/**
 * `pg-node-worker init` without a server: the files it writes, the Node version they target, and
 * what it refuses (test/init.test.ts runs a made project through npm install and npm test).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { esLibFor, esTargetFor, init, packageNameOf } from '../../src/cli/init';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-init-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const quiet = { pgConfig: '/nonexistent/pg_config', out: () => undefined, err: () => undefined };

describe('init', () => {
  it('writes the project, with the SDK spec given and the fallback target when pg_config cannot run', () => {
    const dir = path.join(tmp, 'My Workers');
    const written = init(dir, { ...quiet, sdk: 'pg-node-worker@0.1.0' });
    expect(written.sort()).toEqual(['.gitignore', 'package.json', 'test/hello.test.ts', 'tsconfig.json', 'workers/hello.ts']);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('my-workers');
    expect(pkg.devDependencies).toMatchObject({ 'pg-node-worker': 'pg-node-worker@0.1.0', '@types/node': '^18' });
    const ts = JSON.parse(fs.readFileSync(path.join(dir, 'tsconfig.json'), 'utf8'));
    expect(ts.compilerOptions).toMatchObject({ strict: true, target: 'ES2022', lib: ['ES2022'], noEmit: true });
  });

  it('takes a tarball path from where it runs, as file:ABSOLUTE', () => {
    const dir = path.join(tmp, 'p');
    init(dir, { ...quiet, sdk: './x/pg-node-worker-0.1.0.tgz' });
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg.devDependencies['pg-node-worker']).toBe(`file:${path.resolve('x/pg-node-worker-0.1.0.tgz')}`);
  });

  it('refuses a non-empty folder and writes nothing; --force writes only its own files', () => {
    const dir = path.join(tmp, 'taken');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    expect(() => init(dir, { ...quiet, sdk: 'x' })).toThrow(/taken is not empty \(notes\.txt\)/);
    expect(fs.readdirSync(dir)).toEqual(['notes.txt']);
    init(dir, { ...quiet, sdk: 'x', force: true });
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(fs.existsSync(path.join(dir, 'workers', 'hello.ts'))).toBe(true);
  });

  it('--force replaces a link instead of writing through it, and refuses a linked subfolder', () => {
    const dir = path.join(tmp, 'links');
    const victim = path.join(tmp, 'victim.txt');
    fs.mkdirSync(dir);
    fs.writeFileSync(victim, 'keep');
    fs.symlinkSync(victim, path.join(dir, 'package.json'));
    init(dir, { ...quiet, sdk: 'x', force: true });
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep');
    expect(fs.lstatSync(path.join(dir, 'package.json')).isFile()).toBe(true);
    const dir2 = path.join(tmp, 'links2');
    fs.mkdirSync(dir2);
    fs.symlinkSync(tmp, path.join(dir2, 'workers'));
    expect(() => init(dir2, { ...quiet, sdk: 'x', force: true })).toThrow(/links2\/workers exists and is not a directory \(init does not follow links\)/);
  });

  it('says when the SDK is not installed', () => {
    expect(() => init(path.join(tmp, 'n'), quiet)).toThrow(/cannot run \/nonexistent\/pg_config --sharedir .*name the SDK with --sdk/);
    expect(fs.existsSync(path.join(tmp, 'n'))).toBe(false);
  });

  it('targets what the embedded Node implements; names packages npm accepts', () => {
    expect([18, 20, 22, 24].map(esLibFor)).toEqual(['ES2022', 'ES2023', 'ES2024', 'ES2024']);
    expect([18, 20, 22, 24].map(esTargetFor)).toEqual(['ES2022', 'ES2023', 'ES2023', 'ES2023']);
    expect(packageNameOf('/x/.Hidden Dir!')).toBe('hidden-dir-');
    expect(packageNameOf('/')).toBe('workers');
  });
});
