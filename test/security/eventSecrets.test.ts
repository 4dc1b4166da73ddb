import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_ORIGIN } from '../../src/events/types.js';
import { newId } from '../../src/ids.js';
import { PasswordHasher } from '../../src/users/passwords.js';
import { PASSWORD, REVOKE } from '../faults/support.js';
import { auditLines, type Gateway, startGateway } from '../events/support.js';
import { createRedisStore, deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { bearer, LOGIN, REFRESH, SIGNUP, uniqueEmail } from '../helpers/testServer.js';
import { startWebhookReceiver, webhookSecret, type WebhookReceiver } from '../helpers/webhookReceiver.js';

/**
 * Never a secret, token or password in a security event (docs/contract.md section 10): after a
 * full flow, neither the events in Redis, nor the API's answers, nor the audit log lines, nor
 * the webhook deliveries hold any of them.
 */

const prefix = uniquePrefix('event-secrets');
const redis = inspector();
const secret = webhookSecret();
let receiver: WebhookReceiver;
let gateway: Gateway;

beforeAll(async () => {
  receiver = await startWebhookReceiver(secret);
  gateway = await startGateway(await createRedisStore(prefix), {
    REDIS_KEY_PREFIX: prefix,
    AUDIT_WEBHOOK_URL: receiver.url,
    AUDIT_WEBHOOK_SECRET: secret,
    LOGIN_MAX_FAILURES: '2',
  });
});

afterAll(async () => {
  await gateway?.close();
  await receiver?.close();
  await deleteKeys(redis, prefix);
  redis.disconnect();
});

/** Every field of every entry of every stream (the audit log) and list (users' own) under the prefix. */
async function storedEvents(): Promise<string[]> {
  const keys = await redis.keys(`${prefix}*`);
  const out: string[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === 'stream') for (const [, fields] of await redis.xrange(key, '-', '+')) out.push(...fields);
    if (type === 'list') out.push(...(await redis.lrange(key, 0, -1)));
  }
  return out;
}

describe('security events hold no secret', () => {
  it('after sign-up, failed and refused logins, refreshes, a replay and logouts', async () => {
    const tokens: string[] = [];
    const keep = (payload: { accessToken: string; refreshToken: string }) => {
      tokens.push(payload.accessToken, payload.refreshToken, payload.refreshToken.split('.')[3]!);
      return payload;
    };
    const email = uniqueEmail();
    const signed = keep((await gateway.graphql(SIGNUP, { email, password: PASSWORD })).data!.signup);
    const login = keep((await gateway.graphql(LOGIN, { email, password: PASSWORD })).data!.login);
    const r1 = keep((await gateway.graphql(REFRESH, { t: login.refreshToken })).data!.refreshToken);
    keep((await gateway.graphql(REFRESH, { t: r1.refreshToken })).data!.refreshToken);
    expect((await gateway.graphql(REFRESH, { t: login.refreshToken })).errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_REUSED');
    const wrong = ['Tr0ub4dor&3 wrong', 'another wrong one', 'a third wrong one'];
    for (const password of wrong) await gateway.graphql(LOGIN, { email, password });
    await gateway.graphql(LOGIN, { email: uniqueEmail(), password: 'unknown user password' });
    await gateway.graphql(REVOKE, {}, bearer(signed.accessToken));

    const adminEmail = uniqueEmail();
    const hasher = await PasswordHasher.create();
    const passwordHash = await hasher.hash(PASSWORD);
    await gateway.store.createUser({ id: newId(), email: adminEmail, passwordHash, roles: ['admin'], createdAt: Date.now(), emailVerified: false, disabled: false }, NO_ORIGIN);
    const admin = keep((await gateway.graphql(LOGIN, { email: adminEmail, password: PASSWORD })).data!.login);
    await gateway.graphql('mutation { revokeAllSessions }', {}, bearer(admin.accessToken));

    const fields = 'nodes { id type time userId sessionId ipAddress userAgent details } endCursor hasNextPage';
    const admin2 = keep((await gateway.graphql(LOGIN, { email: adminEmail, password: PASSWORD })).data!.login);
    const api = await gateway.graphql(`{ auditEvents(first: 100) { ${fields} } securityEvents(first: 100) { ${fields} } }`, {}, bearer(admin2.accessToken));
    expect(api.errors).toEqual([]);
    const types = new Set(api.data!.auditEvents.nodes.map((n: { type: string }) => n.type));
    expect(types).toEqual(
      new Set(['user.signed_up', 'session.created', 'session.reuse_detected', 'session.revoked', 'login.failed', 'login.rate_limited']),
    );
    const count = api.data!.auditEvents.nodes.length;
    await expect.poll(() => new Set(receiver.delivered.map((d) => d.id)).size, { timeout: 15_000 }).toBe(count);

    const places = {
      redis: (await storedEvents()).join('\n'),
      api: JSON.stringify(api.data),
      log: JSON.stringify(auditLines(gateway.logs)),
      webhook: receiver.delivered.map((d) => d.body).join('\n'),
    };
    expect(places.redis).toContain('session.reuse_detected');
    expect(places.log).toContain('login.rate_limited');
    const forbidden = [PASSWORD, ...wrong, 'unknown user password', passwordHash, '$argon2', secret, secret.slice('whsec_'.length), ...tokens];
    for (const [where, text] of Object.entries(places)) {
      for (const value of forbidden) expect(text.includes(value), `${where} holds ${value.slice(0, 12)}…`).toBe(false);
    }
  }, 30_000);
});
