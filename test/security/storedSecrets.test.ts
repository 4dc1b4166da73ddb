import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeys, inspector, uniquePrefix } from '../helpers/redis.js';
import { createTestServer, REFRESH, signUp, TEST_PASSWORD, type TestServer } from '../helpers/testServer.js';

const prefix = uniquePrefix('stored-secrets');
const redis = inspector();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ store: 'redis', keyPrefix: prefix });
});

afterAll(async () => {
  await server.close();
  await deleteKeys(redis, prefix);
  redis.disconnect();
});

/** Every value under the prefix, as bytes: strings whole, hashes field by field. */
async function everythingStored(): Promise<Buffer[]> {
  const keys = await redis.keys(`${prefix}*`);
  const values: Buffer[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    if (type === 'string') values.push((await redis.getBuffer(key))!);
    else if (type === 'hash') values.push(...Object.values(await redis.hgetallBuffer(key)));
    else if (type === 'stream') {
      // Security events: every field of every entry.
      for (const [, fields] of await redis.xrangeBuffer(key, '-', '+')) values.push(...fields);
    } else if (type === 'list') values.push(...(await redis.lrangeBuffer(key, 0, -1)));
    else if (type === 'zset') values.push(...(await redis.zrangeBuffer(key, 0, -1)));
    else throw new Error(`unexpected ${type} at ${key}`);
  }
  return values;
}

/** The secret part of a refresh token (`<user>.<session>.<generation>.<secret>.<tag>`), as text and as bytes. */
function secretForms(refreshToken: string): Buffer[] {
  const secret = refreshToken.split('.')[3]!;
  return [Buffer.from(secret), Buffer.from(secret, 'base64url'), Buffer.from(refreshToken)];
}

describe('a read of Redis', () => {
  it('finds no usable refresh secret nor the password, after a login and a refresh', async () => {
    const first = await signUp(server);
    const refreshed = await server.graphql(REFRESH, { t: first.refreshToken });
    expect(refreshed.errors).toEqual([]);
    const second = refreshed.data!.refreshToken.refreshToken as string;

    const values = await everythingStored();
    // The session record is there (the live hash, its predecessor's, the sealed successor), and
    // the security events of the sign-up …
    expect(values.length).toBeGreaterThanOrEqual(2);
    expect(values.some((v) => v.toString().includes('session.created'))).toBe(true);
    // … but neither secret in any form, nor the password.
    const forbidden = [...secretForms(first.refreshToken), ...secretForms(second), Buffer.from(TEST_PASSWORD)];
    for (const value of values) for (const secret of forbidden) expect(value.includes(secret)).toBe(false);
  });
});
