import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, runGateway, type RunningGateway } from '../helpers/builtGateway.js';
import { freePort } from '../helpers/ports.js';
import { ISSUER, startRecordingOrders } from '../federation/support.js';
import { sample, startOtlpReceiver } from './support.js';

let dir: string;
let cwd: string;
/** A preload that prints, as the process exits, which of these packages it had loaded. */
let reportModules: string;
beforeAll(async () => {
  dir = await buildGateway();
  cwd = await mkdtemp(join(tmpdir(), 'tessera-obs-cwd-'));
  reportModules = join(cwd, 'report-modules.mjs');
  await writeFile(
    reportModules,
    `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const watched = ['@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http', 'pino-pretty'];
process.on('exit', () => {
  const loaded = watched.filter((name) => Object.keys(require.cache).some((path) => path.includes(\`/node_modules/\${name}/\`)));
  process.stdout.write(\`LOADED \${JSON.stringify(loaded)}\\n\`);
});
`,
  );
}, 60_000);

async function started(env: Record<string, string>): Promise<RunningGateway> {
  const run = runGateway(dir, { HOST: '127.0.0.1', NODE_OPTIONS: `--import=${reportModules}`, ...env }, cwd);
  await expect.poll(() => run.output(), { timeout: 20_000 }).toContain('serving GraphQL');
  return run;
}

async function stopped(run: RunningGateway): Promise<string[]> {
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
  return run.output().split('\n').filter(Boolean);
}

async function post(url: string, query: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as { data?: any; errors?: any[] } };
}

const SIGNUP = 'mutation { signup(email: "ada@example.com", password: "correct horse battery") { accessToken } }';

describe('node dist/main.js, observed', () => {
  it('by default: JSON logs with request ids, /metrics on METRICS_PORT only, and no tracing or pino-pretty code loaded', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const run = await started({ PORT: String(port), METRICS_PORT: String(metricsPort) });
    const url = `http://127.0.0.1:${port}`;
    const signup = await post(url, SIGNUP, { 'x-request-id': 'proc-json-1' });
    expect(signup.body.errors).toBeUndefined();
    expect(signup.headers.get('x-request-id')).toBe('proc-json-1');

    const scraped = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toContain('text/plain');
    const text = await scraped.text();
    expect(sample(text, 'tessera_graphql_request_duration_seconds_count', { operation_type: 'mutation' })).toBe(1);
    expect(sample(text, 'tessera_revocation_feed_healthy')).toBe(1);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);

    const lines = await stopped(run);
    const json = lines.filter((line) => !line.startsWith('LOADED')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(json.find((line) => line.requestId === 'proc-json-1')).toMatchObject({ msg: 'request done', path: '/graphql', status: 200 });
    expect(json.find((line) => String(line.msg).startsWith('Prometheus metrics:'))?.msg).toBe(
      `Prometheus metrics: http://127.0.0.1:${metricsPort}/metrics; tracing: off`,
    );
    expect(lines.filter((line) => line.startsWith('LOADED'))).toEqual(['LOADED []']);
  }, 40_000);

  it('LOG_FORMAT=pretty and OTEL_EXPORTER_OTLP_ENDPOINT in gateway mode: readable one-line logs, and spans sent', async () => {
    const receiver = await startOtlpReceiver();
    const orders = await startRecordingOrders();
    try {
      const port = await freePort();
      const run = await started({
        PORT: String(port),
        LOG_FORMAT: 'pretty',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        SUBGRAPHS: `orders=${orders.url}`,
        AUTH_ISSUER: ISSUER,
      });
      const url = `http://127.0.0.1:${port}`;
      orders.pointAt(url);
      const signup = await post(url, SIGNUP, { 'x-request-id': 'proc-pretty-1' });
      expect(signup.body.errors).toBeUndefined();
      const me = await post(url, '{ me { orders { id } } }', { authorization: `Bearer ${signup.body.data.signup.accessToken}` });
      expect(me.body.errors).toBeUndefined();

      const lines = await stopped(run);
      const logs = lines.filter((line) => !line.startsWith('LOADED'));
      for (const line of logs) expect(line, line).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG): /);
      expect(logs.filter((line) => line.includes('Mode: unmanaged'))).toEqual([expect.stringMatching(/INFO: Gateway successfully loaded schema\. Mode: unmanaged$/)]);
      expect(logs.find((line) => line.includes('"requestId":"proc-pretty-1"') && line.includes('request done'))).toMatch(/INFO: request done \{.*"status":200/);
      expect(logs.some((line) => line.includes(`tracing: OTLP/HTTP to ${receiver.url}`))).toBe(true);
      expect(lines.filter((line) => line.startsWith('LOADED'))).toEqual([
        `LOADED ${JSON.stringify(['@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http', 'pino-pretty'])}`,
      ]);

      // SIGTERM sent what was left: the two requests' traces, the second with the subgraph call.
      const roots = receiver.spans.filter((span) => span.name === 'POST /graphql');
      expect(roots).toHaveLength(2);
      expect(receiver.spans.filter((span) => span.name === 'subgraph orders' && span.traceId === roots[1]!.traceId)).toHaveLength(1);
    } finally {
      await orders.stop();
      await receiver.close();
    }
  }, 40_000);

  it('a METRICS_PORT that cannot be bound stops the start with one line', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const busy = (taken.address() as { port: number }).port;
      const run = runGateway(dir, { PORT: String(await freePort()), HOST: '127.0.0.1', METRICS_PORT: String(busy) }, cwd);
      expect(await run.exited).toBe(1);
      expect(run.output().trim().split('\n')).toEqual([
        `tessera: failed to start: METRICS_PORT: cannot listen on 127.0.0.1:${busy} for /metrics (the address is already in use); set another port, or 0 to turn metrics off`,
      ]);
    } finally {
      taken.close();
    }
  }, 20_000);
});
