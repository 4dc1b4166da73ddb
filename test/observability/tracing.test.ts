import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startTracing, type Tracing } from '../../src/observability/tracing.js';
import { testKeySet } from '../helpers/keys.js';
import { bearer, createTestServer, LOGIN, signUp, TEST_PASSWORD, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { ISSUER, startRecordingOrders } from '../federation/support.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './support.js';

const SERVER = 2;
const CLIENT = 3;

/** The spans of one trace, and a way to walk its tree. */
function traceOf(spans: ReceivedSpan[], root: ReceivedSpan) {
  const inTrace = spans.filter((span) => span.traceId === root.traceId);
  return {
    spans: inTrace,
    children: (parent: ReceivedSpan) => inTrace.filter((span) => span.parentSpanId === parent.spanId),
  };
}

async function tracedServer(receiver: OtlpReceiver, env: Record<string, string> = {}, store: 'redis' | 'memory' = 'redis') {
  const tracing = await startTracing({ endpoint: receiver.url, logger: createLogger({ production: false, level: 'silent' }) });
  const server = await createTestServer({ store, env, deps: { tracing } });
  return { server, tracing };
}

/** Sends what has ended, then the spans of the request whose response carried `requestId`. */
async function requestSpan(receiver: OtlpReceiver, tracing: Tracing, requestId: string): Promise<ReceivedSpan> {
  await tracing.flush();
  const found = receiver.spans.filter((span) => span.kind === SERVER && span.attributes['tessera.request_id'] === requestId);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  let receiver: OtlpReceiver;
  let server: TestServer;
  let tracing: Tracing;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    ({ server, tracing } = await tracedServer(receiver));
  });
  afterAll(async () => {
    await server?.close();
    await tracing?.shutdown();
    await receiver?.close();
  });

  it('one trace per request: request -> operation -> each store command', async () => {
    const email = uniqueEmail();
    await signUp(server, email);
    const login = await server.graphql(LOGIN, { email, password: TEST_PASSWORD }, { 'x-request-id': 'trace-login-1' });
    expect(login.errors).toEqual([]);
    const root = await requestSpan(receiver, tracing, 'trace-login-1');
    expect(root).toMatchObject({ name: 'POST /graphql', parentSpanId: undefined, service: 'tessera' });
    expect(root.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/graphql', 'http.response.status_code': 200 });

    const tree = traceOf(receiver.spans, root);
    const [operation, ...others] = tree.children(root);
    expect(others).toEqual([]);
    expect(operation).toMatchObject({ name: 'mutation', attributes: { 'graphql.operation.type': 'mutation' } });
    const commands = tree.children(operation!).map((span) => span.name);
    expect(commands).toEqual(expect.arrayContaining(['store increment', 'store findUserByEmail', 'store reset', 'store createSession']));
    for (const span of tree.children(operation!)) {
      expect(span).toMatchObject({ kind: CLIENT, attributes: { 'db.system.name': 'redis', 'db.operation.name': span.name.replace('store ', '') } });
    }
    // Nothing else in this trace: every span is the request, the operation, or a store command under it.
    expect(tree.spans).toHaveLength(2 + commands.length);
    // Other requests are other traces.
    const signupRoots = receiver.spans.filter((span) => span.kind === SERVER && span.traceId !== root.traceId);
    expect(signupRoots.length).toBeGreaterThanOrEqual(1);
  });

  it('names the operation after it, and continues a caller\'s traceparent', async () => {
    const signed = await signUp(server);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const answer = await server.graphql('query Who { me { id } }', {}, {
      ...bearer(signed.accessToken),
      traceparent: `00-${traceId}-${parent}-01`,
      'x-request-id': 'trace-me-1',
    });
    expect(answer.errors).toEqual([]);
    const root = await requestSpan(receiver, tracing, 'trace-me-1');
    expect(root.traceId).toBe(traceId);
    expect(root.parentSpanId).toBe(parent);
    const [operation] = traceOf(receiver.spans, root).children(root);
    expect(operation).toMatchObject({ name: 'query Who', attributes: { 'graphql.operation.type': 'query', 'graphql.operation.name': 'Who' } });
  });

  it('a request outside GraphQL is a span of its own, named by its route; an unknown path by its method alone', async () => {
    const ready = await fetch(`${server.url}/readyz`, { headers: { 'x-request-id': 'trace-ready-1' } });
    expect(ready.status).toBe(200);
    const root = await requestSpan(receiver, tracing, 'trace-ready-1');
    expect(root.name).toBe('GET /readyz');
    expect(traceOf(receiver.spans, root).children(root).map((span) => span.name)).toEqual(['store ping']);
    await fetch(`${server.url}/secret-looking-path-123`, { headers: { 'x-request-id': 'trace-404-1' } });
    const unknown = await requestSpan(receiver, tracing, 'trace-404-1');
    expect(unknown).toMatchObject({ name: 'GET', attributes: { 'http.response.status_code': 404 } });
    expect(JSON.stringify(unknown)).not.toContain('secret-looking-path');
  });
});

describe('traces in gateway mode', () => {
  it('a subgraph call is a client span under the operation, and the subgraph receives its traceparent', async () => {
    const receiver = await startOtlpReceiver();
    const orders = await startRecordingOrders();
    const tracing = await startTracing({ endpoint: receiver.url, logger: createLogger({ production: false, level: 'silent' }) });
    const gateway = await createTestServer({
      store: 'memory',
      keys: await testKeySet(),
      env: { AUTH_ISSUER: ISSUER, SUBGRAPHS: `orders=${orders.url}`, LOG_LEVEL: 'warn' },
      deps: { tracing },
    });
    orders.pointAt(gateway.url);
    try {
      const signed = await signUp(gateway);
      orders.requests.length = 0;
      const answer = await gateway.graphql('{ me { email orders { id } } }', {}, { ...bearer(signed.accessToken), 'x-request-id': 'trace-fed-1' });
      expect(answer.errors).toEqual([]);
      const root = await requestSpan(receiver, tracing, 'trace-fed-1');
      const tree = traceOf(receiver.spans, root);
      const [operation] = tree.children(root);
      expect(operation!.name).toBe('query');
      const subgraph = tree.children(operation!).find((span) => span.name === 'subgraph orders');
      expect(subgraph).toMatchObject({ kind: CLIENT, attributes: { 'tessera.subgraph': 'orders', 'server.address': '127.0.0.1' } });
      // The auth subgraph runs in process: its store reads are spans of the same operation.
      expect(tree.children(operation!).map((span) => span.name)).toContain('store getUsers');

      expect(orders.requests).toHaveLength(1);
      expect(orders.requests[0]!.traceparent).toBe(`00-${root.traceId}-${subgraph!.spanId}-01`);
    } finally {
      await gateway.close();
      await orders.stop();
      await tracing.shutdown();
      await receiver.close();
    }
  });
});
