import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memoryStore.js';
import { createRedisStore, deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { bearer, LOGIN, REFRESH, SIGNUP, uniqueEmail } from '../helpers/testServer.js';
import { startWebhookReceiver, webhookSecret, type WebhookReceiver } from '../helpers/webhookReceiver.js';
import { PASSWORD, REVOKE, sleep } from '../faults/support.js';
import { auditLines, auditLog, type Gateway, startGateway } from './support.js';

/**
 * Webhook delivery of the audit log (docs/contract.md section 10) to a real node:http receiver
 * that verifies every request with standardwebhooks' Webhook.verify.
 */

const redis = inspector();
const prefixes: string[] = [];
const gateways: Gateway[] = [];
const receivers: WebhookReceiver[] = [];

afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.close().catch(() => undefined)));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  redis.disconnect();
});

async function receiver(secret: string) {
  const r = await startWebhookReceiver(secret);
  receivers.push(r);
  return r;
}

async function gateway(prefix: string, secret: string, url: string) {
  const g = await startGateway(await createRedisStore(prefix), {
    REDIS_KEY_PREFIX: prefix,
    AUDIT_WEBHOOK_URL: url,
    AUDIT_WEBHOOK_SECRET: secret,
  });
  gateways.push(g);
  return g;
}

/** A signup, a failed login, a login, a refresh and a logout: five events (a refresh records none). */
async function someActivity(g: Gateway) {
  const email = uniqueEmail();
  const signed = (await g.graphql(SIGNUP, { email, password: PASSWORD })).data!.signup;
  await g.graphql(LOGIN, { email, password: 'not the password' });
  const login = (await g.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
  await g.graphql(REFRESH, { t: login.refreshToken });
  await g.graphql(REVOKE, {}, bearer(signed.accessToken));
  return signed.user.id as string;
}

/** Each delivered id once in `ids`, every delivery of one id with the same body. */
function expectExactlyDelivered(r: WebhookReceiver, ids: readonly string[]) {
  const byId = new Map<string, Set<string>>();
  for (const d of r.delivered) byId.set(d.id, (byId.get(d.id) ?? new Set()).add(JSON.stringify(d.payload)));
  expect([...byId.keys()].sort()).toEqual([...ids].sort());
  for (const [id, bodies] of byId) expect(bodies.size, `deliveries of ${id}`).toBe(1);
  expect(r.rejected).toBe(0);
}

describe('webhook delivery', () => {
  it('delivers every event, signed per Standard Webhooks, webhook-id = the event id, the body { type, timestamp, data }', async () => {
    const prefix = uniquePrefix('webhook');
    prefixes.push(prefix);
    const secret = webhookSecret();
    const r = await receiver(secret);
    const g = await gateway(prefix, secret, r.url);
    const userId = await someActivity(g);
    const log = await auditLog(g.store);
    expect(log.map((e) => e.type)).toEqual([
      'user.signed_up',
      'session.created',
      'login.failed',
      'session.created',
      'session.revoked',
    ]);
    await expect.poll(() => r.delivered.length, { timeout: 10_000 }).toBe(log.length);
    expectExactlyDelivered(r, log.map((e) => e.id));
    for (const d of r.delivered) {
      const event = log.find((e) => e.id === d.id)!;
      expect(d.payload).toEqual({
        type: event.type,
        timestamp: new Date(event.time).toISOString(),
        data: {
          id: event.id,
          type: event.type,
          time: new Date(event.time).toISOString(),
          userId,
          sessionId: event.sessionId,
          ip: '127.0.0.1',
          userAgent: 'node',
          details: event.details,
        },
      });
      // A receiver with another secret refuses it.
      const headers = { 'webhook-id': d.id, 'webhook-timestamp': d.timestamp, 'webhook-signature': 'v1,' + 'A'.repeat(44) };
      expect(() => new Webhook(webhookSecret()).verify(d.body, headers)).toThrow();
    }
    // The log has each event once, with "audit": true, after its change was stored.
    expect(auditLines(g.logs).map((l) => l.event.id)).toEqual(log.map((e) => e.id));
  });

  it('a receiver down, failing, hanging and resetting, and a gateway restarted in between: every event arrives, duplicates only with one id', async () => {
    const prefix = uniquePrefix('webhook-outage');
    prefixes.push(prefix);
    const secret = webhookSecret();
    const r = await receiver(secret);
    await r.down();
    const first = await gateway(prefix, secret, r.url);
    await someActivity(first);
    // Connection refused for a while (the short backoff cap is 400 ms: this is many of them, as
    // ten minutes are for the default 5 min cap)…
    await sleep(1_200);
    await r.up();
    r.setMode('error');
    await someActivity(first);
    await expect.poll(() => r.attempts, { timeout: 5_000 }).toBeGreaterThan(2);
    r.setMode('hang');
    const hangingFrom = r.attempts;
    await expect.poll(() => r.attempts, { timeout: 5_000 }).toBeGreaterThan(hangingFrom);
    // … and the gateway stops while an attempt hangs; another starts on the same Redis.
    await first.close();
    gateways.splice(gateways.indexOf(first), 1);
    r.setMode('reset');
    const second = await gateway(prefix, secret, r.url);
    await someActivity(second);
    const resetFrom = r.attempts;
    await expect.poll(() => r.attempts, { timeout: 5_000 }).toBeGreaterThan(resetFrom);
    expect(r.delivered).toEqual([]);
    r.setMode('ok');
    const log = await auditLog(second.store);
    expect(log).toHaveLength(15);
    await expect.poll(() => new Set(r.delivered.map((d) => d.id)).size, { timeout: 15_000 }).toBe(log.length);
    expectExactlyDelivered(r, log.map((e) => e.id));
    // Nothing left pending in the group.
    await expect
      .poll(async () => ((await redis.xpending(`${prefix}audit`, 'webhook')) as [number])[0], { timeout: 5_000 })
      .toBe(0);
  }, 60_000);

  it('two gateways share the consumer group: each event delivered, none lost', async () => {
    const prefix = uniquePrefix('webhook-pair');
    prefixes.push(prefix);
    const secret = webhookSecret();
    const r = await receiver(secret);
    const a = await gateway(prefix, secret, r.url);
    const b = await gateway(prefix, secret, r.url);
    await Promise.all([someActivity(a), someActivity(b), someActivity(a), someActivity(b)]);
    const log = await auditLog(a.store);
    expect(log).toHaveLength(20);
    await expect.poll(() => new Set(r.delivered.map((d) => d.id)).size, { timeout: 10_000 }).toBe(20);
    expectExactlyDelivered(r, log.map((e) => e.id));
    const consumers = (await redis.call('XINFO', 'CONSUMERS', `${prefix}audit`, 'webhook')) as unknown[];
    expect(consumers).toHaveLength(2);
  });

  it('the embedded store delivers the same way', async () => {
    const secret = webhookSecret();
    const r = await receiver(secret);
    const g = await startGateway(new MemoryStore(), { AUDIT_WEBHOOK_URL: r.url, AUDIT_WEBHOOK_SECRET: secret });
    gateways.push(g);
    r.setMode('error');
    await someActivity(g);
    await expect.poll(() => r.attempts, { timeout: 5_000 }).toBeGreaterThan(1);
    r.setMode('ok');
    const log = await auditLog(g.store);
    expect(log).toHaveLength(5);
    await expect.poll(() => new Set(r.delivered.map((d) => d.id)).size, { timeout: 10_000 }).toBe(5);
    expectExactlyDelivered(r, log.map((e) => e.id));
  });
});
