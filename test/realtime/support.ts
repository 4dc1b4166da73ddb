import { WebSocket } from 'ws';
import type { TestServer } from '../helpers/testServer.js';

export const PROTOCOL = 'graphql-transport-ws';

export const SESSION_EVENTS = 'subscription { sessionEvents { type time sessionId userAgent ipAddress } }';

export interface Closed {
  code: number;
  reason: string;
}

/** A message the server sent (graphql-transport-ws frames are JSON objects). */
export type Frame = { type: string; id?: string; payload?: any };

/**
 * A raw graphql-transport-ws client, so tests see every frame and the exact close code: what a
 * user checks. `next(type)` waits for the next frame of that type (frames are kept, none lost).
 */
export class WsClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<Closed>;
  readonly opened: Promise<void>;
  private readonly waiters: (() => void)[] = [];
  private read = 0;

  constructor(
    readonly socket: WebSocket,
  ) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    this.opened = new Promise((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    // Keep the promise from being an unhandled rejection when a test expects the refusal elsewhere.
    this.opened.catch(() => undefined);
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.wake();
    });
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame (after those already read) of `type`; rejects if the socket closes first. */
  async next(type: string, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.read < this.frames.length) {
        const frame = this.frames[this.read++]!;
        if (frame.type === type) return frame;
      }
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`closed before a ${type} frame`);
      if (Date.now() > deadline) throw new Error(`no ${type} frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** connection_init, then the ack. */
  async init(payload?: Record<string, unknown>): Promise<Frame> {
    await this.opened;
    this.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
    return this.next('connection_ack');
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>): void {
    this.send({ type: 'subscribe', id, payload: { query, ...(variables ? { variables } : {}) } });
  }

  /** The next `next` frame's data for subscription `id`. */
  async event(id: string): Promise<any> {
    for (;;) {
      const frame = await this.next('next');
      if (frame.id === id) return frame.payload;
    }
  }

  close(): void {
    this.socket.close();
  }
}

export function wsUrl(server: Pick<TestServer, 'url'>, path = '/graphql'): string {
  return `${server.url.replace(/^http/, 'ws')}${path}`;
}

/** A WebSocket to the gateway's /graphql speaking graphql-transport-ws (unless told otherwise). */
export function connect(
  server: Pick<TestServer, 'url'>,
  options: { origin?: string; protocol?: string | null; path?: string; headers?: Record<string, string> } = {},
): WsClient {
  const protocol = options.protocol === undefined ? PROTOCOL : options.protocol;
  const socket = new WebSocket(wsUrl(server, options.path), protocol === null ? [] : [protocol], {
    headers: options.headers ?? {},
    ...(options.origin ? { origin: options.origin } : {}),
  });
  return new WsClient(socket);
}

export function bearerPayload(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Waits for `check` to hold, polling (no fixed sleep racing the work). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
