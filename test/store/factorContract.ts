import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FactorRecord } from '../../src/factors/store.js';
import { newId } from '../../src/ids.js';
import type { Store } from '../../src/store/types.js';
import { T0, TEST_ORIGIN } from './storeContract.js';

const MIN = 60_000;
const hash = (text: string) => createHash('sha256').update(text).digest('hex');

async function eventsOf(store: Store, userId: string) {
  const page = await store.userEvents(userId, { first: 50, after: null });
  return page.events.map((e) => ({ type: e.event.type, details: e.event.details }));
}

async function activeTotp(store: Store, userId = newId(), step = 1000) {
  const factorId = newId();
  await store.putPendingTotp({ userId, factorId, secret: 'JBSWY3DPEHPK3PXP', createdAt: T0 }, 10 * MIN);
  const factor = await store.activateTotp({
    userId,
    factorId,
    step,
    recoveryCodeHashes: [hash('a'), hash('b')],
    now: T0,
    origin: TEST_ORIGIN,
  });
  return { userId, factorId, factor: factor! };
}

function passkey(userId: string, over: Partial<FactorRecord> = {}): FactorRecord {
  return {
    id: newId(),
    userId,
    kind: 'passkey',
    name: 'laptop',
    createdAt: T0,
    lastUsedAt: null,
    counter: 5,
    passkey: { credentialId: newId(), publicKey: 'pk', transports: ['internal'], deviceType: 'singleDevice', backedUp: false },
    ...over,
  };
}

/** Second factors (src/factors/store.ts): the same behaviour on Redis and the embedded store. */
export function factorContract(h: { store(): Store }): void {
  describe('second factors', () => {
    it('activates a pending TOTP enrolment once, with its recovery codes and mfa.enrolled', async () => {
      const { userId, factorId, factor } = await activeTotp(h.store());
      expect(factor).toMatchObject({ id: factorId, userId, kind: 'totp', counter: 1000, secret: 'JBSWY3DPEHPK3PXP' });
      expect(await h.store().listFactors(userId)).toEqual([expect.objectContaining({ id: factorId, kind: 'totp', lastUsedAt: null })]);
      expect(await h.store().countRecoveryCodes(userId)).toBe(2);
      expect(await h.store().getPendingTotp(userId, factorId, T0)).toBeNull();
      const again = await h.store().activateTotp({ userId, factorId, step: 1001, recoveryCodeHashes: [], now: T0, origin: TEST_ORIGIN });
      expect(again).toBeNull();
      expect(await h.store().countRecoveryCodes(userId)).toBe(2);
      expect(await eventsOf(h.store(), userId)).toEqual([{ type: 'mfa.enrolled', details: expect.objectContaining({ kind: 'totp', factorId }) }]);
    });

    it('does not activate an enrolment nobody started', async () => {
      const userId = newId();
      expect(await h.store().activateTotp({ userId, factorId: newId(), step: 1, recoveryCodeHashes: [], now: T0, origin: TEST_ORIGIN })).toBeNull();
      expect(await h.store().listFactors(userId)).toEqual([]);
      expect(await eventsOf(h.store(), userId)).toEqual([]);
    });

    it('accepts a TOTP step only once, and never an earlier one', async () => {
      const { userId, factorId } = await activeTotp(h.store());
      expect(await h.store().useFactor(userId, { kind: 'totp', factorId, step: 1000 }, T0)).toBe(false);
      expect(await h.store().useFactor(userId, { kind: 'totp', factorId, step: 1001 }, T0 + MIN)).toBe(true);
      expect(await h.store().useFactor(userId, { kind: 'totp', factorId, step: 1001 }, T0 + MIN)).toBe(false);
      expect(await h.store().useFactor(userId, { kind: 'totp', factorId, step: 999 }, T0 + MIN)).toBe(false);
      const [factor] = await h.store().listFactors(userId);
      expect(factor).toMatchObject({ counter: 1001, lastUsedAt: T0 + MIN });
    });

    it('spends a recovery code once; replacing them voids the old ones', async () => {
      const { userId } = await activeTotp(h.store());
      expect(await h.store().useFactor(userId, { kind: 'recovery_code', codeHash: hash('a') }, T0)).toBe(true);
      expect(await h.store().useFactor(userId, { kind: 'recovery_code', codeHash: hash('a') }, T0)).toBe(false);
      expect(await h.store().useFactor(userId, { kind: 'recovery_code', codeHash: hash('zzz') }, T0)).toBe(false);
      await h.store().replaceRecoveryCodes(userId, [hash('c')], T0, TEST_ORIGIN);
      expect(await h.store().useFactor(userId, { kind: 'recovery_code', codeHash: hash('b') }, T0)).toBe(false);
      expect(await h.store().countRecoveryCodes(userId)).toBe(1);
      expect((await eventsOf(h.store(), userId))[0]).toEqual({ type: 'mfa.enrolled', details: expect.objectContaining({ kind: 'recovery_code' }) });
    });

    it('adds a passkey once per credential; its counter must grow', async () => {
      const userId = newId();
      const key = passkey(userId);
      expect(await h.store().addPasskey(key, TEST_ORIGIN)).toBe('added');
      expect(await h.store().addPasskey({ ...key, id: newId() }, TEST_ORIGIN)).toBe('duplicate');
      const [stored] = await h.store().listFactors(userId);
      expect(stored).toEqual(key);
      expect(await h.store().useFactor(userId, { kind: 'passkey', factorId: key.id, counter: 5 }, T0)).toBe(false);
      expect(await h.store().useFactor(userId, { kind: 'passkey', factorId: key.id, counter: 4 }, T0)).toBe(false);
      expect(await h.store().useFactor(userId, { kind: 'passkey', factorId: key.id, counter: 6 }, T0 + MIN)).toBe(true);
      expect((await h.store().listFactors(userId))[0]).toMatchObject({ counter: 6, lastUsedAt: T0 + MIN });
      // A TOTP use of a passkey's id is no use of it.
      expect(await h.store().useFactor(userId, { kind: 'totp', factorId: key.id, step: 99 }, T0)).toBe(false);
    });

    it('accepts a passkey that keeps no counter (0 and 0)', async () => {
      const userId = newId();
      const key = passkey(userId, { counter: 0 });
      await h.store().addPasskey(key, TEST_ORIGIN);
      expect(await h.store().useFactor(userId, { kind: 'passkey', factorId: key.id, counter: 0 }, T0)).toBe(true);
    });

    it('removes a factor with mfa.removed; the last one takes the recovery codes along', async () => {
      const { userId, factorId } = await activeTotp(h.store());
      const key = passkey(userId);
      await h.store().addPasskey(key, TEST_ORIGIN);
      expect(await h.store().removeFactor(userId, key.id, T0, TEST_ORIGIN)).toBe('passkey');
      expect(await h.store().countRecoveryCodes(userId)).toBe(2);
      // Its credential may be registered again.
      const readded = { ...key, id: newId() };
      expect(await h.store().addPasskey(readded, TEST_ORIGIN)).toBe('added');
      expect(await h.store().removeFactor(userId, key.id, T0, TEST_ORIGIN)).toBeNull();
      expect(await h.store().removeFactor(userId, readded.id, T0, TEST_ORIGIN)).toBe('passkey');
      expect(await h.store().countRecoveryCodes(userId)).toBe(2);
      expect(await h.store().removeFactor(userId, factorId, T0, TEST_ORIGIN)).toBe('totp');
      expect(await h.store().listFactors(userId)).toEqual([]);
      expect(await h.store().countRecoveryCodes(userId)).toBe(0);
      const events = await eventsOf(h.store(), userId);
      expect(events.filter((e) => e.type === 'mfa.removed').map((e) => e.details.kind)).toEqual(['totp', 'passkey', 'passkey']);
    });

    it('counts attempts on an MFA ticket and ends it after the last', async () => {
      const { userId } = await activeTotp(h.store());
      const tokenHash = hash(newId());
      await h.store().createMfaTicket({ userId, tokenHash, now: T0, ttlMs: 5 * MIN, maxAttempts: 5 });
      for (let i = 0; i < 5; i++) expect(await h.store().beginMfaAttempt(userId, tokenHash, T0)).toBe(true);
      expect(await h.store().beginMfaAttempt(userId, tokenHash, T0)).toBe(false);
      expect(await h.store().completeMfa(userId, tokenHash, { kind: 'recovery_code', codeHash: hash('a') }, T0)).toBe('token_invalid');
      // The code was not spent by the refused completion.
      expect(await h.store().countRecoveryCodes(userId)).toBe(2);
    });

    it('completes an MFA ticket once, only with a factor use that holds, and not after it expires', async () => {
      const { userId, factorId } = await activeTotp(h.store());
      const tokenHash = hash(newId());
      await h.store().createMfaTicket({ userId, tokenHash, now: T0, ttlMs: 5 * MIN, maxAttempts: 5 });
      expect(await h.store().completeMfa(userId, tokenHash, { kind: 'totp', factorId, step: 1000 }, T0)).toBe('code_invalid');
      expect(await h.store().completeMfa(userId, tokenHash, { kind: 'totp', factorId, step: 1001 }, T0)).toBe('ok');
      expect(await h.store().completeMfa(userId, tokenHash, { kind: 'totp', factorId, step: 1002 }, T0)).toBe('token_invalid');
      expect(await h.store().beginMfaAttempt(userId, tokenHash, T0)).toBe(false);

      const late = hash(newId());
      await h.store().createMfaTicket({ userId, tokenHash: late, now: T0, ttlMs: 5 * MIN, maxAttempts: 5 });
      expect(await h.store().beginMfaAttempt(userId, late, T0 + 5 * MIN)).toBe(false);
      expect(await h.store().completeMfa(userId, late, { kind: 'totp', factorId, step: 1003 }, T0 + 5 * MIN)).toBe('token_invalid');
      // Another user's ticket is not this one's.
      const other = hash(newId());
      await h.store().createMfaTicket({ userId: newId(), tokenHash: other, now: T0, ttlMs: 5 * MIN, maxAttempts: 5 });
      expect(await h.store().beginMfaAttempt(userId, other, T0)).toBe(false);
    });

    it('spends a challenge once, for its user and purpose only, before it expires', async () => {
      const userId = newId();
      const challenge = newId();
      await h.store().putChallenge({ userId, purpose: 'register', challenge }, T0, MIN);
      expect(await h.store().takeChallenge({ userId: newId(), purpose: 'register', challenge }, T0)).toBe(false);
      expect(await h.store().takeChallenge({ userId, purpose: 'passwordless', challenge }, T0)).toBe(false);
      expect(await h.store().takeChallenge({ userId, purpose: 'register', challenge }, T0)).toBe(true);
      expect(await h.store().takeChallenge({ userId, purpose: 'register', challenge }, T0)).toBe(false);
      const anonymous = newId();
      await h.store().putChallenge({ userId: null, purpose: 'passwordless', challenge: anonymous }, T0, MIN);
      expect(await h.store().takeChallenge({ userId: null, purpose: 'passwordless', challenge: anonymous }, T0 + MIN)).toBe(false);
    });
  });
}
