/**
 * The manifest edge cases of manifest-cases.json, shared by the unit test against src/define.ts
 * (manifest-cases.test.ts here) and the cluster test against the server's manifest reader
 * (test/manifest-cases.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { definitionMetadata } from '../../src/define';
import { manifestOf, manifestText } from '../../src/cli/manifest';

/** One row of manifest-cases.json (see its "about"). */
export interface ManifestCase {
  case: string;
  definition: Record<string, unknown>;
  /** define.ts accepts it, and so does the server unless serverAccepts says otherwise */
  accept: boolean;
  /** a piece of define.ts's message when it refuses */
  define?: string;
  /** a piece of the server's reason when it refuses */
  server?: string;
  /** the server's outcome where it differs from define.ts's today */
  serverAccepts?: boolean;
  /** why they differ */
  differs?: string;
  /** why the server cannot be asked */
  serverSkip?: string;
  /** anything else worth knowing */
  note?: string;
}

/** `{"$repeat": [text, n]}` anywhere in a value stands for text repeated n times. */
function expand(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(expand);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('$repeat' in o) {
      const [text, n] = o.$repeat as [string, number];
      return text.repeat(n);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, expand(x)]));
  }
  return v;
}

/** The cases of manifest-cases.json, with their repeats expanded. */
export function loadManifestCases(): ManifestCase[] {
  const file = path.join(__dirname, 'manifest-cases.json');
  const { cases } = JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: ManifestCase[] };
  return cases.map((c) => ({ ...c, definition: expand(c.definition) as Record<string, unknown> }));
}

/** A case's definition as a worker module would give it (with a main). */
export function definitionOf(c: ManifestCase): Record<string, unknown> {
  return { ...c.definition, main() {} };
}

const FILES = { sha256: '0'.repeat(64), deployedAt: new Date(0), nodeTarget: 'node18' };

/**
 * The manifest deploy writes for a case's definition: manifestOf() for one define.ts accepts; for
 * one it refuses, the same fields with the definition's values as they are (lists joined by
 * commas, defaults for what is left out), which is what a manifest written another way (by hand,
 * or by a CLI with other rules) would say.
 */
export function renderManifest(c: ManifestCase): string {
  const d = definitionOf(c);
  const name = String(d.name);
  const files = { ...FILES, bundle: `${name}.js` };
  try {
    return manifestText(manifestOf(definitionMetadata(d), files));
  } catch {
    /* refused: render as it is */
  }
  const list = (v: unknown) => (Array.isArray(v) ? v.join(',') : v);
  const manifest: Record<string, unknown> = {
    format: 1,
    name,
    database: d.database === undefined ? 'postgres' : d.database,
    role: d.role === undefined ? null : d.role,
    restart: d.restart === undefined ? 10 : d.restart,
    start: d.start === undefined ? 'recovery-finished' : d.start,
    bundle: files.bundle,
    sha256: files.sha256,
    deployedAt: files.deployedAt.toISOString(),
    nodeTarget: files.nodeTarget,
    callers: list(d.callers),
    searchPath: list(d.searchPath),
    heapLimitMb: d.heapLimitMb,
    bufferLimitMb: d.bufferLimitMb,
    youngGenerationMb: d.youngGenerationMb,
    autostart: d.autostart,
    instances: d.instances,
  };
  return JSON.stringify(manifest, null, 2) + '\n';
}
