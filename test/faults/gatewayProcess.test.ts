import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, runGateway, type RunningGateway } from '../helpers/builtGateway.js';
import { freePort } from '../helpers/ports.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis.js';
import { uniquePrefix } from '../helpers/redis.js';
import { LOGIN, REFRESH, SIGNUP, bearer, uniqueEmail } from '../helpers/testServer.js';
import { gql, ME, outcome, PASSWORD, SESSIONS, signingKeysFile, sleep } from './support.js';

/** `node dist/main.js` as production runs it, on a private Redis with AOF. */
let buildDir: string;
let keys: Awaited<ReturnType<typeof signingKeysFile>>;
const redises: PrivateRedis[] = [];
const gateways: RunningGateway[] = [];

beforeAll(async () => {
  keys = await signingKeysFile();
  buildDir = await buildGateway();
}, 60_000);

afterEach(async () => {
  for (const g of gateways.splice(0)) {
    if (g.child.exitCode === null && g.child.signalCode === null) {
      g.child.kill('SIGKILL');
      await g.exited;
    }
  }
  await Promise.all(redises.splice(0).map((r) => r.dispose()));
});

afterAll(async () => {
  await keys?.remove();
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});

async function privateRedis(): Promise<PrivateRedis> {
  const redis = await startPrivateRedis({ appendonly: true });
  redises.push(redis);
  return redis;
}

interface Gateway {
  run: RunningGateway;
  url: string;
}

async function startGateway(env: Record<string, string>): Promise<Gateway> {
  const run = runGateway(buildDir, env);
  gateways.push(run);
  const url = `http://127.0.0.1:${env.PORT}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (run.child.exitCode !== null) throw new Error(`the gateway exited at start:\n${run.output()}`);
    const up = await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`the gateway did not serve within 15 s:\n${run.output()}`);
    await sleep(50);
  }
  return { run, url };
}

async function gatewayEnv(redis: PrivateRedis): Promise<Record<string, string>> {
  return {
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: uniquePrefix('proc'),
    SIGNING_KEYS: keys.path,
  };
}

async function stopGateway(g: Gateway): Promise<number | null> {
  g.run.child.kill('SIGTERM');
  return g.run.exited;
}

describe('the gateway process', () => {
  it('a gateway restart loses no session: the old access token works for me, the refresh token refreshes', async () => {
    const redis = await privateRedis();
    const env = await gatewayEnv(redis);
    const first = await startGateway(env);
    const email = uniqueEmail();
    const up = await gql(first.url, SIGNUP, { email, password: PASSWORD });
    expect(up.errors).toEqual([]);
    const p = up.data!.signup;
    expect(await stopGateway(first)).toBe(0);

    const second = await startGateway(env);
    const me = await gql(second.url, ME, {}, bearer(p.accessToken));
    expect(me.errors).toEqual([]);
    expect(me.data).toEqual({ me: { id: p.user.id } });
    const refreshed = await gql(second.url, REFRESH, { t: p.refreshToken });
    expect(refreshed.errors).toEqual([]);
    const listed = await gql(second.url, SESSIONS, {}, bearer(refreshed.data!.refreshToken.accessToken));
    expect(listed.data).toEqual({ sessions: [{ id: p.session.id, current: true }] });
    expect(outcome(await gql(second.url, LOGIN, { email, password: PASSWORD }))).toBe('ok');
    expect(await stopGateway(second)).toBe(0);
  }, 40_000);

  it('survives Redis being killed and restarted while it serves requests, recovers by itself, and exits 0 on SIGTERM', async () => {
    const redis = await privateRedis();
    const env = await gatewayEnv(redis);
    const g = await startGateway(env);
    const email = uniqueEmail();
    const up = await gql(g.url, SIGNUP, { email, password: PASSWORD });
    expect(up.errors).toEqual([]);
    const p = up.data!.signup;
    let refreshToken: string = p.refreshToken;

    // Steady traffic of every kind through the outage.
    const seen = new Map<string, number>();
    const note = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);
    let running = true;
    let slowest = 0;
    const client = async (request: () => Promise<string>) => {
      while (running) {
        const started = performance.now();
        note(await request().catch((error: unknown) => `transport error: ${String(error)}`));
        slowest = Math.max(slowest, performance.now() - started);
        await sleep(5);
      }
    };
    const traffic = Promise.all([
      client(async () => `login ${outcome(await gql(g.url, LOGIN, { email, password: PASSWORD }))}`),
      client(async () => `me ${outcome(await gql(g.url, ME, {}, bearer(p.accessToken)))}`),
      client(async () => {
        // A refresh chain: keeps the newest token; a failed call keeps the one it has.
        const answer = await gql(g.url, REFRESH, { t: refreshToken });
        if (answer.data?.refreshToken) refreshToken = answer.data.refreshToken.refreshToken;
        return `refresh ${outcome(answer)}`;
      }),
      client(async () => `readyz ${(await fetch(`${g.url}/readyz`)).status}`),
    ]);

    try {
      await sleep(300);
      await redis.stop('SIGKILL');
      await sleep(1_500);
      expect(g.run.child.exitCode).toBeNull();
      expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${g.url}/readyz`)).status).toBe(503);
      expect(outcome(await gql(g.url, LOGIN, { email, password: PASSWORD }))).toBe('SERVICE_UNAVAILABLE');

      await redis.start();
      await expect.poll(async () => (await fetch(`${g.url}/readyz`)).status, { timeout: 8_000, interval: 50 }).toBe(200);
      await expect
        .poll(async () => outcome(await gql(g.url, LOGIN, { email, password: PASSWORD })), { timeout: 8_000, interval: 50 })
        .toBe('ok');
      await sleep(300);
    } finally {
      running = false;
      await traffic;
    }

    // Only the answers the contract allows: success, or SERVICE_UNAVAILABLE / 503 while Redis was away.
    const kinds = [...seen.keys()].sort();
    console.info(`[faults] process under outage: ${JSON.stringify(Object.fromEntries(seen))}, slowest answer ${slowest.toFixed(0)} ms`);
    for (const kind of kinds) {
      expect(kind).toMatch(
        /^(login (ok|SERVICE_UNAVAILABLE)|me (ok|SERVICE_UNAVAILABLE)|refresh (ok|SERVICE_UNAVAILABLE)|readyz (200|503))$/,
      );
    }
    expect(kinds).toEqual(
      expect.arrayContaining(['login SERVICE_UNAVAILABLE', 'refresh SERVICE_UNAVAILABLE', 'readyz 503', 'login ok', 'refresh ok', 'readyz 200']),
    );
    expect(slowest).toBeLessThan(3_000);
    expect(g.run.output()).not.toMatch(/uncaught|unhandled/i);
    expect(g.run.child.exitCode).toBeNull();
    expect(outcome(await gql(g.url, ME, {}, bearer(p.accessToken)))).toBe('ok');
    expect(outcome(await gql(g.url, REFRESH, { t: refreshToken }))).toBe('ok');

    expect(await stopGateway(g)).toBe(0);
  }, 40_000);

  it('exits 0 on SIGTERM while Redis is down', async () => {
    const redis = await privateRedis();
    const g = await startGateway(await gatewayEnv(redis));
    await redis.stop('SIGKILL');
    await sleep(200);
    const stopping = performance.now();
    expect(await stopGateway(g)).toBe(0);
    expect(performance.now() - stopping).toBeLessThan(5_000);
  }, 30_000);
});
