import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ordersOf } from '../../examples/orders/orders.mjs';
import { testKeySet } from '../helpers/keys.js';
import { bearer, createTestServer, type TestServer } from '../helpers/testServer.js';
import { contextHeader, ISSUER, type RecordingSubgraph, signup, startRecordingOrders } from './support.js';

// One graphql copy, as in production (see gateway.test.ts).

const ROOT = resolve(import.meta.dirname, '..', '..');
const COMPOSE = join(ROOT, 'examples', 'compose-supergraph.mjs');

let dir: string;
let orders: RecordingSubgraph;
// One key set for every gateway here: the subgraph's verifier caches the JWKS it fetched.
const keys = testKeySet();
const servers: TestServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-supergraph-'));
  orders = await startRecordingOrders();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await orders?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * Composes a supergraph file with the documented script, from a rover-style config like
 * examples/orders/supergraph.yaml (with the orders subgraph, or auth alone).
 */
async function compose(file: string, withOrders: boolean): Promise<string> {
  const config = join(dir, `${file}.yaml`);
  const subgraphs = [
    `  auth:`,
    `    routing_url: http://auth.tessera.internal/graphql`,
    `    schema:`,
    `      files: [${join(ROOT, 'schema', 'auth.graphql')}, ${join(ROOT, 'schema', 'federation', 'auth-entity.graphql')}]`,
    ...(withOrders
      ? [`  orders:`, `    routing_url: ${orders.url}`, `    schema:`, `      subgraph_url: ${orders.url}`]
      : []),
  ];
  await writeFile(config, `federation_version: =2.5.0\nsubgraphs:\n${subgraphs.join('\n')}\n`);
  const output = join(dir, file);
  await promisify(execFile)(process.execPath, [COMPOSE, config, '--output', output]);
  return output;
}

async function startGateway(path: string): Promise<TestServer> {
  const server = await createTestServer({
    store: 'memory',
    keys: await keys,
    env: { AUTH_ISSUER: ISSUER, SUPERGRAPH_FILE: path, LOG_LEVEL: 'warn' },
  });
  servers.push(server);
  orders.pointAt(server.url);
  return server;
}

describe('SUPERGRAPH_FILE', () => {
  it('serves the composed supergraph: auth in process, orders over HTTP with the signed context', async () => {
    const gateway = await startGateway(await compose('both.graphql', true));
    const p = await signup(gateway);
    const from = orders.requests.length;
    const answer = await gateway.graphql('{ me { id orders { id } } }', {}, bearer(p.accessToken));
    expect(answer.errors).toEqual([]);
    expect(answer.data).toEqual({ me: { id: p.user.id, orders: ordersOf(p.user.id).map(({ id }) => ({ id })) } });
    const header = contextHeader(orders.requests[from]);
    expect((await orders.verifier.verify({ 'x-tessera-context': header })).user?.id).toBe(p.user.id);
  });

  it('picks up a change of the file while serving; a broken file leaves the last good supergraph serving', async () => {
    const path = join(dir, 'live.graphql');
    const [authOnly, both] = await Promise.all([compose('auth-only.graphql', false), compose('both-2.graphql', true)]);
    const { readFile } = await import('node:fs/promises');
    await writeFile(path, await readFile(authOnly, 'utf8'));
    const gateway = await startGateway(path);
    const p = await signup(gateway);
    const ordersType = async () => (await gateway.graphql('{ __type(name: "Order") { name } }')).data?.__type ?? null;
    expect(await ordersType()).toBeNull();

    await writeFile(path, await readFile(both, 'utf8'));
    await expect.poll(ordersType, { timeout: 5_000, interval: 100 }).toEqual({ name: 'Order' });
    const answer = await gateway.graphql('{ me { orders { id } } }', {}, bearer(p.accessToken));
    expect(answer.errors).toEqual([]);
    expect(answer.data!.me.orders).toHaveLength(3);

    await writeFile(path, 'this is not a supergraph');
    await expect.poll(() => gateway.logs.some((line) => line.includes('still serving the previous')), { timeout: 5_000 }).toBe(true);
    expect(await ordersType()).toEqual({ name: 'Order' });

    await writeFile(path, await readFile(authOnly, 'utf8'));
    await expect.poll(ordersType, { timeout: 5_000, interval: 100 }).toBeNull();
  });

  it('a missing file, or one without the auth subgraph, stops the start with a message naming SUPERGRAPH_FILE', async () => {
    const missing = join(dir, 'nope.graphql');
    await expect(startGateway(missing)).rejects.toThrow(`SUPERGRAPH_FILE: cannot read ${missing}: ENOENT`);
    const { composeServices } = await import('@apollo/composition');
    const { parse } = await import('graphql');
    const { typeDefs } = await import('../../examples/orders/orders.mjs');
    const noAuth = composeServices([{ name: 'orders', url: orders.url, typeDefs: parse(typeDefs) }]);
    const path = join(dir, 'no-auth.graphql');
    await writeFile(path, noAuth.supergraphSdl!);
    await expect(startGateway(path)).rejects.toThrow(/SUPERGRAPH_FILE: .* has no subgraph named "auth"/);
  });
});
