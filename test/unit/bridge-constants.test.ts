/**
 * The numbers the bridge and the runtime share (native/contract.h, exported by native/bridge.cc as
 * `constants`, copied as constants in src/runtime/native.ts): no server needed.
 *   - checkBridgeConstants(), which every worker runs at start, names each value that differs;
 *   - the bridge's sources, read as text, export exactly what native.ts holds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONSTANTS, checkBridgeConstants } from '../../src/runtime/native';

const NATIVE = path.join(__dirname, '..', '..', 'native');

/** the entries {"NAME", PGNW_X} of one `const Constant <table>[]` of bridge.cc */
function bridgeTable(source: string, table: string): Array<[string, string]> {
  const start = source.indexOf(`const Constant ${table}[] = {`);
  expect(start, `bridge.cc has no table ${table}`).toBeGreaterThanOrEqual(0);
  const body = source.slice(start, source.indexOf('};', start));
  return [...body.matchAll(/\{"([A-Za-z0-9_]+)",\s*(PGNW_[A-Z0-9_]+)\}/g)].map((m) => [m[1], m[2]]);
}

/** what the bridge built from these sources exports as `constants` */
function constantsFromSources(): Record<string, unknown> {
  const header = fs.readFileSync(path.join(NATIVE, 'contract.h'), 'utf8');
  const bridge = fs.readFileSync(path.join(NATIVE, 'bridge.cc'), 'utf8');
  const values = new Map<string, number>();
  for (const m of header.matchAll(/\b(PGNW_[A-Z0-9_]+)\s*=\s*(\d+)/g)) values.set(m[1], Number(m[2]));
  const valueOf = (c: string) => {
    const v = values.get(c);
    if (v === undefined) throw new Error(`bridge.cc names ${c}, which contract.h gives no written-out value`);
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const [name, c] of bridgeTable(bridge, 'constants')) out[name] = valueOf(c);
  const commands: string[] = [];
  for (const [name, c] of bridgeTable(bridge, 'commands')) commands[valueOf(c)] = name;
  out.COMMANDS = commands;
  return out;
}

describe('bridge constants', () => {
  it('a bridge with the same values passes', () => {
    expect(() => checkBridgeConstants({ constants: { ...CONSTANTS } })).not.toThrow();
  });

  it('a value that differs is named with both sides', () => {
    const constants = { ...CONSTANTS, H_LAYOUT: 6 };
    expect(() => checkBridgeConstants({ constants })).toThrow(
      /H_LAYOUT is 6 in the bridge but 5 in runtime\.js.*rebuild and reinstall both/,
    );
  });

  it('every value that differs is named, missing and unknown ones too', () => {
    const { COL_JSON: _dropped, ...rest } = CONSTANTS;
    const constants = { ...rest, LOG_ERROR: 9, COMMANDS: ['SELECT', 'UPDATE', 'INSERT'], H_EXTRA: 9 };
    let message = '';
    try {
      checkBridgeConstants({ constants });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('LOG_ERROR is 9 in the bridge but 4 in runtime.js');
    expect(message).toContain('COL_JSON is nothing in the bridge but 7 in runtime.js');
    expect(message).toContain('COMMANDS is ["SELECT","UPDATE","INSERT"] in the bridge');
    expect(message).toContain('H_EXTRA is 9 in the bridge but unknown to runtime.js');
  });

  it('a bridge without constants (an older build) is refused', () => {
    expect(() => checkBridgeConstants({})).toThrow(/exports no constants/);
  });

  it('native/contract.h and bridge.cc export what native.ts holds', () => {
    const fromSources = constantsFromSources();
    expect(Object.keys(fromSources).sort()).toEqual(Object.keys(CONSTANTS).sort());
    expect(() => checkBridgeConstants({ constants: fromSources })).not.toThrow();
  });
});
