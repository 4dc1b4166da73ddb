import { describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import type { Store, UserRecord } from '../../src/store/types.js';
import { rotation, sessionInput, T0, TEST_ORIGIN, type StoreHarness } from './storeContract.js';

const MIN = 60_000;

export function userRecord(over: Partial<UserRecord> = {}): UserRecord {
  return {
    id: newId(),
    email: `${newId().toLowerCase()}@example.com`,
    passwordHash: '$argon2id$fake',
    roles: ['user'],
    createdAt: T0,
    emailVerified: false,
    disabled: false,
    ...over,
  };
}

/** A user with `sessions` live sessions. */
async function userWithSessions(store: Store, sessions: number, over: Partial<UserRecord> = {}) {
  const user = userRecord(over);
  expect(await store.createUser(user, TEST_ORIGIN)).toBe('created');
  const inputs = [];
  for (let i = 0; i < sessions; i++) {
    const input = sessionInput({ userId: user.id, now: T0 + i });
    await store.createSession(input);
    inputs.push(input);
  }
  return { user, inputs };
}

/** What every store does for accounts (docs/contract.md section 7); run on Redis and the embedded store alike. */
export function accountContract(h: StoreHarness): void {
  describe('users: the record', () => {
    it('keeps emailVerified, disabled and a null password hash (an account with no password)', async () => {
      const user = userRecord({ emailVerified: true, disabled: true, passwordHash: null });
      await h.store().createUser(user, TEST_ORIGIN);
      expect(await h.peer().findUserByEmail(user.email)).toEqual(user);
      expect(await h.peer().getUsers([user.id])).toEqual([user]);
    });
  });

  describe('session authentication (auth_time, amr, acr)', () => {
    it('a session keeps how the user signed in, and a refresh keeps it', async () => {
      const input = sessionInput({ auth: { authTime: T0 - 5_000, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' } });
      const created = await h.store().createSession(input);
      expect(created).toMatchObject({ authTime: T0 - 5_000, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' });
      const result = await h.peer().rotateSession(rotation(input, { now: T0 + 10 * MIN }));
      expect(result.status).toBe('rotated');
      if (result.status !== 'rotated') return;
      expect(result.session).toMatchObject({ authTime: T0 - 5_000, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2', generation: 1 });
    });

    it('reauthenticateSession renews them and the live secret in one step; the old secret is invalid, never a replay', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      const later = T0 + 20 * MIN;
      const renewed = await h.peer().reauthenticateSession({
        userId: input.userId,
        sessionId: input.sessionId,
        now: later,
        auth: { authTime: later, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2' },
        nextSecretHash: 'hash-reauth',
      });
      expect(renewed).toMatchObject({ id: input.sessionId, authTime: later, amr: ['pwd', 'otp', 'mfa'], acr: 'aal2', generation: 0 });
      const [read] = await h.store().getSessions([input], later + 1);
      expect(read).toMatchObject({ authTime: later, acr: 'aal2', expiresAt: input.now + input.idleTtlMs });
      // The secret held before is merely not valid (the session lives on) …
      expect((await h.store().rotateSession(rotation(input, { now: later + MIN }))).status).toBe('invalid');
      expect(await h.store().getSessions([input], later + MIN)).toEqual([expect.objectContaining({ id: input.sessionId })]);
      // … and the new one rotates, keeping the renewed authentication.
      const rotated = await h.store().rotateSession(rotation(input, { secretHash: 'hash-reauth', now: later + 2 * MIN }));
      expect(rotated.status).toBe('rotated');
      if (rotated.status === 'rotated') expect(rotated.session).toMatchObject({ authTime: later, amr: ['pwd', 'otp', 'mfa'] });
    });

    it('reauthenticateSession of a session that ended or is unknown changes nothing and answers null', async () => {
      const input = sessionInput();
      await h.store().createSession(input);
      await h.store().revokeSession(input, T0 + 1, { origin: TEST_ORIGIN, cause: 'logout' });
      const reauth = { auth: { authTime: T0 + 2, amr: ['pwd'], acr: 'aal1' as const }, nextSecretHash: 'x', now: T0 + 2 };
      expect(await h.store().reauthenticateSession({ ...input, ...reauth })).toBeNull();
      expect(await h.store().reauthenticateSession({ userId: input.userId, sessionId: newId(), ...reauth })).toBeNull();
      expect(await h.store().getSessions([input], T0 + 3)).toEqual([null]);
    });
  });

  describe('deleteUser', () => {
    it('erases the user and every session (revoked and pushed), records session.revoked (deleted) and user.deleted, and frees the email', async () => {
      const { user, inputs } = await userWithSessions(h.store(), 2);
      const pushed: string[] = [];
      await h.peer().subscribe({ onRevoked: (ids) => pushed.push(...ids), onHealth: () => undefined });
      const deleted = await h.store().deleteUser(user.id, T0 + MIN, TEST_ORIGIN);
      expect(deleted).toEqual({ email: user.email, revokedSessionIds: expect.arrayContaining(inputs.map((i) => i.sessionId)) });
      expect(deleted!.revokedSessionIds).toHaveLength(2);
      await expect.poll(() => pushed.filter((id) => inputs.some((i) => i.sessionId === id)).length).toBe(2);
      expect(await h.store().getUsers([user.id])).toEqual([null]);
      expect(await h.store().findUserByEmail(user.email)).toBeNull();
      expect(await h.store().getSessions(inputs, T0 + MIN)).toEqual([null, null]);
      expect(await h.store().listSessions(user.id, T0 + MIN)).toEqual([]);
      const audit = await h.store().auditEvents({ first: 20, after: null });
      const mine = audit.events.map((e) => e.event).filter((e) => e.userId === user.id);
      expect(mine.slice(0, 3).map((e) => [e.type, e.details.cause ?? null])).toEqual([
        ['user.deleted', null],
        ['session.revoked', 'deleted'],
        ['session.revoked', 'deleted'],
      ]);
      // The user's own event list went with the account.
      expect((await h.store().userEvents(user.id, { first: 10, after: null })).events).toEqual([]);
      // The email may sign up again.
      const again = userRecord({ email: user.email });
      expect(await h.peer().createUser(again, TEST_ORIGIN)).toBe('created');
      expect((await h.store().findUserByEmail(user.email))?.id).toBe(again.id);
    });

    it('an unknown user is null and changes nothing', async () => {
      expect(await h.store().deleteUser(newId(), T0, TEST_ORIGIN)).toBeNull();
    });
  });
}
