import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis.js';
import { uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, LOGIN, REFRESH, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { outcome, PASSWORD, redisStoreAt, SESSIONS } from './support.js';

/** A private Redis with AOF and `appendfsync always`, and a gateway on it that is never restarted. */
let redis: PrivateRedis;
let server: TestServer;

beforeAll(async () => {
  redis = await startPrivateRedis({ appendonly: true, appendfsync: 'always' });
  const keyPrefix = uniquePrefix('aof');
  server = await createTestServer({ store: (await redisStoreAt(redis.url, keyPrefix)).store, keyPrefix });
});

afterAll(async () => {
  await server?.close().catch(() => undefined);
  await redis?.dispose();
});

async function ready(): Promise<void> {
  await expect.poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 8_000, interval: 50 }).toBe(200);
}

async function signup(): Promise<{ email: string; p: Record<string, any> }> {
  const email = uniqueEmail();
  const answer = await server.graphql(SIGNUP, { email, password: PASSWORD });
  expect(answer.errors).toEqual([]);
  return { email, p: answer.data!.signup };
}

async function refresh(token: string): Promise<Record<string, any>> {
  const answer = await server.graphql(REFRESH, { t: token });
  expect(answer.errors).toEqual([]);
  return answer.data!.refreshToken;
}

describe('AOF persistence', () => {
  it('a clean Redis restart (SIGTERM) loses no session: the refresh token refreshes, sessions lists it', async () => {
    const { email, p } = await signup();
    const second = (await server.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
    const rotated = await refresh(p.refreshToken);

    await redis.stop('SIGTERM');
    await redis.start();
    await ready();

    const again = await refresh(rotated.refreshToken);
    const listed = await server.graphql(SESSIONS, {}, bearer(again.accessToken));
    expect(listed.errors).toEqual([]);
    expect(listed.data!.sessions.map((s: { id: string }) => s.id).sort()).toEqual([p.session.id, second.session.id].sort());
    expect(listed.data!.sessions.find((s: { current: boolean }) => s.current).id).toBe(p.session.id);
    expect(outcome(await server.graphql(LOGIN, { email, password: PASSWORD }))).toBe('ok');
  }, 20_000);

  it('a crash (SIGKILL) right after acknowledged writes loses none of them (appendfsync always)', async () => {
    // Several users, each session rotated several times; Redis is killed the moment the last answer arrives.
    const users = await Promise.all(Array.from({ length: 10 }, () => signup()));
    const latest = await Promise.all(
      users.map(async ({ p }) => {
        let token = p.refreshToken as string;
        for (let i = 0; i < 3; i++) token = (await refresh(token)).refreshToken;
        return token;
      }),
    );
    await redis.stop('SIGKILL');
    await redis.start();
    await ready();

    // Had any acknowledged rotation been lost, its latest token would not match the stored one.
    const after = await Promise.all(latest.map((token) => server.graphql(REFRESH, { t: token })));
    expect(after.map(outcome)).toEqual(latest.map(() => 'ok'));
    for (const [i, answer] of after.entries()) {
      const listed = await server.graphql(SESSIONS, {}, bearer(answer.data!.refreshToken.accessToken));
      expect(listed.data!.sessions.map((s: { id: string }) => s.id)).toEqual([users[i]!.p.session.id]);
    }
  }, 20_000);
});
