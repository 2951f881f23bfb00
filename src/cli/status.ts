/**
 * `pg-node-worker status`: the node_worker.workers view as an aligned table.
 */
import { CliError } from './errors';
import { conninfoTarget, localTarget, psql, PsqlTarget, readPostmasterPid } from './server';
import { checkDataDirectory } from './deploy';
import { pgConfigCommand } from './installed';
import { escapeControls, printLine } from './terminal';

/** One row of node_worker.workers as status prints it. */
export interface StatusRow {
  name: string;
  kind: string;
  pid: number | null;
  state: string;
  restarts: number | null;
  started_at: string | null;
  last_exit_at: string | null;
  last_error: string | null;
}

/** Which server status asks, and where it prints. */
export interface StatusOptions {
  /** a connection string or database name (psql -d), run as the current OS user */
  conninfo?: string;
  /** else: the server of this data directory, over its unix socket, as the directory's owner */
  pgdata?: string;
  pgConfig?: string;
  log?: (line: string) => void;
}

const COLUMNS: { key: keyof StatusRow; title: string; right?: boolean }[] = [
  { key: 'name', title: 'name' },
  { key: 'kind', title: 'kind' },
  { key: 'pid', title: 'pid', right: true },
  { key: 'state', title: 'state' },
  { key: 'restarts', title: 'restarts', right: true },
  { key: 'started_at', title: 'started_at' },
  { key: 'last_exit_at', title: 'last_exit_at' },
  { key: 'last_error', title: 'last_error' },
];

/**
 * Text of a cell: '-' for null; only the first line of an error; control characters escaped
 * (the values come from the server, and an error message carries data), before the widths are
 * measured so that the columns line up with what the terminal shows.
 */
function cell(row: StatusRow, key: keyof StatusRow): string {
  const v = row[key];
  if (v === null || v === undefined || v === '') return '-';
  const s = String(v);
  return escapeControls(key === 'last_error' ? s.split('\n')[0].trimEnd() : s);
}

/** The rows as an aligned table: a header, a rule, one line per row, then "(N workers)". */
export function formatStatusTable(rows: StatusRow[]): string[] {
  const cells = rows.map((r) => COLUMNS.map((c) => cell(r, c.key)));
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        if (i === values.length - 1) return v;
        return COLUMNS[i].right ? v.padStart(widths[i]) : v.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd();
  return [
    line(COLUMNS.map((c) => c.title)),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    `(${rows.length} worker${rows.length === 1 ? '' : 's'})`,
  ];
}

const STATUS_SQL = `SET client_min_messages = warning;
SELECT to_regclass('node_worker.workers') IS NOT NULL AS pgnw_has_view \\gset
\\if :pgnw_has_view
SELECT coalesce(json_agg(json_build_object(
    'name', name, 'kind', kind, 'pid', pid, 'state', state, 'restarts', restarts,
    'started_at', to_char(started_at, 'YYYY-MM-DD HH24:MI:SSOF'),
    'last_exit_at', to_char(last_exit_at, 'YYYY-MM-DD HH24:MI:SSOF'),
    'last_error', last_error)
  ORDER BY name, kind DESC, pid), '[]')
FROM node_worker.workers;
\\else
SELECT 'no-extension:' || current_database();
\\endif
`;

/** Which server: -d CONNSTRING, else -D PGDATA's socket. */
export function statusTarget(opts: StatusOptions): PsqlTarget {
  if (opts.conninfo !== undefined) return conninfoTarget(opts.conninfo);
  if (!opts.pgdata) throw new CliError('status needs -d CONNSTRING or -D PGDATA (or PGDATA set)');
  const pgdata = checkDataDirectory(opts.pgdata);
  const pm = readPostmasterPid(pgdata);
  if (!pm || !pm.alive) {
    throw new CliError(
      `the server of ${pgdata} is not running` + (pm ? ` (postmaster.pid names pid ${pm.pid}, which is gone)` : ' (no postmaster.pid)'),
    );
  }
  return localTarget(pgdata, pm);
}

/** Query node_worker.workers and print it. */
export async function status(opts: StatusOptions): Promise<StatusRow[]> {
  const log = opts.log ?? ((l: string) => printLine(process.stdout, l));
  const target = statusTarget(opts);
  let out: string;
  try {
    out = (await psql(pgConfigCommand(opts.pgConfig), target, STATUS_SQL)).trim();
  } catch (e) {
    if (e instanceof CliError && /permission denied/.test(e.message)) {
      throw new CliError(`${e.message}\n(reading node_worker.workers takes a superuser or a member of node_worker_admin)`);
    }
    throw e;
  }
  const m = /^no-extension:(.*)$/m.exec(out);
  if (m) {
    throw new CliError(
      `the extension pg_node_worker is not created in database "${m[1]}" of ${target.label.replace(/^the server of /, '')}: ` +
        `run CREATE EXTENSION pg_node_worker there (as a superuser) to get the node_worker.workers view`,
    );
  }
  let rows: StatusRow[];
  try {
    rows = JSON.parse(out) as StatusRow[];
  } catch {
    throw new Error(`unexpected output of psql: ${JSON.stringify(out)}`);
  }
  for (const l of formatStatusTable(rows)) log(l);
  return rows;
}
