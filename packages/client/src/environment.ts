/**
 * What the client takes from its surroundings, each injectable so tests (and unusual hosts) control
 * it: fetch, storage, the clock and timers, the Web Locks API and a BroadcastChannel. Only the
 * members the client uses are declared, so a browser's own objects and small fakes both fit.
 */

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** `localStorage` (shared by every tab of an origin), `sessionStorage`, or anything with these three methods. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * `navigator.locks`: an exclusive lock by name, held while `callback`'s promise is pending. With
 * `ifAvailable`, `callback` gets `null` at once when another holds the lock.
 */
export interface LockManagerLike {
  request<T>(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>;
}

/** A `BroadcastChannel` (messages to every other tab of the origin on the same channel name). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  removeEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

export interface TimersLike {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A storage that lives as long as the page (where no `localStorage` is available). */
export class MemoryStorage implements StorageLike {
  readonly #items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.#items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.#items.set(key, String(value));
  }
  removeItem(key: string): void {
    this.#items.delete(key);
  }
}

interface BrowserGlobals {
  document?: unknown;
  localStorage?: StorageLike;
  navigator?: { locks?: LockManagerLike };
  BroadcastChannel?: new (name: string) => ChannelLike & { unref?(): void };
}

const globals = globalThis as unknown as BrowserGlobals;

/** The page's `localStorage` in a browser (reading it can throw, e.g. with storage blocked); otherwise a page-lifetime memory storage. */
export function defaultStorage(): StorageLike {
  if (globals.document === undefined) return new MemoryStorage();
  try {
    const storage = globals.localStorage;
    if (storage) return storage;
  } catch {
    // storage blocked for this page: fall through
  }
  return new MemoryStorage();
}

export function defaultLocks(): LockManagerLike | null {
  const locks = globals.navigator?.locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

export function defaultChannel(name: string): ChannelLike | null {
  if (globals.document === undefined || typeof globals.BroadcastChannel !== 'function') return null;
  return new globals.BroadcastChannel(name);
}

export const defaultTimers: TimersLike = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};
