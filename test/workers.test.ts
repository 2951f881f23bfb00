/**
 * The worker files of test/workers, without a server: each bundles with the CLI's bundler and
 * declares a valid worker, and each template deploys under the name and settings it is given (its
 * entry file passes the arguments through as they were typed). A broken fixture fails here, by
 * name, rather than as a worker that never starts in some cluster test.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleWorker } from '../src/cli/bundle';
import { templateFile, type TemplateArgs, type TemplateName, WORKERS_DIR } from './helpers/workers';

const TARGET = 'node18.20';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgnw-templates-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const fixtures = fs.readdirSync(WORKERS_DIR).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort();

describe('fixtures', () => {
  it('are named after the test file that uses them', () => {
    const tests = new Set(fs.readdirSync(path.join(WORKERS_DIR, '..')).filter((f) => f.endsWith('.test.ts')).map((f) => f.slice(0, -'.test.ts'.length)));
    for (const f of fixtures) expect([f, [...tests].some((t) => f.startsWith(`${t}-`))]).toEqual([f, true]);
  });

  it.each(fixtures)('%s bundles and declares a valid worker', async (file) => {
    const { definition, code } = await bundleWorker(path.join(WORKERS_DIR, file), { nodeTarget: TARGET });
    expect(definition.name).toMatch(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/);
    expect(code).toContain('require("pg-node-worker")');
  });
});

/** An example call of every template (the type makes sure none is left out). */
const EXAMPLES: { [K in TemplateName]: TemplateArgs<K> } = {
  evaluator: ['t_evaluator', { database: 'db', role: 'r' }],
  idle: ['t_idle', { callers: ['c1', 'é'] }],
  probe: ['t_probe', 'consistent'],
  recorder: ['t_recorder'],
  soak: ['t_soak'],
  stuck: ['t_stuck', 'js'],
  versioned: ['t_versioned', 'v2'],
  whoami: ['t_whoami', 'db_a', 'alice'],
};

describe('templates', () => {
  it.each(Object.keys(EXAMPLES) as TemplateName[])('%s deploys under the name and settings it is given', async (template) => {
    const args = EXAMPLES[template];
    const file = (templateFile as (d: string, t: TemplateName, ...a: unknown[]) => string)(dir, template, ...args);
    expect(path.basename(file)).toBe(`${args[0]}.ts`);
    const { definition } = await bundleWorker(file, { nodeTarget: TARGET });
    expect(definition.name).toBe(args[0]);
    if (template === 'evaluator') expect(definition).toMatchObject({ database: 'db', role: 'r' });
    if (template === 'idle') expect(definition.callers).toEqual(['c1', 'é']);
    if (template === 'probe') expect(definition.start).toBe('consistent');
    if (template === 'recorder') expect(definition.callers).toEqual(['t_recorder_callers']);
    if (template === 'whoami') expect(definition).toMatchObject({ database: 'db_a', role: 'alice' });
  });

  it('an argument left undefined takes its default', async () => {
    const { definition } = await bundleWorker(templateFile(dir, 'idle', 't_default', undefined), { nodeTarget: TARGET });
    expect(definition).toMatchObject({ name: 't_default', callers: null, restart: 1 });
    const evaluator = await bundleWorker(templateFile(dir, 'evaluator', 't_eval_default'), { nodeTarget: TARGET });
    expect(evaluator.definition).toMatchObject({ database: 'postgres', role: null });
  });
});
