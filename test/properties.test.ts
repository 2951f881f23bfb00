/**
 * Property-based tests (fast-check):
 *
 * - JS <-> PostgreSQL value conversion: for every type of the README's Values table (arrays
 *   too, NULLs, empty arrays, unicode, int8's ends, NaN/+-Infinity/-0, dates at the edges), a
 *   value bound as a parameter in the real worker comes back equal to what went in, is the
 *   value node-postgres sends and reads (the oracle: the server's text of the value, and
 *   node-postgres's parsed value), reads the same in single-value, few-row and many-row
 *   results; what PostgreSQL refuses, the worker refuses with a typed error.
 * - PostgreSQL -> JS over the server's whole date/timestamp range.
 * - NUL in text, values that cannot be sent: typed errors, never a truncated or made-up value.
 * - The manifest reader: arbitrary JSON, arbitrary bytes, mutated valid manifests, odd file
 *   names, through node_worker.workers and launch() (which re-read the files on every call) and
 *   through a server start (the postmaster's reader): never a crash, each invalid one reported
 *   with its file and reason, each valid one accepted with its fields.
 *
 * A failure prints fast-check's seed and path; replay one property with
 *   FC_SEED=<seed> FC_PATH=<path> npx vitest run test/properties.test.ts -t '<its name>'
 * PGNW_FC_RUNS=<n> multiplies the number of runs of every property.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CODEC,
  dateLiteralArb,
  dec,
  encInput,
  expectManifest,
  JS_MAX_MS,
  manifestCaseArb,
  NO_ORACLE,
  oddFileNameCaseArb,
  validManifestCaseArb,
  type ManifestCase,
  type ManifestExpectation,
  type Outcome,
  type PgLiteral,
  renderManifest,
  sameValue,
  textWithNulArb,
  timestampLiteralArb,
  VALUE_SPECS,
  type ValueSpec,
} from './helpers/arbitraries';
import { Cluster, waitFor } from './helpers/cluster';
import { evaluatorCluster, inWorker } from './helpers/evalWorker';
import { RESET, workerDir } from './helpers/faults';
import { runs } from './helpers/fc';

// node-postgres reads date and timestamp as local time: make that UTC, like the worker
const savedTz = process.env.TZ;
process.env.TZ = 'UTC';
// and sends Dates as UTC (BC years included)
pg.defaults.parseInputDatesAsUTC = true;
// the next test file may run in this process (vitest.config.ts: isolate false)
afterAll(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
  pg.defaults.parseInputDatesAsUTC = false;
});

/** what a crash of a server process looks like in the log */
const CRASH = new RegExp(`${RESET.source}|server process .* was terminated|PANIC:`);

const show = (v: unknown): string => {
  const s = fc.stringify(v);
  return s.length > 600 ? `${s.slice(0, 600)}... (${s.length} chars)` : s;
};

/** the fields of an error the worker reports */
const ERR_OF = `(e) => ({ name: e && e.name, code: e && e.code, isPgError: e instanceof PgError, message: String(e && e.message).slice(0, 300) })`;

/** a thrown error PostgreSQL or the runtime gives on purpose */
const typedError = (e: NonNullable<Outcome['e']>): boolean =>
  (e.isPgError === true && /^[0-9A-Z]{5}$/.test(e.code ?? '')) || (e.isPgError !== true && (e.name === 'TypeError' || e.name === 'RangeError'));

/** node-postgres's parsers, except numeric[] as text (its default parses numerics to floats) */
const ORACLE_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 1231 ? pg.types.getTypeParser(1009 as Parameters<typeof pg.types.getTypeParser>[0]) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

async function oracleQuery(client: pg.Client, text: string, param: unknown): Promise<Outcome> {
  try {
    const r = await client.query({ text, values: [param], types: ORACLE_TYPES });
    return { v: r.rows[0].v, t: r.rows[0].t };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { e: { code: err.code, message: err.message, isPgError: err.code !== undefined } };
  }
}

/** what the log shows of a server process crash (from byte `from`), or null */
function crashedSince(cluster: Cluster, from: number): string | null {
  const text = fs.readFileSync(cluster.logFile).subarray(from).toString('utf8');
  return text.match(CRASH)?.[0] ?? null;
}

/** Runs fn; if it throws (a hook: setup.ts prints logs only for failed tests), prints the server log first. */
async function withLog(cluster: Cluster, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    process.stderr.write(`\n----- server log of ${cluster.datadir} (last 150 lines) -----\n${cluster.logTail(150)}\n-----\n`);
    throw e;
  }
}

const logSize = (cluster: Cluster): number => {
  try {
    return fs.statSync(cluster.logFile).size;
  } catch {
    return 0;
  }
};

// =================================================================================== values

describe('JS <-> PostgreSQL value conversion (fast-check)', () => {
  let cluster: Cluster;
  let evaluatorPid: number;
  let postmasterStart: string;

  beforeAll(async () => {
    cluster = await evaluatorCluster();
    await withLog(cluster, async () => {
      evaluatorPid = (await cluster.workerPid('evaluator'))!;
      postmasterStart = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    });
  }, 60000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  /** Runs the values through the worker: one job for the whole batch. */
  async function inWorkerBatch(type: string, values: unknown[]): Promise<Outcome[]> {
    const input = JSON.stringify(values.map(encInput));
    const table = `pgnw_prop_${type.replace('[]', '_array')}`;
    const code = `${CODEC}
const errOf = ${ERR_OF};
const vals = dec(JSON.parse(${JSON.stringify(input)}));
const out = vals.map(() => ({}));
vals.forEach((v, i) => {
  const r = out[i];
  try { r.v = ctx.sql\`SELECT \${v}::${type} AS v\`[0].v; } catch (e) { r.e = errOf(e); return; }
  try { r.t = ctx.sql\`SELECT (\${v}::${type})::text AS t\`[0].t; } catch (e) { r.te = errOf(e); }
});
// the accepted values again, read back as one result of many rows (built column by column
// above 16 rows) and as one of a few rows (built row by row)
// a table per type: a cached plan keeps the parameter types it was prepared with
ctx.sql.unsafe('DROP TABLE IF EXISTS ${table}');
ctx.sql.unsafe('CREATE TEMP TABLE ${table} (i int, v ${type})');
try {
  vals.forEach((v, i) => {
    if (out[i].e) return;
    try { ctx.sql.unsafe('INSERT INTO ${table} VALUES ($1, $2)', [i, v]); } catch (e) { out[i].ie = errOf(e); }
  });
  for (const row of ctx.sql.unsafe('SELECT i, v FROM ${table} ORDER BY i')) out[row.i].cols = row.v;
  for (const row of ctx.sql.unsafe('SELECT i, v FROM ${table} ORDER BY i LIMIT 16')) out[row.i].flat = row.v;
} finally {
  ctx.sql.unsafe('DROP TABLE ${table}');
}
return JSON.stringify(enc(out));`;
    return dec(JSON.parse(await inWorker(cluster, code))) as Outcome[];
  }

  /** An array whose elements, at any depth, are all empty arrays. */
  const onlyEmptyArrays = (v: unknown): boolean => Array.isArray(v) && v.every(onlyEmptyArrays);

  /** Why the worker's outcome for v is wrong, or null. */
  function judge(spec: ValueSpec, v: unknown, w: Outcome & { ie?: Outcome['e'] }, o: Outcome): string | null {
    if (w.e) {
      if (!typedError(w.e)) return `the worker threw an untyped error: ${w.e.name}: ${w.e.message}`;
      if (o.e) {
        if (w.e.isPgError && o.e.code && w.e.code!.slice(0, 2) !== o.e.code.slice(0, 2))
          return `the worker's SQLSTATE ${w.e.code} (${w.e.message}) is not of the class of node-postgres's ${o.e.code} (${o.e.message})`;
        return null;
      }
      if (spec.allowedRefusal?.(v, w.e)) return null;
      return `the worker refused a value PostgreSQL accepts from node-postgres: ${w.e.name} ${w.e.code ?? ''}: ${w.e.message}`;
    }
    if (o.e && o.e.isPgError) return `the worker returned ${show(w.v)} where PostgreSQL refuses the value from node-postgres (${o.e.code}: ${o.e.message})`;
    if (w.te) return `the worker's ::text of the value failed: ${w.te.code}: ${w.te.message}`;
    if (!o.e && w.t !== o.t) return `the server saw another value: the worker's is ${JSON.stringify(w.t)}, node-postgres's ${JSON.stringify(o.t)}`;
    // PostgreSQL 17 reads '{{},{}}' as the empty array (15 and 16 refuse it), as it reads for node-postgres
    if (!spec.roundTrips(v, w.v) && !(onlyEmptyArrays(v) && w.t === '{}')) return `the round trip gave ${show(w.v)}`;
    if (!o.e) {
      const read = spec.fromPg(o.v);
      if (read !== NO_ORACLE && !sameValue(w.v, read)) return `the worker reads ${show(w.v)}, node-postgres ${show(read)}`;
    }
    if (w.ie) return `INSERT into a ${spec.type} column refused it: ${w.ie.code}: ${w.ie.message}`;
    if (!('cols' in w)) return 'missing from the many-row result';
    if (!sameValue(w.cols, w.v)) return `a many-row result reads ${show(w.cols)}, a single value ${show(w.v)}`;
    if ('flat' in w && !sameValue(w.flat, w.v)) return `a few-row result reads ${show(w.flat)}, a single value ${show(w.v)}`;
    return null;
  }

  async function checkValues(spec: ValueSpec, values: unknown[]): Promise<void> {
    const worker = await inWorkerBatch(spec.type, values);
    const client = await cluster.client();
    const oracle: Outcome[] = [];
    try {
      const text = `SELECT $1::${spec.type} AS v, ($1::${spec.type})::text AS t`;
      for (const v of values) oracle.push(await oracleQuery(client, text, (spec.toPg ?? ((x) => x))(v)));
    } finally {
      await client.end();
    }
    for (let i = 0; i < values.length; i++) {
      const why = judge(spec, values[i], worker[i], oracle[i]);
      if (why)
        throw new Error(
          `${spec.type}: ${show(values[i])}: ${why}\n  worker: ${show(worker[i])}\n  node-postgres: ${show(oracle[i])}`,
        );
    }
  }

  for (const spec of VALUE_SPECS) {
    it(`${spec.type}: a bound value comes back equal and as node-postgres reads it, or both refuse it`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(spec.arb, { minLength: 1, maxLength: 120, size: 'max' }), (values) => checkValues(spec, values)),
        runs(4, 8000),
      );
    }, 180000);
  }

  describe.each([
    ['date', dateLiteralArb()],
    ['timestamp', timestampLiteralArb(false)],
    ['timestamptz', timestampLiteralArb(true)],
  ] as const)('%s read from PostgreSQL', (type, arb) => {
    it(`anywhere in PostgreSQL's range: the instant rounded down to the ms (as node-postgres reads it), 'infinity', past a JS Date's range PgError 22008, never an Invalid Date`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(arb as fc.Arbitrary<PgLiteral>, { minLength: 1, maxLength: 120, size: 'max' }), async (lits) => {
          const texts = lits.map((l) => l.text);
          const code = `${CODEC}
const errOf = ${ERR_OF};
const texts = JSON.parse(${JSON.stringify(JSON.stringify(texts))});
const out = texts.map((t) => {
  const r = {};
  try { const row = ctx.sql\`SELECT \${t}::${type} AS v, (\${t}::${type})::text AS t\`[0]; r.v = row.v; r.t = row.t; } catch (e) { r.e = errOf(e); }
  return r;
});
try {
  const many = ctx.sql\`SELECT u.i::int AS i, u.t::${type} AS v FROM unnest(\${texts}::text[]) WITH ORDINALITY AS u(t, i) ORDER BY u.i\`;
  for (const row of many) out[row.i - 1].cols = row.v;
} catch (e) { out.forEach((r) => { r.colsError = errOf(e); }); }
return JSON.stringify(enc(out));`;
          const worker = dec(JSON.parse(await inWorker(cluster, code))) as (Outcome & { colsError?: Outcome['e'] })[];
          const client = await cluster.client();
          try {
            for (let i = 0; i < lits.length; i++) {
              const { text, ms } = lits[i];
              const w = worker[i];
              const o = await oracleQuery(client, `SELECT $1::${type} AS v`, text);
              const fail = (why: string) => {
                throw new Error(`${type} '${text}' (ms ${ms}): ${why}\n  worker: ${show(w)}\n  node-postgres: ${show(o)}`);
              };
              // past what a JS Date holds: a PgError 22008 saying so, never an Invalid Date
              const beyond = (m: number) => Number.isFinite(m) && Math.abs(m) > JS_MAX_MS;
              if (beyond(ms)) {
                if (w.v instanceof Date && Number.isNaN(w.v.getTime())) fail('an Invalid Date: the instant is past what a JS Date holds, and nothing says so');
                if (!(w.e?.isPgError && w.e.code === '22008')) fail('expected PgError 22008 (out of range for a JavaScript Date)');
              } else {
                if (w.e) fail('the worker could not read it');
                if (w.t !== text) fail(`the server's text is ${JSON.stringify(w.t)} (the generator's is wrong)`);
                if (ms === Infinity || ms === -Infinity) {
                  if (w.v !== (ms > 0 ? 'infinity' : '-infinity')) fail(`expected '${ms > 0 ? '' : '-'}infinity'`);
                } else {
                  if (!(w.v instanceof Date) || w.v.getTime() !== ms) fail(`expected the Date ${new Date(ms).toISOString()} (${ms})`);
                  if (o.v instanceof Date && !Number.isNaN(o.v.getTime()) && o.v.getTime() !== ms) fail('node-postgres reads another instant');
                }
              }
              // the many-row result holds every literal of the batch: one beyond makes it fail the same way
              if (lits.some((l) => beyond(l.ms))) {
                if (w.colsError?.code !== '22008') fail(`the many-row query should fail with 22008, got ${show(w.colsError ?? w.cols)}`);
              } else {
                if (w.colsError) fail(`the many-row query failed: ${w.colsError.code}: ${w.colsError.message}`);
                if (!sameValue(w.cols, w.v)) fail(`a many-row result reads ${show(w.cols)}`);
              }
            }
          } finally {
            await client.end();
          }
        }),
        runs(3, 8000),
      );
    }, 180000);
  });

  it('a string with NUL is refused with the SQLSTATE node-postgres gets (22021), never truncated', async () => {
    const TYPES = ['text', 'varchar', 'bpchar', 'name', 'text[]', 'varchar[]', 'json', 'jsonb', 'xml'];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(textWithNulArb, fc.constantFrom(...TYPES)), { minLength: 1, maxLength: 60, size: 'max' }), async (cases) => {
        const values = cases.map(([s, type]) => (type.endsWith('[]') ? ['x', s] : s));
        const code = `${CODEC}
const errOf = ${ERR_OF};
const cases = dec(JSON.parse(${JSON.stringify(JSON.stringify(encInput(cases.map(([, type], i) => [values[i], type]))))}));
return JSON.stringify(enc(cases.map(([v, type]) => {
  try { return { v: ctx.sql.unsafe('SELECT $1::' + type + ' AS v', [v])[0].v }; } catch (e) { return { e: errOf(e) }; }
})));`;
        const worker = dec(JSON.parse(await inWorker(cluster, code))) as Outcome[];
        const client = await cluster.client();
        try {
          for (let i = 0; i < cases.length; i++) {
            const type = cases[i][1];
            const o = await oracleQuery(client, `SELECT $1::${type} AS v`, values[i]);
            const w = worker[i];
            const where = `${show(values[i])} as ${type}:`;
            if (!o.e || o.e.code !== '22021') throw new Error(`${where} node-postgres was expected to get 22021: ${show(o)}`);
            if (!w.e) throw new Error(`${where} the worker returned ${show(w.v)}; PostgreSQL refuses NUL (node-postgres: ${o.e.code} ${o.e.message})`);
            if (!w.e.isPgError || w.e.code !== o.e.code)
              throw new Error(`${where} the worker threw ${w.e.name} ${w.e.code}: ${w.e.message}; node-postgres gets ${o.e.code}: ${o.e.message}`);
          }
        } finally {
          await client.end();
        }
      }),
      runs(3),
    );
  }, 180000);

  it('a value that cannot be sent (function, symbol, invalid Date, circular or bigint-holding object), alone or in an array, is a TypeError', async () => {
    const KINDS = ['function', 'asyncFunction', 'class', 'symbol', 'invalidDate', 'circular', 'bigintInObject'] as const;
    const WRAPS = ['scalar', 'array', 'arrayAfterNull', 'array2d'] as const;
    const TYPES = ['text', 'int4', 'int8', 'float8', 'numeric', 'bool', 'bytea', 'json', 'jsonb', 'date', 'timestamptz', 'uuid'];
    const caseArb = fc
      .record({ kind: fc.constantFrom(...KINDS), wrap: fc.constantFrom(...WRAPS), type: fc.constantFrom(...TYPES) })
      // JSON.stringify turns an invalid Date into null: as JSON (not in an array) that is JSON's rule
      .filter((c) => !(c.kind === 'invalidDate' && c.wrap === 'scalar' && c.type.startsWith('json')));
    await fc.assert(
      fc.asyncProperty(fc.array(caseArb, { minLength: 1, maxLength: 40, size: 'max' }), async (cases) => {
        const code = `${CODEC}
const errOf = ${ERR_OF};
const make = (kind) => {
  switch (kind) {
    case 'function': return () => 1;
    case 'asyncFunction': return async () => 1;
    case 'class': return class Thing {};
    case 'symbol': return Symbol('s');
    case 'invalidDate': return new Date(NaN);
    case 'circular': { const o = { a: 1 }; o.self = o; return o; }
    case 'bigintInObject': return { n: 1n };
  }
};
const wrapIn = (x, wrap) => wrap === 'scalar' ? x : wrap === 'array' ? [x] : wrap === 'arrayAfterNull' ? [null, x] : [[x]];
const cases = JSON.parse(${JSON.stringify(JSON.stringify(cases))});
const out = cases.map((c) => {
  const type = c.wrap === 'scalar' ? c.type : c.type + '[]';
  let r;
  try { r = { v: ctx.sql.unsafe('SELECT $1::' + type + ' AS v', [wrapIn(make(c.kind), c.wrap)])[0].v }; } catch (e) { r = { e: errOf(e) }; }
  try { r.after = ctx.sql\`SELECT 1 AS one\`[0].one; } catch (e) { r.afterError = errOf(e); }
  return r;
});
return JSON.stringify(enc(out));`;
        const worker = dec(JSON.parse(await inWorker(cluster, code))) as (Outcome & { after?: number; afterError?: Outcome['e'] })[];
        cases.forEach((c, i) => {
          const w = worker[i];
          const where = `${c.kind} (${c.wrap}) as ${c.type}${c.wrap === 'scalar' ? '' : '[]'}:`;
          if (!w.e) throw new Error(`${where} the worker sent it and got back ${show(w.v)}; the README says a value that cannot be sent is a TypeError`);
          if (w.e.name !== 'TypeError' || w.e.isPgError) throw new Error(`${where} expected a TypeError, got ${w.e.name} ${w.e.code ?? ''}: ${w.e.message}`);
          if (w.after !== 1) throw new Error(`${where} the next statement failed: ${show(w.afterError)}`);
        });
      }),
      runs(3),
    );
  }, 180000);

  it('the worker never crashed, restarted or reset the server meanwhile', async () => {
    expect(crashedSince(cluster, 0)).toBeNull();
    expect(await cluster.workerPid('evaluator')).toBe(evaluatorPid);
    expect((await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t).toBe(postmasterStart);
  });
});

// =================================================================================== manifests

interface WorkerRow {
  raw: Buffer;
  state: string;
  database: string | null;
  role: string | null;
  last_error: string | null;
  bundle_sha256: string | null;
}

interface Written {
  c: ManifestCase;
  name: string;
  fileName: Buffer;
  content: Buffer;
  path: Buffer;
  expect: ManifestExpectation;
}

describe('the manifest reader (fast-check)', () => {
  let cluster: Cluster;
  let dir: string;
  let owner: { uid: number; gid: number };
  let noopBundle: Buffer;
  let batch = 0;

  beforeAll(async () => {
    cluster = await Cluster.create({ settings: { max_worker_processes: 48, 'node_worker.max_failures': 2 } });
    await withLog(cluster, async () => {
      await cluster.deployFile('properties-noop.ts');
      dir = workerDir(cluster);
      noopBundle = fs.readFileSync(path.join(dir, 'noop.js'));
      const st = fs.statSync(cluster.datadir);
      owner = { uid: st.uid, gid: st.gid };
      await cluster.start();
      await cluster.query('CREATE EXTENSION pg_node_worker');
    });
  }, 60000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  /** Writes a file into the worker directory as deploy would (owner of the data directory, 0640). */
  function put(fileName: Buffer, content: Buffer): Buffer {
    const p = Buffer.concat([Buffer.from(`${dir}/`), fileName]);
    fs.writeFileSync(p, content, { mode: 0o640 });
    fs.chmodSync(p, 0o640);
    if (process.getuid?.() === 0) fs.lchownSync(p, owner.uid, owner.gid);
    return p;
  }

  function writeBatch(cases: ManifestCase[]): Written[] {
    const b = ++batch;
    return cases.map((c, i) => {
      const name = `p${b}_${i}`;
      const { fileName, content } = renderManifest(c, name);
      const expect = expectManifest(fileName, content, dir);
      return { c, name, fileName, content, path: put(fileName, content), expect };
    });
  }

  const removeAll = (paths: Buffer[]) => {
    for (const p of paths) fs.rmSync(p, { force: true });
  };

  const describeFile = (f: Written) =>
    `file ${show(f.fileName.toString('latin1'))} (${f.content.length} bytes: ${show(f.content.toString('utf8').slice(0, 300))}), expected ${show(f.expect)}`;

  /** the base name as the view shows it: at most 63 bytes of the file name without ".json" */
  const viewName = (f: Written) => f.fileName.subarray(0, Math.min(63, f.fileName.length - 5)).toString('latin1');

  async function workerRows(): Promise<WorkerRow[]> {
    return cluster.query<WorkerRow>('SELECT textsend(name) AS raw, state, database, role, last_error, bundle_sha256 FROM node_worker.workers');
  }

  /** rows of node_worker.workers by raw name, before a batch is written */
  async function rowCounts(): Promise<Map<string, number>> {
    const before = new Map<string, number>();
    for (const r of await workerRows()) before.set(r.raw.toString('latin1'), (before.get(r.raw.toString('latin1')) ?? 0) + 1);
    return before;
  }

  /** the rows that were not there before */
  function freshRows(before: Map<string, number>, rows: WorkerRow[]): WorkerRow[] {
    const left = new Map(before);
    return rows.filter((r) => {
      const k = r.raw.toString('latin1');
      if ((left.get(k) ?? 0) === 0) return true;
      left.set(k, left.get(k)! - 1);
      return false;
    });
  }

  const fail = (why: string, f?: Written): never => {
    throw new Error(`${why}${f ? `\n  ${describeFile(f)}` : ''}`);
  };

  /** every row's name is valid UTF-8 (text that is not cannot even be compared or converted) */
  function checkUtf8(rows: WorkerRow[], files: Written[]) {
    for (const r of rows) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(r.raw);
      } catch {
        const f = files.find((x) => viewName(x) === r.raw.toString('latin1'));
        fail(`node_worker.workers shows a name that is not valid UTF-8: ${show(r.raw.toString('latin1'))} (bytes ${r.raw.toString('hex')})`, f);
      }
    }
  }

  const FILE_NAME_REASON = /^invalid manifest: file name is not (a|a valid) worker name followed by "\.json"$/;

  it('node_worker.workers and launch() re-read every manifest: valid ones shown with their fields, invalid ones with the reason, never a crash', async () => {
    const pmStart = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
    const startLog = logSize(cluster);
    const seen = { valid: 0, invalid: 0, badFileName: 0, ignored: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(manifestCaseArb, { minLength: 1, maxLength: 40, size: 'max' }), async (cases) => {
        const before = await rowCounts();
        const files = writeBatch(cases);
        try {
          const rows = await workerRows();
          checkUtf8(rows, files);
          const fresh = freshRows(before, rows);
          const listed = files.filter((f) => f.expect.kind !== 'ignored');
          if (fresh.length !== listed.length)
            fail(`${fresh.length} new rows in node_worker.workers for ${listed.length} manifests: ${show(fresh.map((r) => r.raw.toString('latin1')))}`);
          const byName = new Map(fresh.map((r) => [r.raw.toString('latin1'), r]));
          let badFileNames = 0;
          for (const f of listed) {
            const exp = f.expect;
            if (!/^[A-Za-z_][A-Za-z0-9_-]{0,62}\.json$/.test(f.fileName.toString('latin1'))) {
              badFileNames++;
              continue;
            }
            seen[exp.kind]++;
            const base = f.fileName.toString('latin1').slice(0, -5);
            const r = byName.get(base) ?? fail(`no row for ${base}`, f);
            if (exp.kind === 'valid') {
              const state = exp.autostart ? 'stopped' : 'deployed';
              if (r.state !== state || r.last_error !== null) fail(`a valid manifest shown as ${r.state} (expected ${state}): ${r.last_error}`, f);
              if (r.database !== exp.database || r.role !== exp.role || r.bundle_sha256 !== exp.sha256)
                fail(`fields ${show({ database: r.database, role: r.role, sha256: r.bundle_sha256 })}`, f);
            } else if (exp.kind === 'invalid') {
              const reason = (r.last_error ?? '').replace(/^invalid manifest: /, '');
              if (r.state !== 'failed' || !r.last_error?.startsWith('invalid manifest: ') || !exp.reason.test(reason))
                fail(`shown as ${r.state}, last_error ${show(r.last_error)}; expected the reason ${exp.reason}`, f);
              // launch() reads it again and says the same, naming the file
              let err: { code?: string; message?: string } | null = null;
              try {
                await cluster.query('SELECT node_worker.launch($1)', [base]);
              } catch (e) {
                err = e as { code?: string; message?: string };
              }
              if (!err) fail('launch() started an invalid manifest', f);
              const expected = `could not load node worker manifest "${dir}/${base}.json": ${reason}`;
              if (err!.code !== 'F0000' || err!.message !== expected) fail(`launch(): ${err!.code} ${err!.message}; expected F0000 ${expected}`, f);
            }
          }
          seen.ignored += files.length - listed.length;
          const fileNameRows = fresh.filter((r) => r.state === 'failed' && FILE_NAME_REASON.test(r.last_error ?? ''));
          if (fileNameRows.length !== badFileNames) fail(`${fileNameRows.length} rows for ${badFileNames} manifests with a bad file name`);
          seen.badFileName += badFileNames;
          const crash = crashedSince(cluster, startLog);
          if (crash) fail(`the server log shows a crash: ${crash}`);
        } finally {
          removeAll(files.map((f) => f.path));
        }
      }),
      runs(25),
    );
    expect((await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t).toBe(pmStart);
    console.log(`[properties] node_worker.workers read ${seen.valid} valid manifests, ${seen.invalid} invalid ones, ${seen.badFileName} with a bad file name; ${seen.ignored} ignored`);
    expect(seen.valid).toBeGreaterThan(20);
    expect(seen.invalid).toBeGreaterThan(100);
  }, 180000);

  it('node_worker.workers lists a manifest whatever bytes its file name holds, under a name that is valid UTF-8', async () => {
    const startLog = logSize(cluster);
    await fc.assert(
      fc.asyncProperty(fc.array(oddFileNameCaseArb, { minLength: 1, maxLength: 20, size: 'max' }), async (cases) => {
        const before = await rowCounts();
        const files = writeBatch(cases);
        try {
          const rows = await workerRows();
          const fresh = freshRows(before, rows);
          const listed = files.filter((f) => f.expect.kind !== 'ignored');
          if (fresh.length !== listed.length) fail(`${fresh.length} new rows in node_worker.workers for ${listed.length} manifests`);
          for (const r of fresh)
            if (r.state !== 'failed' || !FILE_NAME_REASON.test(r.last_error ?? ''))
              fail(`a manifest with a bad file name shown as ${r.state}: ${show(r.last_error)}`, files.find((x) => viewName(x) === r.raw.toString('latin1')));
          checkUtf8(fresh, files);
          const crash = crashedSince(cluster, startLog);
          if (crash) fail(`the server log shows a crash: ${crash}`);
        } finally {
          removeAll(files.map((f) => f.path));
        }
      }),
      runs(10),
    );
  }, 180000);

  it('at server start: one LOG line per bad manifest naming the file and the reason, the good ones registered with their fields, no crash', async () => {
    const NO_BUNDLE = /^cannot open bundle file ".*": (No such file or directory|File name too long)$/;
    const seen = { invalid: 0, valid: 0, ignored: 0, restarts: 0 };
    await fc.assert(
      fc.asyncProperty(fc.limitShrink(fc.array(fc.oneof(
            { weight: 6, arbitrary: manifestCaseArb },
            { weight: 2, arbitrary: validManifestCaseArb },
            { weight: 1, arbitrary: oddFileNameCaseArb },
          ), { minLength: 10, maxLength: 40, size: 'max' }), 8), async (cases) => {
        const files = writeBatch(cases);
        const extra: Buffer[] = [];
        try {
          // the bundles of the valid ones (some left out; at most 16 written), then what each
          // manifest must give with the files as they are at the start
          const manifestNames = new Set(files.map((f) => f.fileName.toString('latin1')));
          const bundles = new Set<string>();
          for (const f of files) {
            const exp = f.expect;
            if (exp.kind !== 'valid' || f.c.noBundle || bundles.size >= 16) continue;
            if (exp.bundle.endsWith('.json') || manifestNames.has(exp.bundle) || exp.bundle.length > 200) continue;
            bundles.add(exp.bundle);
          }
          for (const b of bundles) if (!fs.existsSync(path.join(dir, b))) extra.push(put(Buffer.from(b), noopBundle));
          const outcome = new Map<Written, ManifestExpectation>();
          for (const f of files) {
            const exp = f.expect;
            outcome.set(f, exp.kind === 'valid' && !fs.existsSync(path.join(dir, exp.bundle)) ? { kind: 'invalid', reason: NO_BUNDLE } : exp);
          }
          const from = logSize(cluster);
          const pmBefore = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
          await cluster.restart();
          await waitFor('the restarted server', () => cluster.query('SELECT 1 AS ok'), 30000);
          const log = fs.readFileSync(cluster.logFile).subarray(from);
          const fail = (why: string, f?: Written) => {
            throw new Error(`${why}${f ? `\n  ${describeFile(f)}` : ''}\n  log of this start:\n${log.toString('utf8').slice(0, 6000)}`);
          };
          const crash = log.toString('utf8').match(CRASH);
          if (crash) fail(`the server log shows a crash: ${crash[0]}`);
          // the server log continues a message's lines with a tab
          const logged = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\n/g, '\n\t'), 'latin1');
          const count = (needle: Buffer) => {
            let n = 0;
            for (let i = log.indexOf(needle); i >= 0; i = log.indexOf(needle, i + 1)) n++;
            return n;
          };
          for (const f of files) {
            const exp = outcome.get(f)!;
            const skip = logged(Buffer.concat([Buffer.from('pg_node_worker: skipping worker manifest "'), f.path, Buffer.from('": ')]));
            const skips = count(skip);
            if (exp.kind === 'ignored') {
              if (log.includes(logged(f.path))) fail('an ignored file is mentioned in the log', f);
            } else if (exp.kind === 'invalid') {
              if (skips !== 1) fail(`${skips} "skipping worker manifest" lines, expected 1`, f);
              const at = log.indexOf(skip) + skip.length;
              const end = log.indexOf('\n', at);
              const reason = log.subarray(at, end < 0 ? undefined : end).toString('utf8');
              if (!exp.reason.test(reason)) fail(`logged reason ${show(reason)}, expected ${exp.reason}`, f);
            } else {
              if (skips !== 0) fail('a valid manifest was skipped', f);
              const what = `"${exp.name}" (database "${exp.database}", bundle ${dir}/${exp.bundle})`;
              // the line ends there: "with N instances" follows only for more than one
              const line = Buffer.concat([
                logged(Buffer.from(
                  !exp.autostart ? `pg_node_worker: deployed worker ${what} starts only when launched`
                  : exp.instances > 1 ? `pg_node_worker: registered worker ${what} with ${exp.instances} instances`
                  : `pg_node_worker: registered worker ${what}`)),
                Buffer.from('\n'),
              ]);
              if (count(line) !== 1) fail(`no "${line.toString()}" line`, f);
            }
          }
          const pmAfter = (await cluster.query('SELECT pg_postmaster_start_time()::text AS t'))[0].t;
          if (pmAfter === pmBefore) fail('the server did not restart');
          seen.restarts++;
          for (const f of files) seen[outcome.get(f)!.kind]++;
        } finally {
          removeAll([...files.map((f) => f.path), ...extra]);
        }
      }),
      runs(4),
    );
    // what the runs covered
    console.log(`[properties] server starts: ${seen.restarts}, manifests skipped with a reason: ${seen.invalid}, registered: ${seen.valid}, ignored: ${seen.ignored}`);
    expect(seen.invalid).toBeGreaterThan(10);
    expect(seen.valid).toBeGreaterThan(3);
  }, 240000);
});
