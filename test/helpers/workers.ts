/**
 * Worker files for the tests. Every worker a test deploys is TypeScript the typecheck covers
 * (`npx tsc -p test`):
 *
 * - test/workers/<test file>-<worker>.ts: a worker one test file uses, deployed as it is
 *   (Cluster.deployFile, or its path given to the CLI);
 * - test/workers/templates/: workers the tests deploy under several names or with other
 *   settings. Cluster.deployTemplate() and templateFile() write a two-line entry file,
 *   `export default <template>(...arguments)`, and deploy that: the arguments are checked
 *   against the template's parameters here and must be plain JSON values.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Templates from '../workers/templates';

export const WORKERS_DIR = path.resolve(__dirname, '..', 'workers');
const TEMPLATES = path.join(WORKERS_DIR, 'templates');

export type TemplateName = keyof typeof Templates;
export type TemplateArgs<K extends TemplateName> = Parameters<(typeof Templates)[K]>;

/** The absolute path of a worker file of test/workers. */
export function fixture(file: string): string {
  return path.isAbsolute(file) ? file : path.join(WORKERS_DIR, file);
}

/** The 1-based line of a worker file of test/workers that contains `text` (for stack traces). */
export function fixtureLine(file: string, text: string): number {
  const lines = fs.readFileSync(fixture(file), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`${file} has no line with ${JSON.stringify(text)}`);
  return i + 1;
}

/**
 * Writes `<dir>/<name>.ts`, where name is the first argument (every template takes the worker's
 * name first): `export default <template>(...args)` of test/workers/templates. Returns its path.
 */
export function templateFile<K extends TemplateName>(dir: string, template: K, ...args: TemplateArgs<K>): string {
  const name = args[0];
  if (typeof name !== 'string') throw new Error(`template ${template}: the first argument is the worker's name`);
  // JSON.stringify would turn an undefined argument into null, which no default parameter takes
  const list = args.map((a) => (a === undefined ? 'undefined' : JSON.stringify(a))).join(', ');
  const file = path.join(dir, `${name}.ts`);
  fs.writeFileSync(
    file,
    `import { ${template} } from ${JSON.stringify(path.join(TEMPLATES, template))};\nexport default ${template}(${list});\n`,
  );
  return file;
}

/** The files of a worker directory, sorted, without the workers' own code cache (.cache/, which a running worker makes 500 ms after its start). */
export function workerDirFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f !== '.cache').sort();
}
