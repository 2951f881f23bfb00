/**
 * test/unit/manifest-cases.json against the server's manifest reader (extension/manifest.c, manifest_parse.c):
 * each definition, rendered to <name>.json as deploy writes it, alone in the worker directory of a
 * running server, read back through node_worker.workers ('stopped': accepted; 'failed' with
 * "invalid manifest: <reason>": refused). The same table runs against src/define.ts in
 * test/unit/manifest-cases.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from './helpers/cluster';
import { loadManifestCases, ManifestCase, renderManifest } from './unit/manifest-cases';

const cases = loadManifestCases().filter((c) => c.serverSkip === undefined);

describe('manifest edge cases against the server', () => {
  let cluster: Cluster;
  let client: pg.Client;
  let dir: string;
  let owner: fs.Stats;

  beforeAll(async () => {
    cluster = await Cluster.create();
    await cluster.start();
    client = await cluster.client();
    await client.query('CREATE EXTENSION pg_node_worker');
    dir = path.join(cluster.datadir, 'node_worker');
    owner = fs.statSync(cluster.datadir);
    fs.mkdirSync(dir, { mode: 0o750 });
    fs.chownSync(dir, owner.uid, owner.gid);
  }, 60000);
  afterAll(async () => {
    await client?.end();
    await cluster?.destroy();
  });

  /** Leaves only this case's manifest and bundle in the worker directory. */
  function place(c: ManifestCase, manifest: string): void {
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    const name = String(c.definition.name);
    for (const [file, text] of [[`${name}.js`, 'module.exports = {};\n'], [`${name}.json`, manifest]]) {
      fs.writeFileSync(path.join(dir, file), text, { mode: 0o640 });
      fs.chownSync(path.join(dir, file), owner.uid, owner.gid);
    }
  }

  async function readBack(): Promise<{ state: string; last_error: string | null }> {
    const { rows } = await client.query<{ state: string; last_error: string | null }>('SELECT state, last_error FROM node_worker.workers');
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  it.each(cases.map((c) => [c.case, c] as const))('%s', async (_, c) => {
    place(c, renderManifest(c));
    const row = await readBack();
    if (c.serverAccepts ?? c.accept) {
      // a worker that starts only when launched shows as deployed until it is
      expect(row).toEqual({ state: c.definition.autostart === false ? 'deployed' : 'stopped', last_error: null });
    } else {
      expect(row.state).toBe('failed');
      expect(row.last_error).toMatch(/^invalid manifest: /);
      expect(row.last_error).toContain(c.server!);
    }
  });

  // a hand-written manifest may say "no names" with an empty string, as define.ts says it by leaving the list out
  it('the server takes an empty searchPath or callers list as none', async () => {
    const c = { case: 'empty lists', definition: { name: 'mc_empty' }, accept: true };
    const manifest = (field: string) => JSON.stringify({ ...JSON.parse(renderManifest(c)), [field]: '' });
    for (const field of ['searchPath', 'callers']) {
      place(c, manifest(field));
      expect(await readBack()).toEqual({ state: 'stopped', last_error: null });
    }
  });
});
