import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../src/users/passwords.js';
import { decorate } from '../helpers/decorate.js';
import { createTestServer, LOGIN, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';

/** The body of a chunked HTTP/1.1 message. */
function unchunk(payload: string): string {
  let body = '';
  let rest = payload;
  for (;;) {
    const at = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, at), 16);
    if (!(size > 0)) return body;
    body += rest.slice(at + 2, at + 2 + size);
    rest = rest.slice(at + 2 + size + 2);
  }
}

describe('input', () => {
  let server: TestServer;
  let argonCalls = 0;
  beforeAll(async () => {
    const real = await PasswordHasher.create();
    const passwords = decorate(real, {
      hash: (pw: string) => (argonCalls++, real.hash(pw)),
      verify: (hash: string | null, pw: string) => (argonCalls++, real.verify(hash, pw)),
    });
    server = await createTestServer({ store: 'memory', passwords });
  });
  afterAll(() => server.close());

  it('one address is one account: trimmed, NFC and lower-cased', async () => {
    const decomposed = `  Zoe\u0308.${Date.now()}@Example.COM `;
    const composed = decomposed.normalize('NFC').trim().toLowerCase();
    const signup = await server.graphql(SIGNUP, { email: decomposed, password: 'password123' });
    expect(signup.data!.signup.user.email).toBe(composed);
    const again = await server.graphql(SIGNUP, { email: composed, password: 'password123' });
    expect(again.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    const login = await server.graphql(LOGIN, { email: composed.toUpperCase(), password: 'password123' });
    expect(login.errors).toEqual([]);
  });

  it('passwords are measured in UTF-8 bytes: 8 to 1024 on signup', async () => {
    const tooShort = await server.graphql(SIGNUP, { email: uniqueEmail(), password: 'abcdefg' });
    expect(tooShort.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    const threeEuros = await server.graphql(SIGNUP, { email: uniqueEmail(), password: '€€€' }); // 9 bytes
    expect(threeEuros.errors).toEqual([]);
    const tooLong = await server.graphql(SIGNUP, { email: uniqueEmail(), password: '€'.repeat(342) }); // 1026 bytes
    expect(tooLong.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });

  it('login refuses only passwords over 1024 bytes, and does so without hashing', async () => {
    const before = argonCalls;
    const long = await server.graphql(LOGIN, { email: uniqueEmail(), password: 'x'.repeat(1025) });
    expect(long.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(argonCalls).toBe(before);
    const short = await server.graphql(LOGIN, { email: uniqueEmail(), password: 'x' });
    expect(short.errors[0]?.extensions.reason).toBe('INVALID_CREDENTIALS');
    expect(argonCalls).toBe(before + 1);
  });

  it('a 1 MB password is refused by the body limit, without hashing', async () => {
    const before = argonCalls;
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: LOGIN, variables: { email: 'a@example.com', password: 'x'.repeat(1 << 20) } }),
    });
    expect(response.status).toBe(413);
    expect(argonCalls).toBe(before);
  });

  it('a wrong content type cannot run an operation', async () => {
    for (const type of ['application/xml', 'text/plain', 'application/x-www-form-urlencoded']) {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(response.status, type).toBe(400);
    }
  });

  it('malformed JSON gets a clear error', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ __typename }"',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_USER_INPUT' } }] });
  });

  it('oversized headers are refused', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/graphql`, { method: 'POST', headers: { 'x-filler': 'y'.repeat(32 * 1024) } }, (res) =>
        resolve(res.statusCode ?? 0),
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
  });

  it('two Authorization headers are refused with 400 (BAD_REQUEST), whichever carries a valid token', async () => {
    const signedUp = (await server.graphql(SIGNUP, { email: uniqueEmail(), password: 'password123' })).data!.signup;
    const valid = `Bearer ${signedUp.accessToken}`;
    /** POSTs `{ me { id } }` over a plain socket, with these header lines as written. */
    const send = (lines: string[]) =>
      new Promise<{ status: number; cacheControl: string | undefined; body: any }>((resolve, reject) => {
        const body = JSON.stringify({ query: '{ me { id } }' });
        const { port } = new URL(server.url);
        const socket = connect(Number(port), '127.0.0.1');
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk) => (text += chunk));
        socket.on('error', reject);
        socket.on('end', () => {
          const [head = '', payload = ''] = text.split('\r\n\r\n');
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
          const cacheControl = /^cache-control: (.*)$/im.exec(head)?.[1];
          resolve({ status, cacheControl, body: JSON.parse(/^transfer-encoding: chunked/im.test(head) ? unchunk(payload) : payload) });
        });
        // Written, not ended: the server closes the connection once it has answered (Connection: close).
        socket.write(
          [
            'POST /graphql HTTP/1.1',
            `Host: 127.0.0.1:${port}`,
            'Content-Type: application/json',
            `Content-Length: ${Buffer.byteLength(body)}`,
            'Connection: close',
            ...lines,
            '',
            body,
          ].join('\r\n'),
        );
      });
    for (const lines of [
      [`Authorization: ${valid}`, 'Authorization: Bearer forged'],
      ['authorization: Bearer forged', `AUTHORIZATION: ${valid}`],
      [`Authorization: ${valid}`, `Authorization: ${valid}`],
    ]) {
      const answer = await send(lines);
      expect(answer.status, lines.join(' / ')).toBe(400);
      expect(answer.cacheControl).toBe('no-store');
      expect(answer.body).toEqual({
        errors: [{ message: 'The request has more than one Authorization header.', extensions: { code: 'BAD_REQUEST' } }],
      });
    }
    // One is fine.
    const one = await send([`Authorization: ${valid}`]);
    expect(one.status).toBe(200);
    expect(one.body.data).toEqual({ me: { id: signedUp.user.id } });
  });

  it('a variable of the wrong type is BAD_USER_INPUT', async () => {
    const answer = await server.graphql(LOGIN, { email: 42, password: ['x'] });
    expect(answer.status).toBe(400);
    expect(answer.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });
});
