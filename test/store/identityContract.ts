import { describe, expect, it } from 'vitest';
import type { IdentityRecord } from '../../src/identity/types.js';
import { newId } from '../../src/ids.js';
import type { Store, UserRecord } from '../../src/store/types.js';
import { sessionInput, T0, TEST_ORIGIN } from './storeContract.js';

/** The identity verbs every store must have (docs/contract.md section 9); run on Redis and the embedded store. */
export function identityContract(store: () => Store): void {
  async function user(passwordHash: string | null = 'argon2-hash'): Promise<UserRecord> {
    const record: UserRecord = {
      id: newId(),
      email: `${newId().toLowerCase()}@example.com`,
      passwordHash,
      roles: ['user'],
      createdAt: T0,
      emailVerified: false,
      disabled: false,
    };
    expect(await store().createUser(record, TEST_ORIGIN)).toBe('created');
    return record;
  }
  function identity(userId: string, over: Partial<IdentityRecord> = {}): IdentityRecord {
    return { id: newId(), userId, provider: 'acme', subject: `sub-${newId()}`, email: 'a@example.com', linkedAt: T0, ...over };
  }
  const types = async (userId: string) => (await store().userEvents(userId, { first: 50, after: null })).events.map((e) => e.event.type);

  describe('identities', () => {
    it('links an identity: found by provider and subject, listed with the user, identity.linked recorded', async () => {
      const u = await user();
      const linked = identity(u.id);
      const result = await store().linkIdentity({ identity: linked, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      expect(result).toEqual({ status: 'linked', identity: linked, revokedSessionIds: [] });
      expect(await store().findIdentity('acme', linked.subject)).toEqual(linked);
      expect(await store().findIdentity('other', linked.subject)).toBeNull();
      expect(await store().listIdentities(u.id)).toEqual([linked]);
      expect(await types(u.id)).toContain('identity.linked');
      const event = (await store().userEvents(u.id, { first: 1, after: null })).events[0]!.event;
      expect(event.details).toMatchObject({ provider: 'acme', identityId: linked.id });
    });

    it('a subject linked to one account cannot be linked to another; linking it again to its own changes nothing', async () => {
      const [a, b] = [await user(), await user()];
      const linked = identity(a.id);
      await store().linkIdentity({ identity: linked, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      const other = identity(b.id, { subject: linked.subject });
      expect(await store().linkIdentity({ identity: other, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0)).toEqual({ status: 'taken' });
      expect(await store().listIdentities(b.id)).toEqual([]);
      expect(await types(b.id)).not.toContain('identity.linked');
      const again = await store().linkIdentity({ identity: identity(a.id, { subject: linked.subject }), origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      expect(again).toEqual({ status: 'linked', identity: linked, revokedSessionIds: [] });
      expect((await types(a.id)).filter((t) => t === 'identity.linked')).toHaveLength(1);
    });

    it('a take-over removes the password and ends every session in the same step as the link', async () => {
      const u = await user();
      const s1 = sessionInput({ userId: u.id });
      const s2 = sessionInput({ userId: u.id });
      await store().createSession(s1);
      await store().createSession(s2);
      const result = await store().linkIdentity({ identity: identity(u.id), origin: TEST_ORIGIN, takeOver: { cause: 'password_reset' }, markEmailVerified: true }, T0 + 1);
      expect(result.status).toBe('linked');
      if (result.status !== 'linked') return;
      expect(result.revokedSessionIds.sort()).toEqual([s1.sessionId, s2.sessionId].sort());
      expect(await store().listSessions(u.id, T0 + 2)).toEqual([]);
      const [stored] = await store().getUsers([u.id]);
      expect(stored?.passwordHash).toBeNull();
      expect(stored?.emailVerified).toBe(true);
      expect((await types(u.id)).filter((t) => t === 'session.revoked')).toHaveLength(2);
    });

    it('unlinks, but never the last way to sign in', async () => {
      const passwordless = await user(null);
      const only = identity(passwordless.id);
      await store().linkIdentity({ identity: only, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      expect(await store().unlinkIdentity(passwordless.id, only.id, T0, TEST_ORIGIN)).toBe('last_method');
      expect(await store().findIdentity('acme', only.subject)).toEqual(only);
      const second = identity(passwordless.id, { provider: 'github' });
      await store().linkIdentity({ identity: second, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0 + 1);
      expect(await store().unlinkIdentity(passwordless.id, only.id, T0 + 2, TEST_ORIGIN)).toBe('unlinked');
      expect(await store().findIdentity('acme', only.subject)).toBeNull();
      expect(await store().listIdentities(passwordless.id)).toEqual([second]);
      expect(await types(passwordless.id)).toContain('identity.unlinked');

      const withPassword = await user();
      const linked = identity(withPassword.id);
      await store().linkIdentity({ identity: linked, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      expect(await store().unlinkIdentity(withPassword.id, linked.id, T0, TEST_ORIGIN)).toBe('unlinked');
      expect(await store().unlinkIdentity(withPassword.id, linked.id, T0, TEST_ORIGIN)).toBe('not_found');
      expect(await store().unlinkIdentity(passwordless.id, linked.id, T0, TEST_ORIGIN)).toBe('not_found');
      // Once unlinked, another account may link that subject.
      const other = await user();
      const relinked = await store().linkIdentity({ identity: identity(other.id, { subject: linked.subject }), origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      expect(relinked.status).toBe('linked');
    });

    it('deleting a user’s identities removes them from the index too', async () => {
      const u = await user();
      const linked = identity(u.id);
      await store().linkIdentity({ identity: linked, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      await store().deleteIdentities(u.id);
      expect(await store().findIdentity('acme', linked.subject)).toBeNull();
      expect(await store().listIdentities(u.id)).toEqual([]);
    });
  });

  describe('deleting the user', () => {
    it('erases the identities and their index entries, so the subject can be linked again', async () => {
      const u = await user();
      const linked = identity(u.id);
      await store().linkIdentity({ identity: linked, origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false }, T0);
      expect(await store().deleteUser(u.id, T0 + 1, TEST_ORIGIN)).not.toBeNull();
      expect(await store().findIdentity('acme', linked.subject)).toBeNull();
      expect(await store().listIdentities(u.id)).toEqual([]);
      const other = await user();
      const relinked = await store().linkIdentity(
        { identity: identity(other.id, { subject: linked.subject }), origin: TEST_ORIGIN, takeOver: null, markEmailVerified: false },
        T0 + 2,
      );
      expect(relinked.status).toBe('linked');
    });
  });

  describe('flow records', () => {
    it('are single use, expire by the caller’s clock, and are kept per kind', async () => {
      const key = newId();
      await store().putFlowRecord('state', key, '{"a":1}', T0 + 60_000, T0);
      expect(await store().takeFlowRecord('code', key, T0)).toBeNull();
      expect(await store().takeFlowRecord('state', key, T0 + 1)).toBe('{"a":1}');
      expect(await store().takeFlowRecord('state', key, T0 + 2)).toBeNull();

      const late = newId();
      await store().putFlowRecord('code', late, 'x', T0 + 60_000, T0);
      expect(await store().takeFlowRecord('code', late, T0 + 60_000)).toBeNull();
      expect(await store().takeFlowRecord('ticket', newId(), T0)).toBeNull();
    });
  });
}
