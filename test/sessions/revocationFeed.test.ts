import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { RevocationFeed } from '../../src/sessions/revocationFeed.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import type { RevocationLog } from '../../src/store/types.js';

/** The embedded store's log, with the feed's health in the test's hands. */
function controllableLog(store = new MemoryStore()) {
  let handlers: Parameters<RevocationLog['subscribe']>[0] | undefined;
  const log: RevocationLog = {
    recordRevocations: (ids, now, retain) => store.recordRevocations(ids, now, retain),
    recentRevocations: (since) => store.recentRevocations(since),
    subscribe: async (h) => {
      handlers = h;
    },
  };
  return {
    log,
    store,
    health: (ok: boolean) => handlers!.onHealth(ok),
    push: (ids: string[]) => handlers!.onRevoked(ids),
  };
}

const RETAIN = 15 * 60_000;

describe('RevocationFeed', () => {
  it('answers unknown until the feed is healthy, so callers ask the store', async () => {
    const c = controllableLog();
    const feed = new RevocationFeed(c.log, new ManualClock(), RETAIN);
    await feed.start();
    expect(feed.status('s1')).toBe('unknown');
    c.health(true);
    await expect.poll(() => feed.status('s1')).toBe('live');
  });

  it('marks pushed ids revoked for the retention time only', async () => {
    const clock = new ManualClock();
    const c = controllableLog();
    const feed = new RevocationFeed(c.log, clock, RETAIN);
    await feed.start();
    c.health(true);
    c.push(['s1']);
    expect(feed.status('s1')).toBe('revoked');
    clock.advance(RETAIN);
    await expect.poll(() => feed.status('s1')).toBe('live');
  });

  it('catches up on revocations made while it was down before claiming health', async () => {
    const clock = new ManualClock();
    const c = controllableLog();
    const feed = new RevocationFeed(c.log, clock, RETAIN);
    await feed.start();
    c.health(true);
    await expect.poll(() => feed.isHealthy).toBe(true);
    c.health(false);
    expect(feed.status('missed')).toBe('unknown');
    // Revoked by another instance while this one's feed was down: the push never arrived.
    await c.store.recordRevocations(['missed'], clock.now(), RETAIN);
    c.health(true);
    await expect.poll(() => feed.isHealthy).toBe(true);
    expect(feed.status('missed')).toBe('revoked');
  });

  it('does not claim health from a catch-up overtaken by a newer outage', async () => {
    const c = controllableLog();
    const feed = new RevocationFeed(c.log, new ManualClock(), RETAIN);
    await feed.start();
    c.health(true);
    c.health(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(feed.isHealthy).toBe(false);
  });

  it('a failed log write does not fail the revocation and is retried', async () => {
    const clock = new ManualClock();
    const c = controllableLog();
    let failures = 1;
    const errors: unknown[] = [];
    const flaky: RevocationLog = {
      ...c.log,
      recordRevocations: async (ids, now, retain) => {
        if (failures-- > 0) throw new Error('store down');
        return c.log.recordRevocations(ids, now, retain);
      },
    };
    const feed = new RevocationFeed(flaky, clock, RETAIN, (e) => errors.push(e));
    await feed.announce(['s3']);
    expect(feed.status('s3')).toBe('revoked');
    expect(errors).toHaveLength(1);
    await expect.poll(() => c.store.recentRevocations(clock.now()), { timeout: 2_000 }).toEqual(['s3']);
  });

  it('announce revokes locally at once and logs it for instances that catch up', async () => {
    const clock = new ManualClock();
    const c = controllableLog();
    const feed = new RevocationFeed(c.log, clock, RETAIN);
    await feed.announce(['s2']);
    expect(feed.status('s2')).toBe('revoked');
    expect(await c.store.recentRevocations(clock.now())).toEqual(['s2']);
  });
});
