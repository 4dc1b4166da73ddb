import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { type AuthClient, type AuthClientOptions, createAuthClient, type FetchLike, type LockManagerLike, MemoryStorage, type StorageLike, type TimersLike } from '@tessera-gateway/client';
import type { ManualClock } from '../../src/clock.js';

/**
 * What a browser gives the client, for Node: the real BroadcastChannel (Node's own, between
 * objects of one process, as between tabs), an exclusive lock manager with the Web Locks
 * semantics the client uses (one holder per name, the others queued in order), timers driven by
 * the test's clock, and a fetch that records which operations reached the gateway.
 */

/**
 * `navigator.locks.request(name, options, callback)`: exclusive, FIFO per name, held until the
 * callback's promise settles; `ifAvailable` calls back with null at once when it is held.
 */
export class TestLocks implements LockManagerLike {
  readonly #tails = new Map<string, Promise<unknown>>();
  /** How many requests found the lock held. */
  contended = 0;
  request<T>(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T> {
    const held = this.#tails.has(name);
    if (held) this.contended += 1;
    if (held && options.ifAvailable) return Promise.resolve().then(() => callback(null));
    const lock = { name };
    const previous = this.#tails.get(name) ?? Promise.resolve();
    const result = previous.then(
      () => callback(lock),
      () => callback(lock),
    );
    const tail = result.catch(() => undefined);
    this.#tails.set(name, tail);
    void tail.then(() => {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    });
    return result;
  }
}

interface Pending {
  due: number;
  callback: () => void;
}

/** setTimeout/clearTimeout on the test's ManualClock: `advance(ms)` moves it and runs what fell due. */
export class ClockTimers implements TimersLike {
  readonly #pending = new Set<Pending>();
  constructor(readonly clock: ManualClock) {}
  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { due: this.clock.now() + ms, callback };
    this.#pending.add(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as Pending);
  }
  get size(): number {
    return this.#pending.size;
  }
  /** The earliest pending timer's due time. */
  get next(): number | undefined {
    return Math.min(...[...this.#pending].map((timer) => timer.due));
  }
  advance(ms: number): void {
    this.clock.advance(ms);
    for (const timer of [...this.#pending].sort((a, b) => a.due - b.due)) {
      if (timer.due <= this.clock.now()) {
        this.#pending.delete(timer);
        timer.callback();
      }
    }
  }
}

/** Operation names (the client names its own: TesseraLogin, TesseraRefresh …; others by their first field) of what reached the gateway, in order. */
export class Recorder {
  readonly operations: string[] = [];
  readonly bodies: Record<string, unknown>[] = [];
  readonly fetch: FetchLike = async (input, init) => {
    if (typeof init?.body === 'string') {
      const body = JSON.parse(init.body) as { query?: string; variables?: Record<string, unknown> };
      const name = /^\s*(?:query|mutation)\s+(\w+)/.exec(body.query ?? '')?.[1] ?? /{\s*(\w+)/.exec(body.query ?? '')?.[1] ?? '?';
      this.operations.push(name);
      this.bodies.push(body);
    }
    return fetch(input, init);
  };
  count(name: string): number {
    return this.operations.filter((operation) => operation === name).length;
  }
}

/** Tabs of one origin: one storage, one lock manager, one channel name; each tab its own client. */
export class Origin {
  readonly storage: StorageLike = new MemoryStorage();
  readonly locks = new TestLocks();
  readonly channelName = `tessera-test-${randomUUID()}`;
  readonly recorder = new Recorder();
  readonly #tabs: AuthClient[] = [];
  readonly #channels: BroadcastChannel[] = [];

  constructor(
    readonly url: string,
    readonly base: Partial<AuthClientOptions> & Pick<AuthClientOptions, 'transport'>,
  ) {}

  tab(options: Partial<AuthClientOptions> = {}): AuthClient {
    const channel = new BroadcastChannel(this.channelName);
    this.#channels.push(channel);
    const client = createAuthClient({
      url: this.url,
      storage: this.storage,
      locks: this.locks,
      channel: channel as unknown as AuthClientOptions['channel'],
      fetch: this.recorder.fetch,
      ...this.base,
      ...options,
    });
    this.#tabs.push(client);
    return client;
  }

  close(): void {
    for (const tab of this.#tabs) tab.close();
    for (const channel of this.#channels) channel.close();
  }
}

export const ME = '{ me { id email } }';

/** A GraphQL POST through a client's fetch; the parsed answer. */
export async function query(client: AuthClient, query: string, variables: Record<string, unknown> = {}) {
  const response = await client.fetch(client.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return (await response.json()) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}
