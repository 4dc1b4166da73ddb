/**
 * An async iterator fed by pushes: what one `sessionEvents` subscription reads. Bounded: a
 * subscriber that does not keep up loses the oldest events past `max` (a slow socket must not
 * make the gateway hold an unbounded backlog). `return()` (the client completes the
 * subscription, or the connection closes) ends it and calls `onEnd` once.
 */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  private readonly buffered: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | null = null;
  private ended = false;
  private onFlushed: (() => void) | null = null;

  constructor(
    private readonly onEnd: () => void,
    private readonly max = 64,
  ) {}

  get done(): boolean {
    return this.ended;
  }

  push(value: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value, done: false });
      return;
    }
    this.buffered.push(value);
    if (this.buffered.length > this.max) this.buffered.shift();
  }

  /**
   * Resolves once the reader has taken everything pushed so far and asks for more: the reader
   * (graphql-ws) asks for the next event only after sending the last one to the socket.
   */
  flushed(): Promise<void> {
    if (this.ended || (this.buffered.length === 0 && this.waiting)) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.onFlushed;
      this.onFlushed = () => {
        previous?.();
        resolve();
      };
    });
  }

  next(): Promise<IteratorResult<T>> {
    const value = this.buffered.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.onFlushed) {
      const flushed = this.onFlushed;
      this.onFlushed = null;
      flushed();
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the iteration once what is buffered has been read. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const resolve = this.waiting;
    this.waiting = null;
    resolve?.({ value: undefined, done: true });
    const flushed = this.onFlushed;
    this.onFlushed = null;
    flushed?.();
    this.onEnd();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
