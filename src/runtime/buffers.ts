/**
 * ctx.buffers and ctx.shared: argument checks in JS, the work in
 * native/buffers.cc and native/shared.cc.
 */
import type { Buffers, ForkName, PrewarmOptions, RelationRef } from '../types';
import type { NativeBridge } from './native';

const FORKS: readonly string[] = ['main', 'fsm', 'vm', 'init'];

function relationArg(what: string, relation: RelationRef): string | number {
  if (typeof relation === 'string') return relation;
  if (typeof relation === 'number' && Number.isInteger(relation) && relation > 0 && relation <= 0xffffffff) return relation;
  throw new TypeError(`${what}: relation must be a name (string) or an oid (positive integer)`);
}

function forkArg(what: string, fork: ForkName | undefined): string | null {
  if (fork === undefined || fork === null) return null;
  // an unknown name goes to PostgreSQL, which reports it as PgError 22023 like pg_prewarm does
  if (typeof fork !== 'string') throw new TypeError(`${what}: fork must be one of ${FORKS.join(', ')}`);
  return fork;
}

function blockArg(what: string, name: string, value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${what}: ${name} must be an integer block number`);
  return value;
}

/** ctx.buffers: the buffer cache as pg_buffercache, pg_prewarm and get_raw_page see it, through the bridge. */
export function makeBuffers(native: NativeBridge): Buffers {
  return Object.freeze({
    snapshot: () => Object.freeze(native.buffersSnapshot()),
    stats: () => Object.freeze(native.buffersStats()),
    residency(relation: RelationRef, fork?: ForkName) {
      const [blocks, cached] = native.buffersResidency(relationArg('residency', relation), forkArg('residency', fork));
      return { blocks, cached };
    },
    prewarm(relation: RelationRef, options: PrewarmOptions = {}) {
      if (options === null || typeof options !== 'object') throw new TypeError('prewarm(relation, options?): options must be an object');
      return native.buffersPrewarm(
        relationArg('prewarm', relation),
        forkArg('prewarm', options.fork),
        blockArg('prewarm', 'first', options.first),
        blockArg('prewarm', 'last', options.last),
      );
    },
    readPage(relation: RelationRef, block: number, fork?: ForkName) {
      const b = blockArg('readPage', 'block', block);
      if (b === null) throw new TypeError('readPage(relation, block, fork?): block is required');
      return native.buffersReadPage(relationArg('readPage', relation), b, forkArg('readPage', fork));
    },
  });
}

/**
 * ctx.shared(name, bytes). The same name gives the same SharedArrayBuffer object within a worker
 * (native/shared.cc wraps the memory again on each open, which would make distinct objects).
 */
export function makeShared(native: NativeBridge): (name: string, bytes: number) => SharedArrayBuffer {
  const opened = new Map<string, SharedArrayBuffer>();
  return (name: string, bytes: number) => {
    if (typeof name !== 'string') throw new TypeError('shared(name, bytes): name must be a string');
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1)
      throw new RangeError('shared(name, bytes): bytes must be a positive integer');
    const known = opened.get(name);
    if (known !== undefined && known.byteLength === bytes) return known;
    // a different size reaches the server, which reports the mismatch
    const [buffer] = native.sharedOpen(name, bytes);
    opened.set(name, buffer);
    return buffer;
  };
}
