/**
 * Node's inspector (the debugger) in a worker: opened only in the one worker that the settings
 * node_worker.inspect_worker and node_worker.inspect_port name (`pg-node-worker dev --inspect`
 * sets them), and only ever on 127.0.0.1. Node creates the inspector's agent for that worker alone
 * and never with its SIGUSR1 trigger (runtime_embed.cc): PostgreSQL owns SIGUSR1.
 */
import * as inspector from 'inspector';
import type { NativeBridge } from './native';
import { LOG_INFO, LOG_WARNING } from './native';

/** The address the inspector listens on: loopback only, whatever the settings say. */
export const INSPECTOR_HOST = '127.0.0.1';

/** What runtime_embed.cc passes: the port (0: no inspector) and whether a failure is tolerated. */
export interface InspectOptions {
  port: number;
  optional: boolean;
}

/** The inspector could not listen (the port is taken, or refused). */
export class InspectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InspectorError';
  }
}

/** The Chrome DevTools address that attaches to the inspector at `wsUrl` (ws://host:port/id). */
export function devtoolsUrl(wsUrl: string): string {
  return `devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=${wsUrl.replace(/^ws:\/\//, '')}`;
}

/**
 * Opens the inspector when `opts.port` is set and logs its addresses. When it cannot listen, this
 * throws an InspectorError (the worker then fails to start), or with `opts.optional` logs a
 * warning and the worker runs without it. Returns the WebSocket URL, or undefined.
 */
export function openInspector(native: NativeBridge, opts: InspectOptions | undefined): string | undefined {
  if (!opts || !opts.port) return undefined;
  let url: string | undefined;
  let why = 'is the port in use?';
  try {
    inspector.open(opts.port, INSPECTOR_HOST, false);
    url = inspector.url();
  } catch (e) {
    why = (e as Error).message;
  }
  if (!url) {
    const text = `the inspector could not listen on ${INSPECTOR_HOST}:${opts.port} (${why})`;
    if (!opts.optional)
      throw new InspectorError(
        `${text}. Choose another node_worker.inspect_port (dev --inspect=PORT), or set node_worker.inspect_optional = on to start the worker without its inspector.`,
      );
    native.log(LOG_WARNING, `${text}; running without the inspector (node_worker.inspect_optional is on)`);
    return undefined;
  }
  native.log(LOG_INFO, `debugger listening on ${url} (DevTools: ${devtoolsUrl(url)}; or chrome://inspect, target ${INSPECTOR_HOST}:${opts.port})`);
  return url;
}
