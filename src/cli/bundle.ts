/**
 * Bundling a worker file with esbuild, then evaluating the bundle in the CLI process (with a shim
 * for 'pg-node-worker') to read and validate its definition.
 */
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import Module = require('node:module');
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vm from 'node:vm';
import type * as Semver from 'semver';
import { CliError } from './errors';

import { DEFINITION_BRAND, definitionMetadata, type WorkerMetadata } from '../define';
export type { WorkerMetadata } from '../define';

/** How to bundle a worker. */
export interface BundleOptions {
  /** esbuild target, e.g. 'node18.20' (the Node embedded in the server, not the CLI's own) */
  nodeTarget: string;
}

/** A bundled worker and its checked definition. */
export interface BundleResult {
  /** the bundled CommonJS code (with an inline source map) */
  code: string;
  definition: WorkerMetadata;
  /** esbuild warnings, formatted `file:line:col: message` */
  warnings: string[];
  /** absolute paths of the local files esbuild read (its metafile inputs outside node_modules) */
  inputs: string[];
}

const SDK_MODULE = 'pg-node-worker';

/** A path for messages: relative to the cwd when below it, absolute otherwise. */
export function displayPath(p: string): string {
  const abs = path.resolve(p);
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

function formatMessage(m: esbuild.Message, workingDir: string): string {
  const loc = m.location;
  if (!loc) return m.text;
  const file = displayPath(path.resolve(workingDir, loc.file));
  return `${file}:${loc.line}:${loc.column + 1}: ${m.text}`;
}

function isBuildFailure(e: unknown): e is esbuild.BuildFailure {
  return typeof e === 'object' && e !== null && Array.isArray((e as esbuild.BuildFailure).errors);
}

/**
 * Bundle `file` (TypeScript or JavaScript) into one CommonJS script for the embedded Node, and
 * read its worker definition.
 *
 * - 'pg-node-worker' stays external: the runtime provides it inside the server.
 * - npm packages resolve from the file's own folder upwards (esbuild's default), so a worker in a
 *   folder without node_modules that imports only 'pg-node-worker' bundles fine.
 * - The source map is inline (sourcesContent omitted, sources as absolute file: URLs), so that
 *   when the runtime enables source maps (process.setSourceMapsEnabled(true), then loading the
 *   bundle through the CommonJS loader) stack traces in the server log name the user's .ts lines.
 *   Without that, Node ignores the comment: it costs only bytes.
 */
export async function bundleWorker(file: string, opts: BundleOptions): Promise<BundleResult> {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new CliError(`${file}: no such file`);
  }
  if (!st.isFile()) throw new CliError(`${file}: not a regular file`);
  if (!/^node\d+(\.\d+){0,2}$/.test(opts.nodeTarget)) {
    throw new CliError(`invalid Node target "${opts.nodeTarget}" (expected e.g. node18 or node18.20)`);
  }
  const dir = path.dirname(abs);

  let result: esbuild.BuildResult & { outputFiles: esbuild.OutputFile[]; metafile: esbuild.Metafile };
  try {
    result = await esbuild.build({
      entryPoints: [abs],
      absWorkingDir: dir,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: opts.nodeTarget,
      external: [SDK_MODULE],
      write: false,
      sourcemap: 'inline',
      sourcesContent: false,
      sourceRoot: pathToFileURL(dir).href + '/',
      logLevel: 'silent',
      metafile: true,
    });
  } catch (e) {
    if (isBuildFailure(e)) {
      const lines = e.errors.map((m) => '  ' + formatMessage(m, dir));
      throw new CliError(`cannot bundle ${file}:\n${lines.join('\n')}`);
    }
    throw e;
  }
  const out = result.outputFiles.find((f) => f.path.endsWith('.js')) ?? result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output');
  const code = out.text;
  const exported = evaluateBundle(code, abs, file);
  const definition = validateDefinition(exported, file);
  return {
    code,
    definition,
    warnings: [
      ...result.warnings.map((m) => formatMessage(m, dir)),
      ...engineWarnings(bundledPackages(result.metafile, dir), opts.nodeTarget),
    ],
    inputs: localInputs(result.metafile, dir),
  };
}

/** A package esbuild took files from: its folder and what its package.json says. */
export interface BundledPackage {
  dir: string;
  name: string;
  version: string;
  engines?: string;
}

/** The npm packages the bundle took files from (each package folder under a node_modules). */
export function bundledPackages(metafile: esbuild.Metafile, dir: string): BundledPackage[] {
  const found = new Map<string, BundledPackage>();
  for (const key of Object.keys(metafile.inputs)) {
    if (/^[a-z-]+:/i.test(key) && !path.isAbsolute(key)) continue;
    const parts = path.resolve(dir, key).split(path.sep);
    const at = parts.lastIndexOf('node_modules');
    if (at < 0 || at + 1 >= parts.length) continue;
    const depth = parts[at + 1].startsWith('@') ? 2 : 1;
    const pkgDir = parts.slice(0, at + 1 + depth).join(path.sep);
    if (found.has(pkgDir)) continue;
    let json: { name?: unknown; version?: unknown; engines?: { node?: unknown } } = {};
    try {
      json = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    } catch {
      /* a package without a readable package.json states no engines */
    }
    found.set(pkgDir, {
      dir: pkgDir,
      name: typeof json.name === 'string' ? json.name : parts.slice(at + 1, at + 1 + depth).join('/'),
      version: typeof json.version === 'string' ? json.version : '?',
      engines: typeof json.engines?.node === 'string' ? json.engines.node : undefined,
    });
  }
  return [...found.values()];
}

/**
 * One warning per bundled package whose engines.node excludes the Node the bundle is built for
 * (`nodeTarget`, e.g. 'node18.20': read as 18.20.0): such a package may call what that Node lacks
 * and fail at run time, inside the server. A range that semver cannot read is named too.
 */
export function engineWarnings(packages: BundledPackage[], nodeTarget: string): string[] {
  if (!packages.some((p) => p.engines !== undefined)) return [];
  // loaded only here: semver is a third of the CLI's start-up, and most bundles state no engines
  const semver = require('semver') as typeof Semver;
  const version = semver.coerce(nodeTarget.replace(/^node/, ''));
  if (!version) return [];
  const out: string[] = [];
  for (const p of packages) {
    if (p.engines === undefined) continue;
    const range = semver.validRange(p.engines);
    if (range === null) {
      out.push(`${p.name}@${p.version} states engines.node ${JSON.stringify(p.engines)}, which is not a version range`);
    } else if (!semver.satisfies(version, range, { includePrerelease: true })) {
      out.push(
        `${p.name}@${p.version} requires Node ${p.engines} (its engines.node) but the server embeds Node ` +
          `${nodeTarget.replace(/^node/, '')}: the worker may fail at run time where it uses what that Node lacks`,
      );
    }
  }
  return out;
}

/** The metafile's inputs that are files of the user's project (not node_modules, not virtual). */
export function localInputs(metafile: esbuild.Metafile, dir: string): string[] {
  const out = new Set<string>();
  for (const key of Object.keys(metafile.inputs)) {
    if (/^[a-z-]+:/i.test(key) && !path.isAbsolute(key)) continue; // namespaced (e.g. data:, <define>)
    const abs = path.resolve(dir, key);
    if (abs.split(path.sep).includes('node_modules')) continue;
    out.add(abs);
  }
  return [...out].sort();
}

// ---------------------------------------------------------------------------------------------
// Evaluation with the SDK shim

/** A stand-in for an SDK export other than defineWorker: callable, constructible, extendable. */
function placeholder(name: string): unknown {
  const holder = {
    [name]: function (this: unknown) {
      /* deploy-time placeholder for pg-node-worker's export */
    },
  };
  return holder[name];
}

/** The 'pg-node-worker' module as seen at deploy time. */
export function makeSdkShim(): Record<string, unknown> {
  class PgError extends Error {
    constructor(message?: string) {
      super(message);
      this.name = 'PgError';
    }
  }
  class RefusedApiError extends Error {
    constructor(message?: string) {
      super(message);
      this.name = 'RefusedApiError';
    }
  }
  const base: Record<string, unknown> = {
    __esModule: true,
    // returns its argument, branded; validateDefinition checks it afterwards
    defineWorker<T extends object>(def: T): T {
      if (def !== null && typeof def === 'object') {
        Object.defineProperty(def, DEFINITION_BRAND, { value: true, enumerable: false, configurable: true });
      }
      return def;
    },
    PgError,
    RefusedApiError,
    DEFINITION_BRAND,
  };
  const cache = new Map<string, unknown>();
  return new Proxy(base, {
    get(target, prop) {
      if (prop in target) return target[prop as string];
      if (typeof prop !== 'string' || prop === 'then' || prop === 'default') return undefined;
      let p = cache.get(prop);
      if (!p) cache.set(prop, (p = placeholder(prop)));
      return p;
    },
  });
}

function isBuiltin(id: string): boolean {
  const m = Module as unknown as { isBuiltin?: (s: string) => boolean };
  if (typeof m.isBuiltin === 'function') return m.isBuiltin(id);
  return Module.builtinModules.includes(id.startsWith('node:') ? id.slice(5) : id);
}

/** Run the bundle as a CommonJS module; returns its module.exports. */
export function evaluateBundle(code: string, filename: string, label = filename): unknown {
  const sdk = makeSdkShim();
  const realRequire = Module.createRequire(filename);
  const req = (id: string): unknown => {
    if (id === SDK_MODULE) return sdk;
    if (isBuiltin(id)) return realRequire(id);
    const err = new Error(
      `Cannot find module '${id}': at deploy time the worker can require only Node built-ins and ` +
        `'${SDK_MODULE}' (everything else is bundled)`,
    ) as NodeJS.ErrnoException;
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  };
  const module = { exports: {} as unknown, id: filename, filename, loaded: false };
  let fn: (...args: unknown[]) => unknown;
  try {
    fn = vm.runInThisContext(Module.wrap(code), { filename }) as typeof fn;
  } catch (e) {
    throw new CliError(`${label}: the bundle does not compile: ${errorMessage(e)}`);
  }
  try {
    fn.call(module.exports, module.exports, req, module, filename, path.dirname(filename));
  } catch (e) {
    throw new CliError(
      `${label}: loading the worker module threw: ${errorMessage(e)}\n` +
        `  (deploy runs the module's top-level code to read its definition; there '${SDK_MODULE}' ` +
        `is a placeholder: do server work inside main())`,
    );
  }
  module.loaded = true;
  return module.exports;
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  try {
    return String(e);
  } catch {
    return 'unknown error';
  }
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Take `module.exports.default ?? module.exports`, check it is a branded, valid definition. */
export function validateDefinition(exported: unknown, label: string): WorkerMetadata {
  let def: unknown = exported;
  if (exported !== null && (typeof exported === 'object' || typeof exported === 'function')) {
    const d = (exported as { default?: unknown }).default;
    if (d !== undefined && d !== null) def = d;
  }
  if (
    def === null ||
    typeof def !== 'object' ||
    (def as Record<symbol, unknown>)[DEFINITION_BRAND] !== true
  ) {
    throw new CliError(`${label} does not export a worker: export default defineWorker({...})`);
  }
  try {
    return definitionMetadata(def);
  } catch (e) {
    throw new CliError(`${label}: ${(e as Error).message}`);
  }
}

