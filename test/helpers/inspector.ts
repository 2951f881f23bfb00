/**
 * A client of Node's inspector protocol (the Chrome DevTools protocol) for the tests: finds the
 * target over HTTP (/json/list), then talks to it over its WebSocket with the `ws` package.
 */
import * as http from 'node:http';
import WebSocket from 'ws';

/** A protocol event: `{ method, params }`. */
export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
}

/** GET http://127.0.0.1:port/path as JSON. */
export function getJson<T>(port: number, urlPath: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: timed out`)));
  });
}

/** One debugging session over the inspector's WebSocket. */
export class CdpClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly waiters: { method: string; resolve: (e: CdpEvent) => void }[] = [];
  /** every event received, in order */
  readonly events: CdpEvent[] = [];

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => this.receive(JSON.parse(data.toString()) as Record<string, unknown>));
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('the inspector closed the connection'));
      this.pending.clear();
    });
  }

  /** Connects to the first target of the inspector on 127.0.0.1:port. */
  static async connect(port: number): Promise<CdpClient> {
    const targets = await getJson<{ webSocketDebuggerUrl: string }[]>(port, '/json/list');
    const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new CdpClient(socket);
  }

  private receive(msg: Record<string, unknown>): void {
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (!p) return;
      if (msg.error) p.reject(new Error(JSON.stringify(msg.error)));
      else p.resolve((msg.result ?? {}) as Record<string, unknown>);
      return;
    }
    const event = { method: String(msg.method), params: (msg.params ?? {}) as Record<string, unknown> };
    const i = this.waiters.findIndex((w) => w.method === event.method);
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(event);
    else this.events.push(event);
  }

  /** Sends a command; resolves with its result. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The next event named `method` (one already received and not yet taken, else the next to come). */
  next(method: string, timeoutMs = 10000): Promise<CdpEvent> {
    const i = this.events.findIndex((e) => e.method === method);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { method, resolve: (e: CdpEvent) => (clearTimeout(t), resolve(e)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${method} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close(): void {
    this.socket.close();
  }
}
