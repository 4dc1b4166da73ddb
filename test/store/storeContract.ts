import { describe, expect, it } from 'vitest';
import type { EventOrigin } from '../../src/events/types.js';
import { newId } from '../../src/ids.js';
import type { CreateSessionInput, RevokeAudit, RotateInput, Store } from '../../src/store/types.js';

/** The behaviour every store must have; run against Redis and the embedded store alike. */
export interface StoreHarness {
  store(): Store;
  /** A second store on the same backend (another gateway process); the same one where there is no other. */
  peer(): Store;
}

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
export const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

/** The client the contract's changes come from (their events carry it). */
export const TEST_ORIGIN: EventOrigin = { ipAddress: '127.0.0.1', userAgent: 'vitest' };
export const LOGOUT: RevokeAudit = { origin: TEST_ORIGIN, cause: 'logout' };
export const ALL: RevokeAudit = { origin: TEST_ORIGIN, cause: 'all' };

export function sessionInput(over: Partial<CreateSessionInput> = {}): CreateSessionInput {
  return {
    userId: newId(),
    sessionId: newId(),
    secretHash: 'hash-0',
    now: T0,
    idleTtlMs: 30 * DAY,
    absoluteTtlMs: 90 * DAY,
    userAgent: 'vitest',
    auth: { authTime: T0, amr: ['pwd'], acr: 'aal1' },
    ipAddress: '127.0.0.1',
    maxSessions: 100,
    origin: TEST_ORIGIN,
    ...over,
  };
}

export function rotation(created: CreateSessionInput, over: Partial<RotateInput> = {}): RotateInput {
  return {
    userId: created.userId,
    sessionId: created.sessionId,
    generation: 0,
    secretHash: created.secretHash,
    nextSecretHash: 'hash-1',
    sealedSuccessor: 'sealed-1',
    now: created.now + MIN,
    idleTtlMs: created.idleTtlMs,
    graceMs: 10_000,
    origin: TEST_ORIGIN,
    ...over,
  };
}

export function storeContract(h: StoreHarness): void {
  describe('sessions', () => {
    it('creates a session that can be read back and listed', async () => {
      const input = sessionInput();
      const created = await h.store().createSession(input);
      expect(created).toMatchObject({ id: input.sessionId, userId: input.userId, generation: 0, createdAt: T0 });
      expect(created).toMatchObject({ authTime: T0, amr: ['pwd'], acr: 'aal1' });
      expect(created.expiresAt).toBe(T0 + 30 * DAY);
      const [read] = await h.store().getSessions([input], T0 + 1);
      expect(read).toEqual(created);
      expect((await h.store().listSessions(input.userId, T0 + 1)).map((s) => s.id)).toEqual([input.sessionId]);
    });

    it('never sets the idle expiry past the absolute end', async () => {
      const input = sessionInput({ idleTtlMs: 30 * DAY, absoluteTtlMs: 1 * DAY });
      const created = await h.store().createSession(input);
      expect(created.expiresAt).toBe(T0 + DAY);
    });

    it('rotates the live token and pushes the idle expiry forward', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      const result = await h.store().rotateSession(rotation(input, { now: T0 + DAY }));
      expect(result.status).toBe('rotated');
      if (result.status !== 'rotated') return;
      expect(result.session.generation).toBe(1);
      expect(result.session.lastRefreshedAt).toBe(T0 + DAY);
      expect(result.session.expiresAt).toBe(T0 + 31 * DAY);
      const next = await h.store().rotateSession(
        rotation(input, { generation: 1, secretHash: 'hash-1', nextSecretHash: 'hash-2', now: T0 + 2 * DAY }),
      );
      expect(next.status).toBe('rotated');
    });

    it("a rotation and a grace answer carry the user's record, read in the same step", async () => {
      const user = { id: newId(), email: `${newId().toLowerCase()}@example.com`, passwordHash: 'h', roles: ['user'], createdAt: T0, emailVerified: false, disabled: false };
      await h.store().createUser(user, TEST_ORIGIN);
      const input = sessionInput({ userId: user.id });
      await h.store().createSession(input);
      const rotated = await h.store().rotateSession(rotation(input));
      expect(rotated).toMatchObject({ status: 'rotated', user });
      const grace = await h.store().rotateSession(rotation(input, { now: T0 + MIN + 1 }));
      expect(grace).toMatchObject({ status: 'grace', user });
      const orphan = sessionInput();
      await h.store().createSession(orphan);
      expect(await h.store().rotateSession(rotation(orphan))).toMatchObject({ status: 'rotated', user: null });
    });

    it('a wrong secret for the live generation is invalid and revokes nothing', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      expect((await h.store().rotateSession(rotation(input, { secretHash: 'guess' }))).status).toBe('invalid');
      expect((await h.store().rotateSession(rotation(input, { generation: 5 }))).status).toBe('invalid');
      expect((await h.store().rotateSession(rotation(input))).status).toBe('rotated');
    });

    it('a wrong secret for the previous generation is invalid and revokes nothing', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      await h.store().rotateSession(rotation(input));
      const guess = await h.store().rotateSession(rotation(input, { secretHash: 'guess', now: T0 + 2 * MIN }));
      expect(guess.status).toBe('invalid');
      expect(await h.store().getSessions([input], T0 + 2 * MIN)).not.toEqual([null]);
    });

    it('an unknown session is invalid', async () => {
      const input = sessionInput();
      expect((await h.store().rotateSession(rotation(input))).status).toBe('invalid');
    });

    it('the predecessor within the grace window gets the same successor', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      await h.store().rotateSession(rotation(input, { now: T0 + MIN }));
      const again = await h.store().rotateSession(
        rotation(input, { now: T0 + MIN + 9_000, nextSecretHash: 'other', sealedSuccessor: 'other-sealed' }),
      );
      expect(again.status).toBe('grace');
      if (again.status !== 'grace') return;
      expect(again.sealedSuccessor).toBe('sealed-1');
      expect(again.session.generation).toBe(1);
      // The live token is still the first successor.
      const live = await h.store().rotateSession(
        rotation(input, { generation: 1, secretHash: 'hash-1', nextSecretHash: 'hash-2', now: T0 + 2 * MIN }),
      );
      expect(live.status).toBe('rotated');
    });

    it('the predecessor after the grace window is a replay: the session is revoked', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      await h.store().rotateSession(rotation(input, { now: T0 + MIN }));
      const replay = await h.store().rotateSession(rotation(input, { now: T0 + MIN + 10_001 }));
      expect(replay.status).toBe('reused');
      expect(await h.store().getSessions([input], T0 + 2 * MIN)).toEqual([null]);
      const live = await h.store().rotateSession(
        rotation(input, { generation: 1, secretHash: 'hash-1', now: T0 + 2 * MIN }),
      );
      expect(live.status).toBe('invalid');
    });

    it('with the grace off, any second use is a replay', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      await h.store().rotateSession(rotation(input, { graceMs: 0 }));
      expect((await h.store().rotateSession(rotation(input, { graceMs: 0 }))).status).toBe('reused');
    });

    it('an older ancestor is a replay even within the grace window', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      await h.store().rotateSession(rotation(input, { now: T0 + MIN }));
      await h.store().rotateSession(
        rotation(input, { generation: 1, secretHash: 'hash-1', nextSecretHash: 'hash-2', now: T0 + MIN + 1 }),
      );
      const replay = await h.store().rotateSession(rotation(input, { now: T0 + MIN + 2 }));
      expect(replay.status).toBe('reused');
      expect(await h.store().listSessions(input.userId, T0 + MIN + 3)).toEqual([]);
    });

    it('20 concurrent refreshes with one token rotate it exactly once', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? h.peer() : h.store()).rotateSession(
            rotation(input, { nextSecretHash: `hash-${i}`, sealedSuccessor: `sealed-${i}` }),
          ),
        ),
      );
      const rotated = results.filter((r) => r.status === 'rotated');
      expect(rotated).toHaveLength(1);
      const graces = results.filter((r) => r.status === 'grace');
      expect(graces).toHaveLength(19);
      const winner = results.indexOf(rotated[0]!);
      for (const g of graces) if (g.status === 'grace') expect(g.sealedSuccessor).toBe(`sealed-${winner}`);
      const [session] = await h.store().getSessions([input], T0 + 2 * MIN);
      expect(session?.generation).toBe(1);
    });

    it('20 concurrent refreshes with the grace off: one rotation, then the replay ends the session', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? h.peer() : h.store()).rotateSession(rotation(input, { graceMs: 0 })),
        ),
      );
      expect(results.filter((r) => r.status === 'rotated')).toHaveLength(1);
      // The first replay ends the session; later ones find no session at all.
      expect(results.filter((r) => r.status === 'reused')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'invalid')).toHaveLength(18);
      expect(await h.store().getSessions([input], T0 + 2 * MIN)).toEqual([null]);
    });

    it('ends at the absolute lifetime however often it is refreshed', async () => {
      const input = sessionInput({ idleTtlMs: 10 * DAY, absoluteTtlMs: 25 * DAY });
      await h.store().createSession(input);
      let hash = input.secretHash;
      for (let day = 8, gen = 0; day < 25; day += 8, gen++) {
        const r = await h.store().rotateSession(
          rotation(input, { generation: gen, secretHash: hash, nextSecretHash: `h${gen + 1}`, now: T0 + day * DAY }),
        );
        expect(r.status).toBe('rotated');
        if (r.status === 'rotated') expect(r.session.expiresAt).toBe(Math.min(T0 + (day + 10) * DAY, T0 + 25 * DAY));
        hash = `h${gen + 1}`;
      }
      const late = await h.store().rotateSession(
        rotation(input, { generation: 3, secretHash: hash, nextSecretHash: 'x', now: T0 + 25 * DAY }),
      );
      expect(late.status).toBe('expired');
      expect(await h.store().getSessions([input], T0 + 25 * DAY)).toEqual([null]);
    });

    it('ends when idle past its idle lifetime', async () => {
      const input = sessionInput({ idleTtlMs: DAY });
      await h.store().createSession(input);
      expect((await h.store().getSessions([input], T0 + DAY - 1))[0]).not.toBeNull();
      expect(await h.store().getSessions([input], T0 + DAY)).toEqual([null]);
      expect((await h.store().rotateSession(rotation(input, { now: T0 + DAY }))).status).toBe('expired');
    });

    it('revokes one session: its token stops working, the others stay', async () => {
      const a = sessionInput();
      const b = sessionInput({ userId: a.userId });
      await h.store().createSession(a);
      await h.store().createSession(b);
      expect(await h.store().revokeSession(a, T0 + MIN, LOGOUT)).toBe(true);
      expect(await h.store().revokeSession(a, T0 + MIN, LOGOUT)).toBe(false);
      expect((await h.store().rotateSession(rotation(a))).status).toBe('invalid');
      expect((await h.store().listSessions(a.userId, T0 + MIN)).map((s) => s.id)).toEqual([b.sessionId]);
    });

    it('revokes with a refresh token only for the holder of the live token or its predecessor', async () => {
      const a = sessionInput();
      await h.store().createSession(a);
      const proof = { userId: a.userId, sessionId: a.sessionId, generation: 0, secretHash: a.secretHash };
      expect(await h.store().revokeSessionWithToken({ ...proof, secretHash: 'guess' }, T0 + 1, TEST_ORIGIN)).toBe(false);
      expect(await h.store().revokeSessionWithToken({ ...proof, generation: 1 }, T0 + 1, TEST_ORIGIN)).toBe(false);
      await h.store().rotateSession(rotation(a));
      await h.store().rotateSession(rotation(a, { generation: 1, secretHash: 'hash-1', nextSecretHash: 'hash-2' }));
      // Generation 0 is now two behind: it proves nothing.
      expect(await h.store().revokeSessionWithToken(proof, T0 + 2 * MIN, TEST_ORIGIN)).toBe(false);
      expect((await h.store().getSessions([a], T0 + 2 * MIN))[0]).not.toBeNull();
      const predecessor = { ...proof, generation: 1, secretHash: 'hash-1' };
      expect(await h.store().revokeSessionWithToken(predecessor, T0 + 2 * MIN, TEST_ORIGIN)).toBe(true);
      expect(await h.store().getSessions([a], T0 + 2 * MIN)).toEqual([null]);
      expect(await h.store().revokeSessionWithToken(predecessor, T0 + 2 * MIN, TEST_ORIGIN)).toBe(false);
    });

    it("does not revoke a session through another user's id", async () => {
      const a = sessionInput();
      await h.store().createSession(a);
      expect(await h.store().revokeSession({ userId: newId(), sessionId: a.sessionId }, T0 + MIN, LOGOUT)).toBe(false);
      expect((await h.store().getSessions([a], T0 + MIN))[0]).not.toBeNull();
    });

    it('revokes all sessions of a user and returns their ids', async () => {
      const a = sessionInput();
      const b = sessionInput({ userId: a.userId });
      const other = sessionInput();
      for (const s of [a, b, other]) await h.store().createSession(s);
      const revoked = await h.store().revokeAllSessions(a.userId, T0 + MIN, ALL);
      expect(revoked.sort()).toEqual([a.sessionId, b.sessionId].sort());
      expect(await h.store().listSessions(a.userId, T0 + MIN)).toEqual([]);
      expect(await h.store().listSessions(other.userId, T0 + MIN)).toHaveLength(1);
      expect(await h.store().revokeAllSessions(a.userId, T0 + MIN, ALL)).toEqual([]);
    });

    it('drops ended sessions from the user index', async () => {
      const short = sessionInput({ idleTtlMs: DAY });
      const long = sessionInput({ userId: short.userId, sessionId: newId() });
      await h.store().createSession(short);
      await h.store().createSession(long);
      const later = await h.store().listSessions(short.userId, T0 + DAY + 1);
      expect(later.map((s) => s.id)).toEqual([long.sessionId]);
    });

    it('reads many sessions in one call, null for the missing', async () => {
      const a = sessionInput();
      await h.store().createSession(a);
      const missing = { userId: a.userId, sessionId: newId() };
      const rows = await h.store().getSessions([a, missing, a], T0 + 1);
      expect(rows.map((r) => r?.id ?? null)).toEqual([a.sessionId, null, a.sessionId]);
    });
  });

  describe('users', () => {
    const user = (email: string) => ({
      id: newId(),
      email,
      passwordHash: '$argon2id$fake',
      roles: ['user', 'admin'],
      createdAt: T0,
      emailVerified: false,
      disabled: false,
    });

    it('creates a user, finds it by email and by id', async () => {
      const u = user(`${newId().toLowerCase()}@example.com`);
      expect(await h.store().createUser(u, TEST_ORIGIN)).toBe('created');
      expect(await h.store().findUserByEmail(u.email)).toEqual(u);
      expect(await h.store().getUsers([u.id, newId()])).toEqual([u, null]);
    });

    it('refuses a second account for the same email, leaving the first intact', async () => {
      const email = `${newId().toLowerCase()}@example.com`;
      const first = user(email);
      await h.store().createUser(first, TEST_ORIGIN);
      const second = user(email);
      expect(await h.peer().createUser(second, TEST_ORIGIN)).toBe('email_taken');
      expect((await h.store().findUserByEmail(email))?.id).toBe(first.id);
      expect(await h.store().getUsers([second.id])).toEqual([null]);
    });

    it('exactly one of many concurrent signups for one email wins', async () => {
      const email = `${newId().toLowerCase()}@example.com`;
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? h.peer() : h.store()).createUser(user(email), TEST_ORIGIN)),
      );
      expect(results.filter((r) => r === 'created')).toHaveLength(1);
    });

    it('an unknown email is null', async () => {
      expect(await h.store().findUserByEmail(`${newId()}@nowhere.example`)).toBeNull();
    });
  });

  describe('counters', () => {
    it('counts within a window that starts at the first increment, then resets', async () => {
      const name = `login:${newId()}`;
      expect(await h.store().increment(name, MIN, T0)).toEqual({ count: 1, resetInMs: MIN });
      expect(await h.store().increment(name, MIN, T0 + 10_000)).toEqual({ count: 2, resetInMs: 50_000 });
      expect(await h.store().peek(name, T0 + 20_000)).toEqual({ count: 2, resetInMs: 40_000 });
      expect(await h.store().peek(name, T0 + MIN)).toEqual({ count: 0, resetInMs: 0 });
      expect(await h.store().increment(name, MIN, T0 + MIN)).toEqual({ count: 1, resetInMs: MIN });
      await h.store().reset(name);
      expect((await h.store().peek(name, T0 + MIN)).count).toBe(0);
    });

    it('takes back a count, never below zero', async () => {
      const name = `login:${newId()}`;
      await h.store().increment(name, MIN, T0);
      await h.store().increment(name, MIN, T0);
      expect((await h.store().increment(name, MIN, T0 + 1, -1)).count).toBe(1);
      expect((await h.store().increment(name, MIN, T0 + 2, -5)).count).toBe(0);
    });
  });

  describe('revocation feed', () => {
    async function listen() {
      const received: string[] = [];
      let healthy = false;
      await h.peer().subscribe({ onRevoked: (ids) => received.push(...ids), onHealth: (ok) => (healthy = ok) });
      await expect.poll(() => healthy).toBe(true);
      return received;
    }

    it('revoking a session pushes its id to subscribers in the same step', async () => {
      const received = await listen();
      const a = sessionInput();
      await h.store().createSession(a);
      await h.store().revokeSession(a, T0 + 1, LOGOUT);
      await expect.poll(() => received).toContain(a.sessionId);
    });

    it('revoking all sessions pushes every id', async () => {
      const received = await listen();
      const a = sessionInput();
      const b = sessionInput({ userId: a.userId });
      for (const s of [a, b]) await h.store().createSession(s);
      await h.store().revokeAllSessions(a.userId, T0 + 1, ALL);
      await expect.poll(() => received).toEqual(expect.arrayContaining([a.sessionId, b.sessionId]));
    });

    it('a replay pushes the id of the session it ends', async () => {
      const received = await listen();
      const a = sessionInput();
      await h.store().createSession(a);
      await h.store().rotateSession(rotation(a, { graceMs: 0 }));
      await h.store().rotateSession(rotation(a, { graceMs: 0 }));
      await expect.poll(() => received).toContain(a.sessionId);
    });

    it("past a user's session limit the oldest sessions end, are pushed, and their tokens stop working", async () => {
      const received = await listen();
      const first = sessionInput({ maxSessions: 2 });
      const second = sessionInput({ userId: first.userId, maxSessions: 2, now: T0 + 1 });
      const third = sessionInput({ userId: first.userId, maxSessions: 2, now: T0 + 2 });
      for (const s of [first, second, third]) await h.store().createSession(s);
      await expect.poll(() => received).toContain(first.sessionId);
      expect(received).not.toContain(second.sessionId);
      const listed = await h.store().listSessions(first.userId, T0 + 3);
      expect(listed.map((s) => s.id).sort()).toEqual([second.sessionId, third.sessionId].sort());
      expect((await h.store().rotateSession(rotation(first, { now: T0 + 3 }))).status).toBe('invalid');
      expect((await h.store().rotateSession(rotation(second, { now: T0 + 3 }))).status).toBe('rotated');
      // A session that ended by itself (here the newer one, after its 50 ms) leaves room: the
      // older live one is not ended for it.
      const a = sessionInput({ maxSessions: 2 });
      const short = sessionInput({ userId: a.userId, maxSessions: 2, idleTtlMs: 50 });
      for (const s of [a, short]) await h.store().createSession(s);
      await new Promise((resolve) => setTimeout(resolve, 120));
      const b = sessionInput({ userId: a.userId, maxSessions: 2, now: T0 + 5_000 });
      await h.store().createSession(b);
      expect((await h.store().listSessions(a.userId, T0 + 5_001)).map((s) => s.id).sort()).toEqual([a.sessionId, b.sessionId].sort());
    });

    it('a session created again under its own id is replaced, not counted against the limit', async () => {
      const received = await listen();
      const a = sessionInput({ maxSessions: 2 });
      const b = sessionInput({ userId: a.userId, maxSessions: 2, now: T0 + 1 });
      for (const s of [a, b]) await h.store().createSession(s);
      await h.store().createSession({ ...a, now: T0 + 2, secretHash: 'hash-again' });
      expect((await h.store().listSessions(a.userId, T0 + 3)).map((s) => s.id).sort()).toEqual([a.sessionId, b.sessionId].sort());
      // a is now the newest: the next session ends b.
      await h.store().createSession(sessionInput({ userId: a.userId, maxSessions: 2, now: T0 + 4 }));
      await expect.poll(() => received).toContain(b.sessionId);
      expect(received).not.toContain(a.sessionId);
    });

    it('nothing is pushed for a session that was not revoked', async () => {
      const received = await listen();
      const ghost = sessionInput();
      expect(await h.store().revokeSession(ghost, T0, LOGOUT)).toBe(false);
      const live = sessionInput();
      await h.store().createSession(live);
      await h.store().revokeSession(live, T0 + 1, LOGOUT);
      await expect.poll(() => received).toContain(live.sessionId);
      expect(received).not.toContain(ghost.sessionId);
    });
  });
}
