/**
 * vitest globalSetup (vitest.config.ts, vitest.faults.config.ts): one initdb per test run, which
 * every cluster of the run copies instead of running initdb itself, as PostgreSQL's own test
 * suites do. initdb costs ~1 s of CPU (its bootstrap backend builds the catalogs); a copy of its
 * 39 MB takes ~0.1 s. The run's suites start dozens of clusters, and in the CI matrix they share
 * two cores with another environment's.
 *
 * What the clusters get is the same: the template is made with the arguments Cluster.create used
 * (INITDB_ARGS) by the same initdb, as the same OS user; each cluster appends its own settings to
 * its copy's postgresql.conf. Without the template (a test run outside vitest's global setup)
 * Cluster.create runs initdb itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GlobalSetupContext } from 'vitest/node';
import { CLUSTER_TMPDIR, initdb } from './cluster';

export default function setup({ provide }: GlobalSetupContext): () => void {
  const dir = fs.mkdtempSync(path.join(CLUSTER_TMPDIR, 'pgnw-initdb-template-'));
  fs.chmodSync(dir, 0o755);
  const datadir = path.join(dir, 'data');
  initdb(dir, datadir);
  provide('initdbTemplate', datadir);
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
