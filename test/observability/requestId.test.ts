import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { requestIdFrom } from '../../src/http/requestId.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import { decorate } from '../helpers/decorate.js';
import { createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** One raw HTTP/1.1 request over a socket (to send header values fetch and node:http would refuse or tidy). */
async function rawRequest(url: string, head: string, body = ''): Promise<{ status: number; headers: Record<string, string> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(`${head}\r\nhost: ${hostname}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const [statusLine, ...lines] = text.split('\r\n\r\n')[0]!.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine!.split(' ')[1]), headers });
    });
  });
}

/** The log lines (parsed) that carry this request id. */
function linesOf(server: TestServer, requestId: string): Record<string, unknown>[] {
  return server.logs.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.requestId === requestId);
}

describe('requestIdFrom', () => {
  it('keeps 1 to 128 characters of A-Z a-z 0-9 . _ : -, and replaces anything else with a new UUID', () => {
    for (const good of ['a', 'abc-123', 'req_1.2:3', 'X'.repeat(128), '0af7651916cd43dd8448eb211c80319c']) expect(requestIdFrom(good)).toBe(good);
    for (const bad of ['', 'X'.repeat(129), 'a b', 'a\tb', 'a\nb', 'a\u0000b', 'é', 'a,b', '<script>', 'a/b']) {
      expect(requestIdFrom(bad), JSON.stringify(bad)).toMatch(UUID);
    }
    expect(requestIdFrom(undefined)).toMatch(UUID);
    expect(requestIdFrom(['a', 'b'])).toMatch(UUID);
    expect(requestIdFrom(undefined)).not.toBe(requestIdFrom(undefined));
  });
});

describe('x-request-id over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await createTestServer({ store: 'memory' });
  });
  afterAll(() => server?.close());

  it('echoes a valid incoming id, and puts it in every log line of the request', async () => {
    const id = `client-${Date.now()}:a.b_c`;
    const answer = await server.graphql('{ me { id } }', {}, { 'x-request-id': id });
    expect(answer.headers.get('x-request-id')).toBe(id);
    const lines = linesOf(server, id);
    // At debug: the request line with its headers, and the access line.
    expect(lines.map((line) => line.msg)).toEqual(['request', 'request done']);
    expect(lines[1]).toMatchObject({ path: '/graphql', status: 200 });
  });

  it('gives a request without one a new id, different each time, on every endpoint', async () => {
    const first = await fetch(`${server.url}/healthz`);
    const second = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ me { id } }"}' });
    const notFound = await fetch(`${server.url}/nothing-here`);
    const ids = [first, second, notFound].map((response) => response.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(3);
    expect(linesOf(server, ids[1]!).at(-1)).toMatchObject({ msg: 'request done', status: 200 });
  });

  it('replaces a malformed id (too long, control characters, spaces, several) and never logs it', async () => {
    const marker = `evil${Date.now()}`;
    const malformed = [
      `${marker}${'x'.repeat(200)}`,
      `${marker}\tinjected`,
      `${marker} {"requestId":"forged"}`,
      `${marker}\u00e9`,
    ];
    for (const value of malformed) {
      const answer = await rawRequest(server.url, `GET /healthz HTTP/1.1\r\nx-request-id: ${value}`);
      expect(answer.status).toBe(200);
      expect(answer.headers['x-request-id']).toMatch(UUID);
      expect(linesOf(server, answer.headers['x-request-id']!).map((line) => line.msg)).toEqual(['request', 'request done']);
    }
    const twice = await rawRequest(server.url, `GET /healthz HTTP/1.1\r\nx-request-id: ${marker}a\r\nx-request-id: ${marker}b`);
    expect(twice.headers['x-request-id']).toMatch(UUID);
    // Not in the headers dumped at debug, nor anywhere else.
    expect(server.logs.join('')).not.toContain(marker);
  });
});

describe('request ids in the log lines of GraphQL errors', () => {
  it('the "store unavailable" line of a request carries its id', async () => {
    const store = new MemoryStore();
    const failing = decorate(store, {
      findUserByEmail: async () => {
        throw new StoreUnavailableError(new Error('connection refused'));
      },
    });
    const server = await createTestServer({ store: failing });
    try {
      const email = uniqueEmail();
      await signUp(server, email);
      const id = `login-${Date.now()}`;
      const answer = await server.graphql(LOGIN, { email, password: TEST_PASSWORD }, { 'x-request-id': id });
      expect(answer.errors[0]?.extensions.code).toBe('SERVICE_UNAVAILABLE');
      expect(linesOf(server, id).map((line) => line.msg)).toEqual(['request', 'store unavailable', 'request done']);
      // Variables (the password) stay redacted in the request's lines.
      expect(server.logs.join('')).not.toContain(TEST_PASSWORD);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
