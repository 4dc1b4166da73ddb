import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { enrollTotp, totpAt, VERIFY } from '../factors/support.js';
import { deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';

const STEP = 30_000;
const prefix = uniquePrefix('factor-secrets');
const redis = inspector();
const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + 1_000);
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ store: 'redis', keyPrefix: prefix, clock });
});

afterAll(async () => {
  await server.close();
  await deleteKeys(redis, prefix);
  redis.disconnect();
});

/** Every value under the prefix, as text: strings, hash fields and values, list elements, stream entries. */
async function everythingStored(): Promise<string[]> {
  const values: string[] = [];
  for (const key of await redis.keys(`${prefix}*`)) {
    const type = await redis.type(key);
    if (type === 'string') values.push((await redis.get(key))!);
    else if (type === 'hash') values.push(...Object.entries(await redis.hgetall(key)).flat());
    else if (type === 'list') values.push(...(await redis.lrange(key, 0, -1)));
    else if (type === 'stream') for (const [, fields] of await redis.xrange(key, '-', '+')) values.push(...fields);
  }
  return values;
}

describe('second factors keep their secrets', () => {
  it('no recovery code or mfaToken in Redis; no TOTP secret, recovery code or mfaToken in any event or log line', async () => {
    const email = uniqueEmail();
    const signed = await signUp(server, email);
    const { secret, recoveryCodes } = await enrollTotp(server, signed.accessToken, clock.now());
    const login = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    const mfaToken = login.errors[0]!.extensions.mfaToken as string;
    await server.graphql(VERIFY, { t: mfaToken, code: totpAt(secret, clock.now(), 4) });
    clock.advance(STEP);
    const code = totpAt(secret, clock.now());
    const verified = await server.graphql(VERIFY, { t: mfaToken, code });
    expect(verified.errors).toEqual([]);
    const second = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    const token2 = second.errors[0]!.extensions.mfaToken as string;
    expect((await server.graphql(VERIFY, { t: token2, code: recoveryCodes[0] })).errors).toEqual([]);

    const plainCodes = recoveryCodes.flatMap((c) => [c, c.replace(/-/g, '')]);
    const tokenSecrets = [mfaToken, token2].flatMap((t) => [t, t.split('.')[1]!]);
    const stored = (await everythingStored()).join('\n');
    for (const needle of [...plainCodes, ...tokenSecrets]) expect(stored).not.toContain(needle);

    const events = await server.graphql('{ securityEvents(first: 100) { nodes { type details userAgent ipAddress } } }', {}, bearer(verified.data!.verifyMfa.accessToken));
    const types = (events.data!.securityEvents.nodes as { type: string }[]).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['mfa.enrolled', 'mfa.failed']));
    const published = `${JSON.stringify(events.data)}\n${server.logs.join('')}`;
    // (A six-digit code is not searched for: timestamps in the log contain six-digit runs by chance.)
    for (const needle of [secret, ...plainCodes, ...tokenSecrets]) expect(published).not.toContain(needle);
  });
});
