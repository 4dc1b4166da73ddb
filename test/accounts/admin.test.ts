import { describe, expect, it } from 'vitest';
import { createTestServer } from '../helpers/testServer.js';
import { inspector } from '../helpers/redis.js';
import { account, adminAccount, bearer, errorOf, gateway, login, OPS, uniqueEmail } from './support.js';

/* Administration (docs/contract.md section 7) over real HTTP, on both stores. */

for (const store of ['memory', 'redis'] as const) {
  describe(`administration (${store})`, () => {
    it('every admin field is FORBIDDEN without the role admin', async () => {
      const server = await gateway(store);
      const user = await account(server);
      const auth = bearer(user.accessToken);
      const calls: [string, Record<string, unknown>][] = [
        [OPS.user, { id: user.id }],
        [OPS.users, {}],
        [OPS.userSessions, { id: user.id }],
        [OPS.disable, { id: user.id }],
        [OPS.enable, { id: user.id }],
        [OPS.setRoles, { id: user.id, roles: ['admin'] }],
        [OPS.revokeUserSessions, { id: user.id }],
        [OPS.deleteUser, { id: user.id }],
      ];
      for (const [query, variables] of calls) expect(errorOf(await server.graphql(query, variables, auth)), query).toMatchObject({ code: 'FORBIDDEN' });
      expect(errorOf(await server.graphql(OPS.users, {}))).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect((await server.graphql(OPS.me, {}, auth)).data?.me?.roles).toEqual(['user']);
    });

    it('disableUser ends every session at once; the right password is FORBIDDEN ACCOUNT_DISABLED, a wrong one INVALID_CREDENTIALS; enableUser lets them in again', async () => {
      const server = await gateway(store);
      const admin = await adminAccount(server);
      const user = await account(server);
      expect((await server.graphql(OPS.disable, { id: user.id }, bearer(admin.accessToken))).data?.disableUser).toEqual({ id: user.id, disabled: true });
      expect(errorOf(await server.graphql(OPS.me, {}, bearer(user.accessToken)))).toMatchObject({ reason: 'SESSION_REVOKED' });
      expect(errorOf(await server.graphql(OPS.refresh, { t: user.refreshToken }))).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(errorOf(await login(server, user.email))).toEqual({ code: 'FORBIDDEN', reason: 'ACCOUNT_DISABLED' });
      expect(errorOf(await login(server, user.email, 'not the password'))).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'INVALID_CREDENTIALS' });
      expect((await server.graphql(OPS.user, { id: user.id }, bearer(admin.accessToken))).data?.user).toMatchObject({ disabled: true });
      expect((await server.graphql(OPS.enable, { id: user.id }, bearer(admin.accessToken))).data?.enableUser).toEqual({ id: user.id, disabled: false });
      expect((await login(server, user.email)).errors).toEqual([]);
    });

    it('setUserRoles: the user’s tokens carry the new roles from their next refresh', async () => {
      const server = await gateway(store);
      const admin = await adminAccount(server);
      const user = await account(server);
      expect((await server.graphql(OPS.setRoles, { id: user.id, roles: ['user', 'editor'] }, bearer(admin.accessToken))).data?.setUserRoles).toEqual({
        id: user.id,
        roles: ['user', 'editor'],
      });
      const refreshed = await server.graphql(OPS.refresh, { t: user.refreshToken });
      const claims = JSON.parse(Buffer.from(refreshed.data!.refreshToken.accessToken.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ roles: ['user', 'editor'], scope: 'user editor' });
      expect(errorOf(await server.graphql(OPS.setRoles, { id: user.id, roles: ['bad role!'] }, bearer(admin.accessToken)))).toMatchObject({ code: 'BAD_USER_INPUT' });
    });

    it('userSessions and revokeUserSessions', async () => {
      const server = await gateway(store);
      const admin = await adminAccount(server);
      const user = await account(server);
      await login(server, user.email);
      const sessions = await server.graphql(OPS.userSessions, { id: user.id }, bearer(admin.accessToken));
      expect(sessions.data?.userSessions).toHaveLength(2);
      expect((await server.graphql(OPS.revokeUserSessions, { id: user.id }, bearer(admin.accessToken))).data).toEqual({ revokeUserSessions: 2 });
      expect(errorOf(await server.graphql(OPS.me, {}, bearer(user.accessToken)))).toMatchObject({ reason: 'SESSION_REVOKED' });
      expect((await server.graphql(OPS.userSessions, { id: user.id }, bearer(admin.accessToken))).data?.userSessions).toEqual([]);
    });

    it('users: by email, a page at a time, with an email prefix', async () => {
      const server = await gateway(store);
      const admin = await adminAccount(server);
      const stem = `list${Date.now().toString(36)}`;
      const emails = ['b', 'd', 'a', 'c', 'e'].map((c) => `${stem}-${c}@example.com`);
      for (const email of emails) await account(server, email);
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 5; page++) {
        const answer: { errors: unknown[]; data: any } = await server.graphql(OPS.users, { first: 2, after, prefix: stem.toUpperCase() }, bearer(admin.accessToken));
        expect(answer.errors).toEqual([]);
        const connection: { nodes: { email: string }[]; endCursor: string | null; hasNextPage: boolean } = answer.data!.users;
        seen.push(...connection.nodes.map((n: { email: string }) => n.email));
        after = connection.endCursor;
        if (!connection.hasNextPage) break;
      }
      expect(seen).toEqual([...emails].sort());
      expect(errorOf(await server.graphql(OPS.users, { first: 1000 }, bearer(admin.accessToken)))).toMatchObject({ code: 'BAD_USER_INPUT' });
      expect(errorOf(await server.graphql(OPS.users, { after: 'not a cursor!' }, bearer(admin.accessToken)))).toMatchObject({ code: 'BAD_USER_INPUT' });
    });

    it('deleteUser erases the account; the email may sign up again', async () => {
      const server = await gateway(store);
      const admin = await adminAccount(server);
      const user = await account(server);
      expect((await server.graphql(OPS.deleteUser, { id: user.id }, bearer(admin.accessToken))).data).toEqual({ deleteUser: true });
      expect(errorOf(await server.graphql(OPS.me, {}, bearer(user.accessToken)))).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect((await server.graphql(OPS.user, { id: user.id }, bearer(admin.accessToken))).data).toEqual({ user: null });
      expect((await server.graphql(OPS.deleteUser, { id: user.id }, bearer(admin.accessToken))).data).toEqual({ deleteUser: false });
      await account(server, user.email);
    });

    it('the last enabled admin cannot disable, delete or demote their own account; with a second admin they can', async () => {
      const server = await gateway(store);
      const admin = await adminAccount(server);
      const auth = bearer(admin.accessToken);
      for (const [query, variables] of [
        [OPS.disable, { id: admin.id }],
        [OPS.deleteUser, { id: admin.id }],
        [OPS.setRoles, { id: admin.id, roles: ['user'] }],
        [OPS.deleteAccount, {}],
      ] as const) {
        const refused = await server.graphql(query, variables, auth);
        expect(errorOf(refused), query).toMatchObject({ code: 'FORBIDDEN' });
        expect(refused.errors[0]!.message).toContain('last enabled admin');
      }
      expect((await server.graphql(OPS.me, {}, auth)).data?.me?.roles).toContain('admin');
      const second = await adminAccount(server);
      expect(second.id).not.toBe(admin.id);
      expect((await server.graphql(OPS.disable, { id: admin.id }, auth)).data?.disableUser).toEqual({ id: admin.id, disabled: true });
    });
  });
}

describe('ending sessions reaches every instance within 1 s (Redis, two gateways)', () => {
  it('disable, delete and reset: the other instance refuses the access tokens', async () => {
    const first = await gateway('redis');
    const second = await createTestServer({ store: 'redis', keyPrefix: first.config.redisKeyPrefix, keys: first.keys });
    try {
      const admin = await adminAccount(first);
      const targets = [await account(first), await account(first)];
      // Each token is known live on the second instance first (cached verified, feed says live).
      for (const t of targets) expect((await second.graphql(OPS.me, {}, bearer(t.accessToken))).data?.me?.id).toBe(t.id);
      await first.graphql(OPS.disable, { id: targets[0]!.id }, bearer(admin.accessToken));
      await first.graphql(OPS.deleteUser, { id: targets[1]!.id }, bearer(admin.accessToken));
      const startedAt = Date.now();
      for (const t of targets) {
        await expect
          .poll(async () => (await second.graphql(OPS.me, {}, bearer(t.accessToken))).errors[0]?.extensions.code, { timeout: 1_000, interval: 25 })
          .toBe('UNAUTHENTICATED');
      }
      expect(Date.now() - startedAt).toBeLessThan(2_000);
    } finally {
      await second.close();
    }
  });

  it('deleting an account leaves no key of it under the prefix (every key listed before and after)', async () => {
    const server = await gateway('redis');
    const redis = inspector();
    try {
      const admin = await adminAccount(server);
      const email = uniqueEmail();
      const user = await account(server, email);
      await login(server, email);
      await login(server, email, 'a wrong password');
      await server.graphql(OPS.requestReset, { email });
      const prefix = server.config.redisKeyPrefix;
      const keysOf = async () => (await redis.keys(`${prefix}*`)).filter((key) => key.includes(user.id) || key.includes(email));
      const before = await keysOf();
      expect(before.length).toBeGreaterThanOrEqual(5); // record, events, sessions, reset token, the email's claim
      expect((await server.graphql(OPS.deleteUser, { id: user.id }, bearer(admin.accessToken))).data).toEqual({ deleteUser: true });
      // The record, its sessions, tokens and events, the email's claim, and its counters (failed logins, reset requests).
      expect(before.some((key) => key.includes(':count:'))).toBe(true);
      expect(await keysOf()).toEqual([]);
      expect(await redis.zrange(`${prefix}users:by-email`, 0, -1)).not.toContain(`${email}\u0000${user.id}`);
    } finally {
      redis.disconnect();
    }
  });
});
