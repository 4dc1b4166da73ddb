import { afterEach, describe, expect, it } from 'vitest';
import { createTestServer, LOGIN, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';

const PASSWORD = 'correct horse battery';
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(env: Record<string, string>) {
  const server = await createTestServer({ env });
  servers.push(server);
  return server;
}

const aliased = (email: string, n: number) =>
  `mutation { ${Array.from({ length: n }, (_, i) => `a${i}: login(email: "${email}", password: "wrong password ${i}") { accessToken }`).join(' ')} }`;

describe('login abuse', () => {
  it('aliases in one request cannot make uncounted attempts', async () => {
    const server = await start({ LOGIN_MAX_FAILURES: '3' });
    const email = uniqueEmail();
    await server.graphql(SIGNUP, { email, password: PASSWORD });
    // Mutation fields run one after another, and the first failure ends the operation:
    // whatever ran was counted.
    const answer = await server.graphql(aliased(email, 5));
    expect(answer.data).toBeNull();
    expect(answer.errors.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
    for (let i = 0; i < 2; i++) {
      const wrong = await server.graphql(LOGIN, { email, password: 'wrong password' });
      expect(wrong.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
    }
    const right = await server.graphql(LOGIN, { email, password: PASSWORD });
    expect(right.errors[0]?.extensions.code).toBe('RATE_LIMITED');
  });

  it('batched operations in one request count one attempt each', async () => {
    const server = await start({ LOGIN_MAX_FAILURES: '2', MAX_BATCH_SIZE: '4' });
    const email = uniqueEmail();
    await server.graphql(SIGNUP, { email, password: PASSWORD });
    const batch = Array.from({ length: 4 }, () => ({ query: LOGIN, variables: { email, password: 'wrong password' } }));
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(batch),
    });
    const answers = (await response.json()) as { errors: { extensions: { code: string } }[] }[];
    const codes = answers.map((a) => a.errors[0]?.extensions.code);
    expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(2);
    const over = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([...batch, ...batch]),
    });
    expect(over.status).toBe(400);
  });

  it('one address trying many accounts hits the per-address limit', async () => {
    const server = await start({ LOGIN_MAX_FAILURES: '5', LOGIN_MAX_FAILURES_PER_ADDRESS: '4' });
    const codes: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await server.graphql(LOGIN, { email: uniqueEmail(), password: 'wrong password' });
      codes.push(answer.errors[0]?.extensions.code);
    }
    expect(codes.slice(0, 4)).toEqual(Array(4).fill('UNAUTHENTICATED'));
    expect(codes.slice(4)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('successful logins do not use up the address allowance', async () => {
    const server = await start({ LOGIN_MAX_FAILURES_PER_ADDRESS: '2' });
    const email = uniqueEmail();
    await server.graphql(SIGNUP, { email, password: PASSWORD });
    for (let i = 0; i < 5; i++) expect((await server.graphql(LOGIN, { email, password: PASSWORD })).errors).toEqual([]);
  });

  it('X-Forwarded-For is ignored unless TRUST_PROXY says so', async () => {
    const server = await start({ LOGIN_MAX_FAILURES_PER_ADDRESS: '2' });
    for (let i = 0; i < 2; i++) {
      await server.graphql(LOGIN, { email: uniqueEmail(), password: 'wrong password' }, { 'x-forwarded-for': `10.0.0.${i}` });
    }
    const third = await server.graphql(LOGIN, { email: uniqueEmail(), password: 'x' }, { 'x-forwarded-for': '10.0.0.9' });
    expect(third.errors[0]?.extensions.code).toBe('RATE_LIMITED');

    const proxied = await start({ LOGIN_MAX_FAILURES_PER_ADDRESS: '2', TRUST_PROXY: '1' });
    for (let i = 0; i < 4; i++) {
      const answer = await proxied.graphql(LOGIN, { email: uniqueEmail(), password: 'wrong password' }, { 'x-forwarded-for': `10.0.1.${i}` });
      expect(answer.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
    }
    const signup = await proxied.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, { 'x-forwarded-for': '203.0.113.7' });
    expect(signup.data!.signup.session.ipAddress).toBe('203.0.113.7');
  });

  it('a trusted X-Forwarded-For entry that is not an IP address is not believed: the socket address stands', async () => {
    const proxied = await start({ TRUST_PROXY: '1' });
    const junk = `<script>${'x'.repeat(300)}`;
    const signup = await proxied.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, { 'x-forwarded-for': junk });
    expect(signup.errors).toEqual([]);
    expect(signup.data!.signup.session.ipAddress).toBe('127.0.0.1');
    // Some proxies add the client's port: the address is still believed.
    for (const [entry, address] of [
      ['203.0.113.7:41234', '203.0.113.7'],
      ['[2001:db8::7]:443', '2001:db8::7'],
      ['2001:db8::8', '2001:db8::8'],
    ]) {
      const answer = await proxied.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD }, { 'x-forwarded-for': entry! });
      expect(answer.data!.signup.session.ipAddress).toBe(address);
    }
  });
});
