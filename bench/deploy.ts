/**
 * Deploying the bench's workers (bench/workers/) to a throwaway cluster of test/helpers/cluster.ts.
 *
 * - benchWorker(file): the path of a worker file deployed as it is (Cluster.deployFile);
 * - deployBenchTemplate(c, template, ...args): as Cluster.deployTemplate does for the tests'
 *   templates, writes a two-line entry, `export default <template>(...args)` of
 *   bench/workers/<template>.ts, into the cluster's source directory and deploys it. The
 *   arguments are checked against the template's parameters and must be plain JSON values; the
 *   first is the worker's name.
 */
import * as path from 'node:path';
import type { Cluster } from '../test/helpers/cluster';
import type * as Templates from './workers';

export const BENCH_WORKERS_DIR = path.join(__dirname, 'workers');

export type BenchTemplate = keyof typeof Templates;

/** The absolute path of a worker file of bench/workers. */
export function benchWorker(file: string): string {
  return path.join(BENCH_WORKERS_DIR, file);
}

export function deployBenchTemplate<K extends BenchTemplate>(c: Cluster, template: K, ...args: Parameters<(typeof Templates)[K]>): Promise<string> {
  const name = args[0];
  const list = args.map((a) => JSON.stringify(a)).join(', ');
  const source = `import { ${template} } from ${JSON.stringify(path.join(BENCH_WORKERS_DIR, template))};\nexport default ${template}(${list});\n`;
  return c.deploySource(name, source);
}
