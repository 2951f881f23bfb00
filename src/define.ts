import type { WorkerDefinition } from './types';

/** Marks objects made by defineWorker; the runtime and the CLI check it. */
export const DEFINITION_BRAND = Symbol.for('pg-node-worker.definition');

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
const STARTS = ['postmaster', 'consistent', 'recovery-finished'];

/** Checks a definition; returns a list of problems (empty when fine). */
export function definitionProblems(def: unknown): string[] {
  if (typeof def !== 'object' || def === null) return ['the worker definition must be an object'];
  const d = def as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof d.name !== 'string' || !NAME_RE.test(d.name))
    problems.push('name must be 1-63 ASCII letters, digits, "_" or "-", starting with a letter or "_"');
  if (typeof d.main !== 'function') problems.push('main must be a function');
  for (const key of ['database', 'role'] as const) {
    const v = d[key];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || Buffer.byteLength(v) > 63 || v.includes('\0')))
      problems.push(`${key} must be a non-empty name of at most 63 bytes`);
  }
  const r = d.restart;
  if (r !== undefined && r !== 'never' && !(typeof r === 'number' && Number.isInteger(r) && r >= 0 && r <= 86400))
    problems.push('restart must be an integer number of seconds (0-86400) or "never"');
  if (d.start !== undefined && !STARTS.includes(d.start as string))
    problems.push(`start must be one of ${STARTS.map((s) => `"${s}"`).join(', ')}`);
  return problems;
}

/**
 * Declares a worker. Export the result as the module's default export:
 *
 * ```ts
 * export default defineWorker({ name: 'counter', async main(ctx) { ... } });
 * ```
 *
 * @throws TypeError when the definition is invalid.
 */
export function defineWorker<T extends WorkerDefinition>(def: T): T {
  const problems = definitionProblems(def);
  if (problems.length > 0) throw new TypeError(`invalid worker definition: ${problems.join('; ')}`);
  Object.defineProperty(def, DEFINITION_BRAND, { value: true, enumerable: false });
  return def;
}
