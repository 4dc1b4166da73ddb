import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { RevocationFeed } from '../../src/revocation/revocationFeed.js';
import type { RevocationLog } from '../../src/store/types.js';

/** A feed whose health and pushes are in the test's hands. */
function controllableLog() {
  let handlers: Parameters<RevocationLog['subscribe']>[0] | undefined;
  const log: RevocationLog = {
    subscribe: async (h) => {
      handlers = h;
    },
  };
  return {
    log,
    health: (ok: boolean) => handlers!.onHealth(ok),
    push: (ids: string[]) => handlers!.onRevoked(ids),
  };
}

const RETAIN = 15 * 60_000;

async function startedFeed(clock = new ManualClock()) {
  const c = controllableLog();
  const feed = new RevocationFeed(c.log, clock, RETAIN);
  await feed.start();
  return { feed, clock, ...c };
}

describe('RevocationFeed', () => {
  it('answers unknown until the feed is healthy and the store has confirmed the session', async () => {
    const { feed, health } = await startedFeed();
    expect(feed.status('s1')).toBe('unknown');
    health(true);
    expect(feed.status('s1')).toBe('unknown');
    feed.confirm('s1', feed.ticket());
    expect(feed.status('s1')).toBe('live');
  });

  it('marks pushed ids revoked for the retention time only, even when confirmed before', async () => {
    const { feed, clock, health, push } = await startedFeed();
    health(true);
    feed.confirm('s1', feed.ticket());
    push(['s1']);
    expect(feed.status('s1')).toBe('revoked');
    clock.advance(RETAIN);
    expect(feed.status('s1')).toBe('unknown');
  });

  it('forgets every confirmation when the feed goes down: what it missed is asked of the store again', async () => {
    const { feed, health } = await startedFeed();
    health(true);
    feed.confirm('s1', feed.ticket());
    health(false);
    expect(feed.status('s1')).toBe('unknown');
    health(true);
    // A revocation pushed while the feed was down never arrived: the session must be checked again.
    expect(feed.status('s1')).toBe('unknown');
  });

  it('ignores a store answer that began before the feed changed', async () => {
    const { feed, health } = await startedFeed();
    health(true);
    const ticket = feed.ticket();
    health(false);
    health(true);
    feed.confirm('s1', ticket);
    expect(feed.status('s1')).toBe('unknown');
  });

  it('does not confirm while the feed is down', async () => {
    const { feed } = await startedFeed();
    feed.confirm('s1', feed.ticket());
    expect(feed.status('s1')).toBe('unknown');
  });

  it('noteRevoked revokes locally at once', async () => {
    const { feed, health } = await startedFeed();
    health(true);
    feed.confirm('s2', feed.ticket());
    feed.noteRevoked(['s2']);
    expect(feed.status('s2')).toBe('revoked');
  });
});
