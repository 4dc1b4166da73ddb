import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/events/cursor.js';
import { EVENT_ID_PATTERN } from '../../src/events/eventIds.js';
import type { ClaimRequest, EventPage, EventStore, SecurityEvent } from '../../src/events/types.js';
import { newId } from '../../src/ids.js';
import type { Store, UserRecord } from '../../src/store/types.js';
import { rotation, sessionInput, T0, TEST_ORIGIN } from './storeContract.js';

/**
 * The security-event behaviour every store must have (docs/contract.md section 10), run against
 * the embedded store, Redis and a Redis Cluster alike.
 */
export interface EventHarness {
  /** The store most tests share. */
  store(): Store;
  /** A store of its own (an empty audit log), with these bounds; closed by the harness. */
  fresh(options?: { auditStreamMax?: number; userEventsMax?: number }): Promise<Store>;
}

const ORIGIN = { ipAddress: '203.0.113.7', userAgent: 'Events/1.0', requestId: 'req-123' };
const LOGOUT = { origin: ORIGIN, cause: 'logout' as const };

function userRecord(over: Partial<UserRecord> = {}): UserRecord {
  return { id: newId(), email: `${newId().toLowerCase()}@example.com`, passwordHash: '$argon2id$fake', roles: ['user'], createdAt: T0, emailVerified: false, disabled: false, ...over };
}

/** Every event of the user's own stream, newest first, page by page. */
async function allOwn(store: EventStore, userId: string, first = 100): Promise<SecurityEvent[]> {
  const out: SecurityEvent[] = [];
  let after = null;
  for (;;) {
    const page: EventPage = await store.userEvents(userId, { first, after });
    out.push(...page.events.map((e) => e.event));
    if (!page.hasNextPage) return out;
    after = page.endCursor;
  }
}

/** Every event of the audit log (all users), newest first, page by page. */
async function allAudit(store: EventStore, first = 100): Promise<SecurityEvent[]> {
  const out: SecurityEvent[] = [];
  let after = null;
  for (;;) {
    const page: EventPage = await store.auditEvents({ first, after });
    out.push(...page.events.map((e) => e.event));
    if (!page.hasNextPage) return out;
    after = page.endCursor;
  }
}

/** The events the listener heard while `work` ran. */
async function heard(store: Store, work: () => Promise<unknown>): Promise<SecurityEvent[]> {
  const got: SecurityEvent[] = [];
  const stop = store.onEvents((events) => got.push(...events));
  try {
    await work();
  } finally {
    stop();
  }
  return got;
}

const summary = (events: readonly SecurityEvent[]) =>
  events.map((e) => [e.type, e.sessionId, (e.details as Record<string, unknown>).cause ?? null]);

const claim = (over: Partial<ClaimRequest> = {}): ClaimRequest => ({
  group: 'g',
  consumer: 'c1',
  count: 100,
  now: Date.now(),
  backoff: { minIdleMs: 100, baseDelayMs: 100, maxDelayMs: 1_000 },
  jitter: 1,
  ...over,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function eventContract(h: EventHarness): void {
  describe('security events: appended in the step that makes the change', () => {
    it('live: session.created and session.revoked reach live-event subscribers as stored (a failed login does not)', async () => {
      const store = h.store();
      const input = sessionInput({ origin: ORIGIN });
      const got: SecurityEvent[] = [];
      const stop = await store.subscribeLiveEvents((events) => got.push(...events.filter((e) => e.userId === input.userId)));
      try {
        const created = await heard(store, () => store.createSession(input));
        await store.appendEvent({ type: 'login.failed', time: T0, userId: input.userId, sessionId: null, origin: ORIGIN, details: {} });
        const revoked = await heard(store, () => store.revokeSession({ userId: input.userId, sessionId: input.sessionId }, T0 + 1, LOGOUT));
        const deadline = Date.now() + 5_000;
        while (got.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
        // The same events (ids, client, details) as stored, in order; the failed login only stored.
        expect(got).toEqual([...created, ...revoked]);
        expect(got.map((e) => e.type)).toEqual(['session.created', 'session.revoked']);
      } finally {
        stop();
      }
    });

    it('a new user: user.signed_up, in the audit log and the user\'s own, with the client and request id', async () => {
      const user = userRecord();
      const events = await heard(h.store(), () => h.store().createUser(user, ORIGIN));
      expect(events).toHaveLength(1);
      const [event] = events;
      expect(event).toEqual({
        id: expect.stringMatching(EVENT_ID_PATTERN),
        type: 'user.signed_up',
        time: T0,
        userId: user.id,
        sessionId: null,
        ip: ORIGIN.ipAddress,
        userAgent: ORIGIN.userAgent,
        details: { requestId: 'req-123' },
      });
      expect(await allOwn(h.store(), user.id)).toEqual([event]);
      const audit = await h.store().auditEvents({ first: 100, after: null, type: 'user.signed_up' });
      expect(audit.events.map((e) => e.event)).toContainEqual(event);
    });

    it('a sign-up refused for a taken email records nothing', async () => {
      const first = userRecord();
      await h.store().createUser(first, ORIGIN);
      const second = userRecord({ email: first.email });
      const events = await heard(h.store(), () => h.store().createUser(second, ORIGIN));
      expect(events).toEqual([]);
      expect(await allOwn(h.store(), second.id)).toEqual([]);
      const audit = await h.store().auditEvents({ first: 100, after: null, type: 'user.signed_up' });
      expect(audit.events.map((e) => e.event.userId)).not.toContain(second.id);
    });

    it('a login: session.created; past the session limit, session.revoked (evicted) for each session it ends', async () => {
      const a = sessionInput({ maxSessions: 2, origin: ORIGIN });
      const b = sessionInput({ userId: a.userId, maxSessions: 2, now: T0 + 1, origin: ORIGIN });
      const c = sessionInput({ userId: a.userId, maxSessions: 2, now: T0 + 2, origin: ORIGIN });
      const events = await heard(h.store(), async () => {
        for (const s of [a, b, c]) await h.store().createSession(s);
      });
      expect(summary(events)).toEqual([
        ['session.created', a.sessionId, null],
        ['session.created', b.sessionId, null],
        ['session.created', c.sessionId, null],
        ['session.revoked', a.sessionId, 'evicted'],
      ]);
      // The third login's two events are one step: one step id, numbered.
      expect(events[2]!.id.split('-')[0]).toBe(events[3]!.id.split('-')[0]);
      expect(new Set(events.map((e) => e.id)).size).toBe(4);
      expect(events.every((e) => e.userId === a.userId && e.ip === ORIGIN.ipAddress)).toBe(true);
      // Newest first, the same events.
      expect(await allOwn(h.store(), a.userId)).toEqual([...events].reverse());
    });

    it('a refresh records nothing; a replay records session.reuse_detected and session.revoked (reuse), once', async () => {
      const input = sessionInput({ origin: ORIGIN });
      await h.store().createSession(input);
      const quiet = await heard(h.store(), async () => {
        expect((await h.store().rotateSession(rotation(input, { origin: ORIGIN }))).status).toBe('rotated');
        expect((await h.store().rotateSession(rotation(input, { now: T0 + 61_000 }))).status).toBe('grace');
      });
      expect(quiet).toEqual([]);
      const replayer = { ipAddress: '198.51.100.9', userAgent: 'thief' };
      const events = await heard(h.store(), async () => {
        expect((await h.store().rotateSession(rotation(input, { graceMs: 0, origin: replayer }))).status).toBe('reused');
        expect((await h.store().rotateSession(rotation(input, { graceMs: 0, origin: replayer }))).status).toBe('invalid');
      });
      expect(summary(events)).toEqual([
        ['session.reuse_detected', input.sessionId, null],
        ['session.revoked', input.sessionId, 'reuse'],
      ]);
      expect(events[0]!.details).toEqual({ generation: 0, currentGeneration: 1 });
      expect(events[0]).toMatchObject({ ip: '198.51.100.9', userAgent: 'thief' });
      const own = await allOwn(h.store(), input.userId);
      expect(own.map((e) => e.type)).toEqual(['session.revoked', 'session.reuse_detected', 'session.created']);
    });

    it('revoking: session.revoked with its cause, only for a session that was live', async () => {
      const a = sessionInput();
      const b = sessionInput({ userId: a.userId });
      const c = sessionInput({ userId: a.userId });
      for (const s of [a, b, c]) await h.store().createSession(s);
      const proof = { userId: a.userId, sessionId: b.sessionId, generation: 0, secretHash: b.secretHash };
      const events = await heard(h.store(), async () => {
        expect(await h.store().revokeSession(a, T0 + 1, LOGOUT)).toBe(true);
        expect(await h.store().revokeSession(a, T0 + 1, LOGOUT)).toBe(false);
        expect(await h.store().revokeSessionWithToken({ ...proof, secretHash: 'guess' }, T0 + 1, ORIGIN)).toBe(false);
        expect(await h.store().revokeSessionWithToken(proof, T0 + 1, ORIGIN)).toBe(true);
        expect(await h.store().revokeAllSessions(a.userId, T0 + 1, { origin: ORIGIN, cause: 'all' })).toEqual([c.sessionId]);
        expect(await h.store().revokeAllSessions(a.userId, T0 + 1, { origin: ORIGIN, cause: 'all' })).toEqual([]);
      });
      expect(summary(events)).toEqual([
        ['session.revoked', a.sessionId, 'logout'],
        ['session.revoked', b.sessionId, 'logout'],
        ['session.revoked', c.sessionId, 'all'],
      ]);
      for (const e of events) expect(e.details).toMatchObject({ requestId: 'req-123' });
    });

    it('revoking every session records one session.revoked per session', async () => {
      const a = sessionInput();
      const b = sessionInput({ userId: a.userId });
      for (const s of [a, b]) await h.store().createSession(s);
      const events = await heard(h.store(), () => h.store().revokeAllSessions(a.userId, T0 + 1, { origin: ORIGIN, cause: 'all' }));
      expect(events.map((e) => e.sessionId).sort()).toEqual([a.sessionId, b.sessionId].sort());
      expect(new Set(events.map((e) => e.id)).size).toBe(2);
    });

    it('an event of its own (a failed login): with a user in theirs too; without one in the audit log only', async () => {
      const userId = newId();
      const mine = await h.store().appendEvent({
        type: 'login.failed',
        time: T0,
        userId,
        sessionId: null,
        origin: ORIGIN,
        details: { reason: 'wrong_password' },
      });
      expect(mine).toMatchObject({ type: 'login.failed', userId, details: { reason: 'wrong_password', requestId: 'req-123' } });
      expect(await allOwn(h.store(), userId)).toEqual([mine]);
      const nobody = await h.store().appendEvent({
        type: 'login.failed',
        time: T0,
        userId: null,
        sessionId: null,
        origin: TEST_ORIGIN,
        details: { reason: 'unknown_email' },
      });
      expect(nobody.userId).toBeNull();
      const failed = await h.store().auditEvents({ first: 100, after: null, type: 'login.failed' });
      expect(failed.events.map((e) => e.event.id)).toEqual(expect.arrayContaining([mine.id, nobody.id]));
    });
  });

  describe('security events: reading', () => {
    it('pages newest first: every event exactly once, cursors that resume, hasNextPage until the end', async () => {
      const store = await h.fresh();
      const userId = newId();
      const appended: SecurityEvent[] = [];
      for (let i = 0; i < 7; i++) {
        appended.push(
          await store.appendEvent({ type: 'login.failed', time: T0 + i, userId, sessionId: null, origin: ORIGIN, details: { n: i } }),
        );
      }
      const first = await store.userEvents(userId, { first: 3, after: null });
      expect(first.events.map((e) => e.event.details)).toEqual([{ n: 6, requestId: 'req-123' }, { n: 5, requestId: 'req-123' }, { n: 4, requestId: 'req-123' }]);
      expect(first.hasNextPage).toBe(true);
      // A cursor survives its opaque encoding.
      const cursor = decodeCursor(encodeCursor(first.endCursor!));
      const second = await store.userEvents(userId, { first: 3, after: cursor });
      expect(second.events.map((e) => e.event.id)).toEqual([appended[3]!.id, appended[2]!.id, appended[1]!.id]);
      const third = await store.userEvents(userId, { first: 3, after: second.endCursor });
      expect(third.events.map((e) => e.event.id)).toEqual([appended[0]!.id]);
      expect(third.hasNextPage).toBe(false);
      expect(await allOwn(store, userId, 2)).toEqual([...appended].reverse());
      expect(await allAudit(store, 2)).toEqual([...appended].reverse());
      expect((await store.userEvents(newId(), { first: 5, after: null })).events).toEqual([]);
    });

    it('the audit log: every user, by user, by type', async () => {
      const store = await h.fresh();
      const alice = sessionInput();
      const bob = sessionInput();
      for (const s of [alice, bob]) await store.createSession(s);
      await store.revokeSession(alice, T0 + 1, LOGOUT);
      const all = await allAudit(store);
      expect(summary(all)).toEqual(
        expect.arrayContaining([
          ['session.created', alice.sessionId, null],
          ['session.created', bob.sessionId, null],
          ['session.revoked', alice.sessionId, 'logout'],
        ]),
      );
      expect(all).toHaveLength(3);
      const byAlice = await store.auditEvents({ first: 10, after: null, userId: alice.userId });
      expect(byAlice.events.map((e) => e.event.type)).toEqual(['session.revoked', 'session.created']);
      const revoked = await store.auditEvents({ first: 10, after: null, type: 'session.revoked' });
      expect(revoked.events.map((e) => e.event.sessionId)).toEqual([alice.sessionId]);
      expect(revoked.hasNextPage).toBe(false);
    });

    it('the audit log is bounded by AUDIT_STREAM_MAX, a user\'s own stream by its limit, keeping the newest', async () => {
      const store = await h.fresh({ auditStreamMax: 10, userEventsMax: 5 });
      const userId = newId();
      for (let i = 0; i < 400; i++) {
        await store.appendEvent({ type: 'login.failed', time: T0 + i, userId, sessionId: null, origin: ORIGIN, details: { n: i } });
      }
      const audit = await allAudit(store);
      const own = await allOwn(store, userId);
      // Redis trims whole nodes of a stream (MAXLEN ~): at least the bound is kept, far from all.
      expect(audit.length).toBeGreaterThanOrEqual(10);
      expect(audit.length).toBeLessThan(400);
      expect(own.length).toBeGreaterThanOrEqual(5);
      expect(own.length).toBeLessThan(400);
      expect(audit[0]!.details).toMatchObject({ n: 399 });
      expect(own[0]!.details).toMatchObject({ n: 399 });
    });
  });

  describe('security events: delivery through a consumer group', () => {
    it('claims each new event once, again only after its backoff, and never after it is acknowledged', async () => {
      const store = await h.fresh();
      const events = [];
      for (let i = 0; i < 3; i++) {
        events.push(await store.appendEvent({ type: 'login.failed', time: T0, userId: null, sessionId: null, origin: ORIGIN, details: {} }));
      }
      const streams = await store.deliveryStreams();
      expect(streams.length).toBeGreaterThan(0);
      const claimAll = async (over: Partial<ClaimRequest> = {}) =>
        (await Promise.all(streams.map((s) => store.claimDeliveries(s, claim(over))))).flat();
      const first = await claimAll();
      expect(first.map((d) => d.event.id).sort()).toEqual(events.map((e) => e.id).sort());
      expect(first.every((d) => d.attempt === 1)).toBe(true);
      // Pending, but not due: nobody takes them.
      expect(await claimAll({ consumer: 'c2' })).toEqual([]);
      await store.acknowledgeDeliveries('g', first.slice(0, 1));
      await sleep(150);
      const retried = await claimAll({ consumer: 'c2', now: Date.now() });
      expect(retried.map((d) => d.event.id).sort()).toEqual(first.slice(1).map((d) => d.event.id).sort());
      expect(retried.every((d) => d.attempt === 2)).toBe(true);
      // Taken over just now: not due again for anyone.
      expect(await claimAll({ consumer: 'c1', now: Date.now() })).toEqual([]);
      await store.acknowledgeDeliveries('g', retried);
      await sleep(150);
      expect(await claimAll({ now: Date.now() })).toEqual([]);
      // Another group sees everything from the start.
      expect((await claimAll({ group: 'other' })).map((d) => d.event.id).sort()).toEqual(events.map((e) => e.id).sort());
    });

    it('the backoff doubles with each attempt, up to its cap', async () => {
      const store = await h.fresh();
      await store.appendEvent({ type: 'login.failed', time: T0, userId: null, sessionId: null, origin: ORIGIN, details: {} });
      const streams = await store.deliveryStreams();
      const backoff = { minIdleMs: 0, baseDelayMs: 150, maxDelayMs: 10_000 };
      const claimAll = async () =>
        (await Promise.all(streams.map((s) => store.claimDeliveries(s, claim({ backoff, now: Date.now() }))))).flat();
      expect((await claimAll()).map((d) => d.attempt)).toEqual([1]);
      await sleep(200); // past 150 ms (attempt 1's wait)
      expect((await claimAll()).map((d) => d.attempt)).toEqual([2]);
      await sleep(200); // not past 300 ms (attempt 2's wait)
      expect(await claimAll()).toEqual([]);
      await sleep(200);
      expect((await claimAll()).map((d) => d.attempt)).toEqual([3]);
    });

    it('concurrent claimers never both take one entry', async () => {
      const store = await h.fresh();
      for (let i = 0; i < 20; i++) {
        await store.appendEvent({ type: 'login.failed', time: T0, userId: null, sessionId: null, origin: ORIGIN, details: { i } });
      }
      const streams = await store.deliveryStreams();
      const claims = (
        await Promise.all(
          Array.from({ length: 6 }, (_, i) => Promise.all(streams.map((s) => store.claimDeliveries(s, claim({ consumer: `c${i}`, count: 5 }))))),
        )
      ).flat(2);
      const ids = claims.map((d) => d.event.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(20);
    });
  });
}
