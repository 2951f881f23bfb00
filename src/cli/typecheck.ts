/**
 * The TypeScript checker that runs beside `pg-node-worker dev`: the `typescript` package of the
 * worker's own project, in watch mode, never emitting. esbuild strips types without checking them,
 * so this is where `n.toFixed()` on a bigint shows up before it fails at run time. Its findings
 * are reported, never acted on: a type error does not hold back a reload.
 *
 * A check takes seconds of synchronous work (the first one loads every declaration file), so the
 * built CLI runs it on a worker thread: dev's own loop keeps streaming the server log and
 * answering Ctrl-C and SIGHUP meanwhile. Run from the sources (unit tests), it runs in-line.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type * as TS from 'typescript';

/** Where the checker's findings go. */
export interface TypeCheckOutput {
  /** one line of a report (a summary, or a diagnostic with file:line:col) */
  out: (line: string) => void;
  /** said once: why there is no type checking */
  err: (line: string) => void;
}

/** A running checker. */
export interface TypeChecker {
  close(): void;
}

const SDK_MODULE = 'pg-node-worker';
/** "Found 1 error. Watching for file changes." and "Found N errors. ..." */
const WATCH_SUMMARY_CODES = new Set([6193, 6194]);

/** The `typescript` package as the worker's project resolves it, or undefined. */
function loadTypeScript(absFile: string): typeof TS | undefined {
  try {
    const req = createRequire(absFile);
    return req(req.resolve('typescript')) as typeof TS;
  } catch {
    return undefined;
  }
}

/**
 * The SDK's types shipped with this CLI (dist/index.d.ts when built, src/index.ts when run from
 * the sources), for a project that does not have pg-node-worker in its own node_modules.
 */
function bundledSdkTypes(): string | undefined {
  for (const f of [path.join(__dirname, '..', 'index.d.ts'), path.join(__dirname, '..', 'index.ts')]) {
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** Whether the project itself resolves 'pg-node-worker' (then its own copy's types are used). */
function projectHasSdk(absFile: string): boolean {
  try {
    createRequire(absFile).resolve(`${SDK_MODULE}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/** Options for a worker with no tsconfig.json that covers it: strict, for the embedded Node. */
function derivedOptions(ts: typeof TS): TS.CompilerOptions {
  return {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
  };
}

function relative(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : p;
}

/** `file:line:col: error TS2339: message` (the same shape as esbuild's build errors). */
export function formatDiagnostic(ts: typeof TS, d: TS.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n').replace(/\n\s*/g, ' ');
  const kind = d.category === ts.DiagnosticCategory.Warning ? 'warning' : d.category === ts.DiagnosticCategory.Error ? 'error' : 'note';
  if (d.file && d.start !== undefined) {
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${relative(d.file.fileName)}:${line + 1}:${character + 1}: ${kind} TS${d.code}: ${message}`;
  }
  return `${kind} TS${d.code}: ${message}`;
}

/**
 * Starts checking `absFile` (and what it imports) on every save. The options come from the
 * nearest tsconfig.json above the file when that config includes it, else they are derived
 * (strict, ES2022, CommonJS). 'pg-node-worker' resolves to the project's own copy, else to the
 * types this CLI ships. Returns undefined, after saying so once, when the project has no
 * `typescript` package.
 */
export function startTypeCheck(absFile: string, output: TypeCheckOutput): TypeChecker | undefined {
  if (!__filename.endsWith('.js')) return watchTypes(absFile, output);
  const ts = loadTypeScript(absFile);
  if (!ts) return watchTypes(absFile, output); // says why, once
  const thread = new Worker(__filename, { workerData: { [THREAD_FILE]: absFile } });
  thread.on('message', (m: { err?: boolean; line: string }) => (m.err ? output.err : output.out)(m.line));
  thread.on('error', (e) => output.err(`the type checker stopped: ${e.message}`));
  thread.unref();
  return { close: () => void thread.terminate() };
}

/** workerData key that makes this module, loaded as a worker thread, run the checker. */
const THREAD_FILE = 'pgnwTypeCheckFile';

if (!isMainThread && parentPort && typeof workerData?.[THREAD_FILE] === 'string') {
  const port = parentPort;
  watchTypes(workerData[THREAD_FILE], {
    out: (line) => port.postMessage({ line }),
    err: (line) => port.postMessage({ err: true, line }),
  });
}

/** The checker on this thread: see startTypeCheck(). */
function watchTypes(absFile: string, output: TypeCheckOutput): TypeChecker | undefined {
  const ts = loadTypeScript(absFile);
  if (!ts) {
    output.err(
      `types are not checked: the package "typescript" is not installed for ${relative(absFile)} ` +
        `(npm install -D typescript in its project); the worker runs without type checking`,
    );
    return undefined;
  }

  let configFile = ts.findConfigFile(path.dirname(absFile), ts.sys.fileExists, 'tsconfig.json');
  let options: TS.CompilerOptions = derivedOptions(ts);
  if (configFile) {
    const parsed = ts.getParsedCommandLineOfConfigFile(configFile, { noEmit: true }, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: () => undefined,
    });
    const covers = parsed?.fileNames.some((f) => path.resolve(f) === absFile) ?? false;
    if (parsed && covers) options = parsed.options;
    else configFile = undefined;
  }
  const extra: TS.CompilerOptions = { noEmit: true };
  const sdk = projectHasSdk(absFile) ? undefined : bundledSdkTypes();
  if (sdk) extra.paths = { ...(options.paths ?? {}), [SDK_MODULE]: [sdk] };

  let found: string[] = [];
  const reportDiagnostic = (d: TS.Diagnostic): void => {
    found.push(formatDiagnostic(ts, d));
  };
  const reportWatchStatus = (d: TS.Diagnostic, _newLine: string, _opts: TS.CompilerOptions, errorCount?: number): void => {
    if (!WATCH_SUMMARY_CODES.has(d.code) && errorCount === undefined) {
      found = []; // a new check starts
      return;
    }
    const n = errorCount ?? found.length;
    const head = n === 0 ? 'type check: no errors' : `type check: ${n} error${n === 1 ? '' : 's'} (the worker runs anyway):`;
    // one message for the whole report: the worker's log lines, printed as they come from the
    // main thread, must not land between its header and its diagnostics
    output.out([head, ...found.map((l) => '  ' + l)].join('\n'));
    found = [];
  };

  const createProgram = ts.createEmitAndSemanticDiagnosticsBuilderProgram;
  const watch = configFile
    ? ts.createWatchProgram(ts.createWatchCompilerHost(configFile, extra, ts.sys, createProgram, reportDiagnostic, reportWatchStatus))
    : ts.createWatchProgram(ts.createWatchCompilerHost([absFile], { ...options, ...extra }, ts.sys, createProgram, reportDiagnostic, reportWatchStatus));
  return { close: () => watch.close() };
}
