import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningJwk, keySetJson } from '../../src/tokens/keys.js';
import { buildGateway, runGateway, type RunningGateway } from '../helpers/builtGateway.js';
import { freePort } from '../helpers/ports.js';
import { deleteKeys, inspector, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { bearer, REFRESH, SIGNUP, uniqueEmail } from '../helpers/testServer.js';

/*
 * Production-like: `node dist/main.js` twice, sharing one Redis (under this run's own key
 * prefix), in front of the example orders subgraph run as `node examples/orders/server.mjs`,
 * which imports the verifier as a package user would: `import … from '@tessera-gateway/subgraph'`.
 * One gateway composes by introspection (SUBGRAPHS), the other serves a supergraph file.
 */

const ROOT = resolve(import.meta.dirname, '..', '..');
const ISSUER = 'http://tessera.test';
const PASSWORD = 'correct horse battery';

let work: string;
let build: string;
const keyPrefix = uniquePrefix('fed');
const processes: { child: RunningGateway['child']; exited: Promise<unknown> }[] = [];
let a: string;
let b: string;
let b2: RunningGateway;

async function gql(base: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: { extensions: Record<string, unknown> }[] };
  return { data: body.data ?? null, errors: body.errors ?? [] };
}

async function waitFor(url: string, output: () => string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited()) throw new Error(`exited at start:\n${output()}`);
    if (await fetch(url).then((r) => r.status < 500, () => false)) return;
    if (Date.now() > deadline) throw new Error(`not serving within 15 s:\n${output()}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tessera-fed-'));
  build = await buildGateway();
  await cp(join(ROOT, 'examples'), join(build, 'examples'), { recursive: true });
  const keysFile = join(work, 'signing-keys.json');
  await writeFile(keysFile, keySetJson([await generateSigningJwk()]), { mode: 0o600 });
  const [ordersPort, portA, portB] = await Promise.all([freePort(), freePort(), freePort()]);
  a = `http://127.0.0.1:${portA}`;
  b = `http://127.0.0.1:${portB}`;

  // The example subgraph, from the built package.
  const orders = spawn(process.execPath, [join(build, 'examples', 'orders', 'server.mjs')], {
    cwd: build,
    env: { PATH: process.env.PATH ?? '', PORT: String(ordersPort), HOST: '127.0.0.1', TESSERA_URL: a, AUTH_ISSUER: ISSUER },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let ordersOutput = '';
  orders.stdout.on('data', (chunk) => (ordersOutput += chunk));
  orders.stderr.on('data', (chunk) => (ordersOutput += chunk));
  processes.push({ child: orders, exited: new Promise((done) => orders.on('exit', done)) });
  const ordersUrl = `http://127.0.0.1:${ordersPort}/graphql`;
  await waitFor(`http://127.0.0.1:${ordersPort}/.well-known/apollo/server-health`, () => ordersOutput, () => orders.exitCode !== null);

  // The supergraph file for B, composed with the documented script.
  const config = join(work, 'supergraph.yaml');
  await writeFile(
    config,
    [
      'subgraphs:',
      '  auth:',
      '    routing_url: http://auth.tessera.internal/graphql',
      '    schema:',
      `      files: [${join(ROOT, 'schema', 'auth.graphql')}, ${join(ROOT, 'schema', 'federation', 'auth-entity.graphql')}]`,
      '  orders:',
      `    routing_url: ${ordersUrl}`,
      '    schema:',
      `      file: ${join(ROOT, 'examples', 'orders', 'orders.graphql')}`,
      '',
    ].join('\n'),
  );
  const supergraph = join(work, 'supergraph.graphql');
  await promisify(execFile)(process.execPath, [join(ROOT, 'examples', 'compose-supergraph.mjs'), config, '--output', supergraph]);

  const common = {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: keyPrefix,
    SIGNING_KEYS: keysFile,
    AUTH_ISSUER: ISSUER,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    REFRESH_REUSE_GRACE: '0',
  };
  const gatewayA = runGateway(build, { ...common, PORT: String(portA), SUBGRAPHS: `orders=${ordersUrl}` });
  b2 = runGateway(build, { ...common, PORT: String(portB), SUPERGRAPH_FILE: supergraph });
  processes.push(gatewayA, b2);
  await Promise.all([
    waitFor(`${a}/healthz`, gatewayA.output, () => gatewayA.child.exitCode !== null),
    waitFor(`${b}/healthz`, b2.output, () => b2.child.exitCode !== null),
  ]);
}, 60_000);

afterAll(async () => {
  for (const { child, exited } of processes) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  const redis = inspector();
  await deleteKeys(redis, keyPrefix);
  redis.disconnect();
  await Promise.all([work, build].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
});

async function signup(base: string) {
  const answer = await gql(base, SIGNUP, { email: uniqueEmail(), password: PASSWORD });
  expect(answer.errors).toEqual([]);
  return answer.data.signup as { accessToken: string; refreshToken: string; user: { id: string; email: string } };
}

describe('two gateway processes sharing one Redis, in front of the example subgraph', () => {
  it('a session from one answers on the other, across auth and orders', async () => {
    const p = await signup(a);
    for (const base of [a, b]) {
      const answer = await gql(base, '{ me { email orders { id } } }', {}, bearer(p.accessToken));
      expect(answer.errors).toEqual([]);
      expect(answer.data.me.email).toBe(p.user.email);
      expect(answer.data.me.orders.map((o: { id: string }) => o.id)).toEqual([3, 2, 1].map((n) => `${p.user.id}-${n}`));
    }
  });

  it('a session revoked through one has its access tokens refused by the other within 1 s', async () => {
    const p = await signup(a);
    expect((await gql(b, '{ me { id orders { id } } }', {}, bearer(p.accessToken))).errors).toEqual([]);
    expect((await gql(a, 'mutation { revokeSession }', {}, bearer(p.accessToken))).data).toEqual({ revokeSession: true });
    const started = Date.now();
    await expect
      .poll(async () => (await gql(b, '{ me { id orders { id } } }', {}, bearer(p.accessToken))).errors[0]?.extensions.reason, {
        timeout: 1_000,
        interval: 20,
      })
      .toBe('SESSION_REVOKED');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a refresh token rotated on one is rotated for both', async () => {
    const p = await signup(b);
    expect((await gql(a, REFRESH, { t: p.refreshToken })).errors).toEqual([]);
    const again = await gql(b, REFRESH, { t: p.refreshToken });
    expect(again.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REFRESH_TOKEN_REUSED' });
  });

  it('a gateway in federation mode stops cleanly on SIGTERM', async () => {
    const started = Date.now();
    b2.child.kill('SIGTERM');
    expect(await b2.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
