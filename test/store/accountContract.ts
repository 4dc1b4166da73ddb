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

  describe('mail tokens', () => {
    const issue = (store: Store, userId: string, email: string, hash: string, kind: 'reset' | 'verify' | 'change' = 'reset', now = T0) =>
      store.issueMailToken({ userId, kind, secretHash: hash, email, ttlMs: 30 * MIN, now, origin: TEST_ORIGIN });
    const proof = (userId: string, secretHash: string, now = T0 + MIN) => ({ userId, secretHash, now, origin: TEST_ORIGIN });

    it('a reset spends the newest token once: password set, email verified, every session ended and pushed, events in the step', async () => {
      const { user, inputs } = await userWithSessions(h.store(), 2);
      const pushed: string[] = [];
      await h.peer().subscribe({ onRevoked: (ids) => pushed.push(...ids), onHealth: () => undefined });
      expect(await issue(h.store(), user.id, user.email, 'old-hash')).toBe(true);
      expect(await issue(h.store(), user.id, user.email, 'new-hash')).toBe(true);
      // Superseded: the first token no longer works.
      expect(await h.peer().resetPassword(proof(user.id, 'old-hash'), '$argon2id$new')).toBeNull();
      const reset = await h.peer().resetPassword(proof(user.id, 'new-hash'), '$argon2id$new');
      expect(reset?.user).toMatchObject({ id: user.id, passwordHash: '$argon2id$new', emailVerified: true });
      expect(reset?.revokedSessionIds.sort()).toEqual(inputs.map((i) => i.sessionId).sort());
      await expect.poll(() => pushed.filter((id) => inputs.some((i) => i.sessionId === id)).length).toBe(2);
      expect(await h.store().getSessions(inputs, T0 + MIN)).toEqual([null, null]);
      // Spent: a second use changes nothing.
      expect(await h.store().resetPassword(proof(user.id, 'new-hash'), '$argon2id$other')).toBeNull();
      expect((await h.store().getUsers([user.id]))[0]?.passwordHash).toBe('$argon2id$new');
      const types = (await h.store().userEvents(user.id, { first: 10, after: null })).events.map((e) => e.event.type);
      expect(types.slice(0, 5)).toEqual(['email.verified', 'password.changed', 'session.revoked', 'session.revoked', 'password.reset_requested']);
    });

    it('two concurrent resets with one token: exactly one succeeds', async () => {
      const { user } = await userWithSessions(h.store(), 1);
      await issue(h.store(), user.id, user.email, 'race-hash');
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? h.peer() : h.store()).resetPassword(proof(user.id, 'race-hash'), `$argon2id$${i}`)),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    });

    it('an expired token (by the caller clock) or one of another kind does nothing', async () => {
      const { user } = await userWithSessions(h.store(), 1);
      await issue(h.store(), user.id, user.email, 'exp-hash');
      expect(await h.store().resetPassword(proof(user.id, 'exp-hash', T0 + 31 * MIN), '$argon2id$x')).toBeNull();
      expect(await h.store().verifyEmail(proof(user.id, 'exp-hash'))).toBeNull();
      expect(await h.store().listSessions(user.id, T0 + MIN)).toHaveLength(1);
      expect(await h.store().issueMailToken({ userId: newId(), kind: 'reset', secretHash: 'x', email: 'a@b.example', ttlMs: MIN, now: T0, origin: TEST_ORIGIN })).toBe(false);
    });

    it('verifyEmail marks the current address verified; a token sent to an address the account no longer has does not', async () => {
      const { user } = await userWithSessions(h.store(), 0);
      await issue(h.store(), user.id, user.email, 'v-hash', 'verify');
      expect(await h.peer().verifyEmail(proof(user.id, 'v-hash'))).toMatchObject({ emailVerified: true });
      await issue(h.store(), user.id, 'someone-else@example.com', 'v2-hash', 'verify');
      expect(await h.store().verifyEmail(proof(user.id, 'v2-hash'))).toBeNull();
    });

    it('changeEmail moves the account to the new address (verified), frees the old one; an address taken meanwhile changes nothing', async () => {
      const { user } = await userWithSessions(h.store(), 0);
      const target = `${newId().toLowerCase()}@example.com`;
      await issue(h.store(), user.id, target, 'c-hash', 'change');
      const changed = await h.peer().changeEmail(proof(user.id, 'c-hash'));
      expect(changed).toEqual({ user: expect.objectContaining({ email: target, emailVerified: true }), previousEmail: user.email });
      expect((await h.store().findUserByEmail(target))?.id).toBe(user.id);
      expect(await h.store().findUserByEmail(user.email)).toBeNull();
      expect(await h.store().changeEmail(proof(user.id, 'c-hash'))).toBe('invalid');
      const other = userRecord();
      await h.store().createUser(other, TEST_ORIGIN);
      await issue(h.store(), user.id, other.email, 'c2-hash', 'change');
      expect(await h.store().changeEmail(proof(user.id, 'c2-hash'))).toBe('taken');
      expect((await h.store().findUserByEmail(other.email))?.id).toBe(other.id);
      expect((await h.store().getUsers([user.id]))[0]?.email).toBe(target);
    });
  });

  describe('lifecycle and administration', () => {
    it('changePassword ends every session but the one kept', async () => {
      const { user, inputs } = await userWithSessions(h.store(), 3);
      const changed = await h.peer().changePassword(user.id, '$argon2id$changed', inputs[1]!.sessionId, T0 + MIN, TEST_ORIGIN);
      expect(changed?.revokedSessionIds.sort()).toEqual([inputs[0]!.sessionId, inputs[2]!.sessionId].sort());
      expect((await h.store().listSessions(user.id, T0 + MIN)).map((s) => s.id)).toEqual([inputs[1]!.sessionId]);
    });

    it('disabling ends every session and records user.disabled once; enabling records user.enabled', async () => {
      const { user, inputs } = await userWithSessions(h.store(), 2);
      const disabled = await h.peer().setUserDisabled(user.id, true, T0 + MIN, TEST_ORIGIN);
      expect(disabled?.user.disabled).toBe(true);
      expect(disabled?.revokedSessionIds).toHaveLength(2);
      expect(await h.store().getSessions(inputs, T0 + MIN)).toEqual([null, null]);
      await h.store().setUserDisabled(user.id, true, T0 + MIN, TEST_ORIGIN);
      expect((await h.store().setUserDisabled(user.id, false, T0 + 2 * MIN, TEST_ORIGIN))?.user.disabled).toBe(false);
      const types = (await h.store().userEvents(user.id, { first: 10, after: null })).events.map((e) => e.event.type);
      expect(types.filter((t) => t === 'user.disabled' || t === 'user.enabled')).toEqual(['user.enabled', 'user.disabled']);
      expect(await h.store().setUserDisabled(newId(), true, T0, TEST_ORIGIN)).toBeNull();
    });

    it('setUserRoles stores the roles a refresh then reads with the session', async () => {
      const { user, inputs } = await userWithSessions(h.store(), 1);
      expect((await h.peer().setUserRoles(user.id, ['user', 'admin'], T0 + MIN, TEST_ORIGIN))?.roles).toEqual(['user', 'admin']);
      const rotated = await h.store().rotateSession(rotation(inputs[0]!, { now: T0 + 2 * MIN }));
      expect(rotated.status === 'rotated' && rotated.user?.roles).toEqual(['user', 'admin']);
    });

    it('lists users by email, a page at a time, with a prefix', async () => {
      const tag = newId().toLowerCase().replace(/[^a-z0-9]/g, 'x');
      const emails = ['c', 'a', 'e', 'b', 'd'].map((c) => `${tag}-${c}@example.com`);
      for (const email of emails) await h.store().createUser(userRecord({ email }), TEST_ORIGIN);
      await h.store().createUser(userRecord({ email: `${tag}x-other@example.com` }), TEST_ORIGIN);
      const seen: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 5; i++) {
        const page = await h.peer().listUsers({ first: 2, after, emailPrefix: `${tag}-` });
        seen.push(...page.users.map((u) => u.email));
        after = page.endCursor;
        if (!page.hasNextPage) break;
      }
      expect(seen).toEqual([...emails].sort());
    });
  });
}
