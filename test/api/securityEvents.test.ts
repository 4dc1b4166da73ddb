import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { NO_ORIGIN } from '../../src/events/types.js';
import { clientOf } from '../../src/graphql/eventOrigin.js';
import type { GraphQLContext } from '../../src/graphql/context.js';
import { PasswordHasher } from '../../src/users/passwords.js';
import { auditLines } from '../events/support.js';
import {
  bearer,
  createTestServer,
  LOGIN,
  REFRESH,
  signUp,
  TEST_PASSWORD,
  type TestServer,
  uniqueEmail,
} from '../helpers/testServer.js';

/** securityEvents and auditEvents (docs/contract.md section 10) over real HTTP, on both stores. */

const EVENT_FIELDS = 'nodes { id type time userId sessionId ipAddress userAgent details } endCursor hasNextPage';
const OWN = `query($first: Int, $after: String) { securityEvents(first: $first, after: $after) { ${EVENT_FIELDS} } }`;
const AUDIT = `query($userId: ID, $type: String, $first: Int, $after: String) {
  auditEvents(userId: $userId, type: $type, first: $first, after: $after) { ${EVENT_FIELDS} } }`;
const REVOKE_ALL = 'mutation { revokeAllSessions }';

for (const kind of ['memory', 'redis'] as const) {
  describe(`security events over GraphQL (${kind} store)`, () => {
    let server: TestServer;
    let admin: { accessToken: string };

    beforeAll(async () => {
      server = await createTestServer({ store: kind, env: { LOGIN_MAX_FAILURES: '3' } });
      const email = uniqueEmail();
      const passwordHash = await (await PasswordHasher.create()).hash(TEST_PASSWORD);
      await server.store.createUser({ id: newId(), email, passwordHash, roles: ['user', 'admin'], createdAt: Date.now(), emailVerified: false, disabled: false }, NO_ORIGIN);
      admin = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).data!.login;
    });
    afterAll(() => server?.close());

    it("securityEvents: the caller's own, newest first, with the client that caused each", async () => {
      const email = uniqueEmail();
      const signed = await signUp(server, email);
      const agent = { 'user-agent': 'Browser/2.0' };
      expect((await server.graphql(LOGIN, { email, password: 'wrong password' }, agent)).errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
      const second = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD }, agent)).data!.login;
      await server.graphql(REFRESH, { t: second.refreshToken });
      expect((await server.graphql(REFRESH, { t: second.refreshToken }, { 'user-agent': 'Retry/1.0' })).errors).toEqual([]);
      const answer = await server.graphql(OWN, {}, bearer(signed.accessToken));
      expect(answer.errors).toEqual([]);
      const nodes = answer.data!.securityEvents.nodes;
      expect(nodes.map((n: { type: string }) => n.type)).toEqual(['session.created', 'login.failed', 'session.created', 'user.signed_up']);
      expect(nodes[1]).toMatchObject({
        userId: signed.user.id,
        sessionId: null,
        ipAddress: '127.0.0.1',
        userAgent: 'Browser/2.0',
        details: { reason: 'wrong_password' },
      });
      expect(nodes[0]).toMatchObject({ sessionId: second.session.id, userAgent: 'Browser/2.0', details: {} });
      expect(nodes[3]).toMatchObject({ type: 'user.signed_up', sessionId: null });
      for (const node of nodes) expect(new Date(node.time).toISOString()).toBe(node.time);
      expect(answer.data!.securityEvents.hasNextPage).toBe(false);
    });

    it('a replay and the revocations that follow, with their causes', async () => {
      const email = uniqueEmail();
      const signed = await signUp(server, email);
      const other = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).data!.login;
      const r1 = (await server.graphql(REFRESH, { t: signed.refreshToken })).data!.refreshToken;
      await server.graphql(REFRESH, { t: r1.refreshToken });
      const replay = await server.graphql(REFRESH, { t: signed.refreshToken }, { 'user-agent': 'Thief/1.0' });
      expect(replay.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_REUSED');
      expect((await server.graphql(REVOKE_ALL, {}, bearer(other.accessToken))).data).toEqual({ revokeAllSessions: 1 });
      const third = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).data!.login;
      const nodes = (await server.graphql(OWN, { first: 3 }, bearer(third.accessToken))).data!.securityEvents.nodes;
      expect(nodes.map((n: any) => [n.type, n.sessionId, n.details.cause ?? null])).toEqual([
        ['session.created', third.session.id, null],
        ['session.revoked', other.session.id, 'all'],
        ['session.revoked', signed.session.id, 'reuse'],
      ]);
      const all = (await server.graphql(OWN, { first: 10 }, bearer(third.accessToken))).data!.securityEvents.nodes;
      expect(all.find((n: any) => n.type === 'session.reuse_detected')).toMatchObject({
        sessionId: signed.session.id,
        userAgent: 'Thief/1.0',
        details: { generation: 0, currentGeneration: 2 },
      });
    });

    it('pages with opaque cursors: every event once, in order, until hasNextPage is false', async () => {
      const email = uniqueEmail();
      await signUp(server, email);
      let token = '';
      for (let i = 0; i < 4; i++) token = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).data!.login.accessToken;
      const whole = (await server.graphql(OWN, { first: 100 }, bearer(token))).data!.securityEvents;
      expect(whole.nodes).toHaveLength(6);
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 10; page++) {
        const answer = await server.graphql(OWN, { first: 4, after }, bearer(token));
        const connection: any = answer.data!.securityEvents;
        seen.push(...connection.nodes.map((n: { id: string }) => n.id));
        if (!connection.hasNextPage) break;
        expect(connection.endCursor).toMatch(/^[A-Za-z0-9_-]+$/);
        after = connection.endCursor;
      }
      expect(seen).toEqual(whole.nodes.map((n: { id: string }) => n.id));
    });

    it('refuses a first out of 1..100, a cursor it did not make, and no caller', async () => {
      const signed = await signUp(server);
      for (const first of [0, -1, 101]) {
        expect((await server.graphql(OWN, { first }, bearer(signed.accessToken))).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
      }
      for (const after of ['nope!', 'AAAA', Buffer.from('1-2@x y').toString('base64url')]) {
        expect((await server.graphql(OWN, { after }, bearer(signed.accessToken))).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
      }
      const anonymous = await server.graphql(OWN);
      expect(anonymous.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
    });

    it('auditEvents: admins only; every user, by user, by type', async () => {
      const signed = await signUp(server);
      const refused = await server.graphql(AUDIT, {}, bearer(signed.accessToken));
      expect(refused.errors[0]?.extensions.code).toBe('FORBIDDEN');
      expect(refused.data).toBeNull();
      expect((await server.graphql(AUDIT)).errors[0]?.extensions.code).toBe('UNAUTHENTICATED');

      const unknown = uniqueEmail();
      await server.graphql(LOGIN, { email: unknown, password: 'whatever it is' });
      const failed = await server.graphql(AUDIT, { type: 'login.failed', first: 100 }, bearer(admin.accessToken));
      expect(failed.errors).toEqual([]);
      const nobody = failed.data!.auditEvents.nodes.find((n: any) => n.userId === null);
      expect(nobody).toMatchObject({ type: 'login.failed', details: { reason: 'unknown_email' } });
      // No email in the event (an unknown one is not anyone's to see).
      expect(JSON.stringify(failed.data)).not.toContain(unknown);

      const mine = await server.graphql(AUDIT, { userId: signed.user.id }, bearer(admin.accessToken));
      expect(mine.data!.auditEvents.nodes.map((n: any) => n.type)).toEqual(['session.created', 'user.signed_up']);
      const everyone = await server.graphql(AUDIT, { first: 100 }, bearer(admin.accessToken));
      expect(everyone.data!.auditEvents.nodes.map((n: any) => n.userId)).toContain(signed.user.id);

      for (const bad of [{ type: 'session.exploded' }, { userId: 'not an id' }, { first: 1000 }]) {
        expect((await server.graphql(AUDIT, bad, bearer(admin.accessToken))).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
      }
    });

    it('a rate limit is recorded once per window, on the account it protects', async () => {
      const email = uniqueEmail();
      const signed = await signUp(server, email);
      for (let i = 0; i < 6; i++) await server.graphql(LOGIN, { email, password: 'wrong password' });
      const nodes = (await server.graphql(OWN, { first: 20 }, bearer(signed.accessToken))).data!.securityEvents.nodes;
      const types = nodes.map((n: any) => n.type);
      expect(types.filter((t: string) => t === 'login.failed')).toHaveLength(3);
      expect(types.filter((t: string) => t === 'login.rate_limited')).toHaveLength(1);
      expect(nodes.find((n: any) => n.type === 'login.rate_limited')).toMatchObject({
        userId: signed.user.id,
        details: { limit: 'account', retryAfter: expect.any(Number) },
      });
    });

    it('every event is in the log once, with "audit": true, under the id the API shows', async () => {
      const signed = await signUp(server);
      await server.graphql('mutation { revokeSession }', {}, bearer(signed.accessToken));
      const again = (await server.graphql(AUDIT, { userId: signed.user.id }, bearer(admin.accessToken))).data!.auditEvents.nodes;
      const lines = auditLines(server.logs).filter((l) => l.event.userId === signed.user.id);
      expect(lines.map((l) => l.event.id)).toEqual([...again].reverse().map((n: any) => n.id));
      expect(lines.map((l) => l.msg)).toEqual(['security event user.signed_up', 'security event session.created', 'security event session.revoked']);
    });
  });
}

describe('the request id in events', () => {
  it('is taken from the context when the request has one', () => {
    const client = { ipAddress: '10.0.0.1', userAgent: 'x' };
    expect(clientOf({ client } as unknown as GraphQLContext)).toEqual(client);
    expect(clientOf({ client, requestId: 'abc' } as unknown as GraphQLContext)).toEqual({ ...client, requestId: 'abc' });
  });
});
