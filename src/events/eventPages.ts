import { comparePositions } from './cursor.js';
import type { EventPage, EventPosition, SecurityEvent, StoredEvent } from './types.js';

/** Where a read of one source starts: below this entry id, or at it too. */
export interface ReadBound {
  id: string;
  inclusive: boolean;
}

/** One stream of the audit log (or a user's own), read newest first. */
export interface EventSource {
  /** The `source` of its positions (`''` when it is the only one). */
  name: string;
  /** Up to `count` entries, newest first, below `bound` (null: from the newest). */
  read(bound: ReadBound | null, count: number): Promise<StoredEvent[]>;
}

export interface PageOptions {
  first: number;
  after: EventPosition | null;
  filter?: (event: SecurityEvent) => boolean;
  /** With a filter: look at no more than this many entries per page (default 10 000). */
  budget?: number;
}

const DEFAULT_BUDGET = 10_000;
const FILTERED_BATCH = 200;

/**
 * A page of the log made of `sources`, newest first: a k-way merge by position (entry id, then
 * source name), so the streams of a Redis Cluster read as one log. With a filter it stops after
 * `budget` entries looked at and says there may be more, its endCursor where it stopped, so a
 * rare type cannot make one request read a whole 100 000-entry stream.
 */
export async function readNewestFirst(sources: readonly EventSource[], options: PageOptions): Promise<EventPage> {
  const { first, after, filter } = options;
  const budget = options.budget ?? DEFAULT_BUDGET;
  const want = first + 1;
  const batch = filter ? Math.max(want, FILTERED_BATCH) : want;
  const states = await Promise.all(
    sources.map(async (source) => {
      const bound = after === null ? null : { id: after.id, inclusive: source.name < after.source };
      const entries = await source.read(bound, batch);
      return { source, entries, exhausted: entries.length < batch, lastId: null as string | null };
    }),
  );
  const out: StoredEvent[] = [];
  let examined = 0;
  let last: EventPosition | null = null;
  let stoppedEarly = false;
  while (out.length < want) {
    if (filter && examined >= budget) {
      stoppedEarly = true;
      break;
    }
    for (const state of states) {
      if (state.entries.length === 0 && !state.exhausted && state.lastId !== null) {
        state.entries = await state.source.read({ id: state.lastId, inclusive: false }, batch);
        state.exhausted = state.entries.length < batch;
      }
    }
    let best: (typeof states)[number] | null = null;
    for (const state of states) {
      const head = state.entries[0];
      if (head && (!best || comparePositions(head.position, best.entries[0]!.position) > 0)) best = state;
    }
    if (!best) break;
    const entry = best.entries.shift()!;
    best.lastId = entry.position.id;
    examined += 1;
    last = entry.position;
    if (!filter || filter(entry.event)) out.push(entry);
  }
  if (out.length > first) {
    const events = out.slice(0, first);
    return { events, endCursor: events[events.length - 1]?.position ?? last, hasNextPage: true };
  }
  if (stoppedEarly) return { events: out, endCursor: last, hasNextPage: true };
  return { events: out, endCursor: out[out.length - 1]?.position ?? null, hasNextPage: false };
}
