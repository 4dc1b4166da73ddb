/**
 * The realtime scenarios of `npm run bench` (src/realtime, docs/contract.md section 12), each
 * gateway `node main.js` in its own process on a redis-server of the bench's own:
 *
 * - idle authenticated WebSocket connections on one instance: the gateway's RSS and V8 heap
 *   (its own Prometheus `process_resident_memory_bytes` and `nodejs_heap_size_used_bytes`)
 *   before and after opening them, per connection (target: at most 16 KiB at 10,000);
 * - revocation to close: two instances on one Redis, `background` connections open on B, then for
 *   each sample a session with a socket on B is revoked with `revokeSession` on A; the latency
 *   runs from A's answer arriving to the socket's close (code 4403) on B (p99 at most 1 s,
 *   target 250 ms).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { systemClock } from '../../src/clock.js';
import { AccessTokenService } from '../../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet } from '../../src/tokens/keys.js';
import { type Child, freePort, sleep, startChild, startRedis, waitForHttp } from '../lib/processes.js';

export interface RealtimeBenchOptions {
  build: string;
  keyDir: string;
  quick: boolean;
  log: (line: string) => void;
}

export interface RealtimeFigures {
  idle: {
    connections: number;
    rssBytesPerConnection: number;
    heapBytesPerConnection: number;
    rssBeforeBytes: number;
    rssAfterBytes: number;
    openSeconds: number;
  };
  revocation: {
    background: number;
    samples: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
  };
}

const ISSUER = 'https://bench.tessera.test';
const PASSWORD = 'bench correct horse battery';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken session { id } } }';
const SIGNUP = 'mutation($e: String!, $p: String!) { signup(email: $e, password: $p) { accessToken user { id } session { id } } }';
/** Connections opened at once. */
const OPENING_IN_FLIGHT = 200;

interface Instance {
  child: Child;
  url: string;
  metricsUrl: string;
}

async function graphql<T>(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const answer = (await response.json()) as { data?: T; errors?: unknown[] };
  if (answer.errors?.length || !answer.data) throw new Error(`GraphQL error: ${JSON.stringify(answer.errors)}`);
  return answer.data;
}

async function startInstance(options: RealtimeBenchOptions, redisUrl: string, keyFile: string, prefix: string): Promise<Instance> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = startChild(process.execPath, [join(options.build, 'src', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      METRICS_HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      SIGNING_KEYS: keyFile,
      AUTH_ISSUER: ISSUER,
      SIGNUP_ENABLED: 'true',
      LOG_LEVEL: 'warn',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/readyz`, child);
  return { child, url, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

/** The gateway's own view of its memory, from its metrics. */
async function memoryOf(instance: Instance): Promise<{ rss: number; heap: number; ws: number }> {
  const text = await (await fetch(instance.metricsUrl)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes'), ws: value('tessera_ws_connections') };
}

/** An authenticated graphql-transport-ws connection, acknowledged. */
function open(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, ['graphql-transport-ws'], { perMessageDeflate: false });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    ws.on('message', (data) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack') resolve(ws);
    });
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed ${code} before the ack`)));
  });
}

async function openMany(url: string, tokens: readonly string[]): Promise<WebSocket[]> {
  const sockets: WebSocket[] = new Array(tokens.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: OPENING_IN_FLIGHT }, async () => {
      while (next < tokens.length) {
        const i = next++;
        sockets[i] = await open(url, tokens[i]!);
      }
    }),
  );
  return sockets;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number) => Math.round(n * 10) / 10;

export async function realtimeBenchmarks(options: RealtimeBenchOptions): Promise<RealtimeFigures> {
  const idleCount = options.quick ? 1_000 : 10_000;
  const background = options.quick ? 200 : 1_000;
  const samples = options.quick ? 30 : 200;
  const redis = await startRedis();
  const jwks = keySetJson([await generateSigningJwk('EdDSA')]);
  const keyFile = join(options.keyDir, 'signing-keys-realtime.json');
  await writeFile(keyFile, jwks, { mode: 0o600 });
  const children: Child[] = [];
  const sockets: WebSocket[] = [];
  try {
    const prefix = `tessera-bench-realtime-${Date.now()}:`;
    const a = await startInstance(options, redis.url, keyFile, prefix);
    children.push(a.child);
    const signed = (await graphql<{ signup: { accessToken: string; user: { id: string }; session: { id: string } } }>(a.url, SIGNUP, {
      e: `bench-realtime-${Date.now()}@example.com`,
      p: PASSWORD,
    })).signup;
    const minter = new AccessTokenService({
      keys: await parseKeySet(jwks, keyFile),
      issuer: ISSUER,
      audience: 'tessera',
      clientId: 'tessera',
      ttlMs: 15 * 60_000,
      clockToleranceSec: 5,
      clock: systemClock,
      verifiedCacheSize: 0,
    });
    /** Distinct access tokens (each its own jti) of the signed-up session. */
    const mint = async (n: number) => {
      const out: string[] = [];
      while (out.length < n) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(512, n - out.length) }, () => minter.issue({ userId: signed.user.id, sessionId: signed.session.id, roles: ['user'] })),
        );
        out.push(...batch.map((issued) => issued.token));
      }
      return out;
    };

    // 1. Idle connections on A. Warm the code paths first, so the delta is the connections'.
    options.log(`realtime: ${idleCount} idle authenticated WebSocket connections on one instance …\n`);
    for (const ws of await openMany(a.url, await mint(200))) ws.close();
    await sleep(2_000);
    const tokens = await mint(idleCount);
    const before = await memoryOf(a);
    const opening = performance.now();
    sockets.push(...(await openMany(a.url, tokens)));
    const openSeconds = (performance.now() - opening) / 1000;
    await sleep(3_000);
    const after = await memoryOf(a);
    if (after.ws < idleCount) throw new Error(`the gateway counts ${after.ws} connections, not ${idleCount}`);
    const idle = {
      connections: idleCount,
      rssBytesPerConnection: Math.round((after.rss - before.rss) / idleCount),
      heapBytesPerConnection: Math.round((after.heap - before.heap) / idleCount),
      rssBeforeBytes: before.rss,
      rssAfterBytes: after.rss,
      openSeconds: round(openSeconds),
    };
    for (const ws of sockets.splice(0)) ws.terminate();

    // 2. Revocation to close: B on the same Redis and prefix.
    options.log(`realtime: revocation to close, ${samples} sessions revoked on A with ${background} connections open on B …\n`);
    const b = await startInstance(options, redis.url, keyFile, prefix);
    children.push(b.child);
    sockets.push(...(await openMany(b.url, await mint(background))));
    // Sessions to revoke, spread over users (MAX_SESSIONS_PER_USER ends the oldest past 100).
    const sessions: { accessToken: string; session: { id: string } }[] = [];
    const perUser = 20;
    for (let u = 0; sessions.length < samples; u++) {
      const email = `bench-realtime-revoke-${u}-${Date.now()}@example.com`;
      sessions.push((await graphql<{ signup: (typeof sessions)[number] }>(a.url, SIGNUP, { e: email, p: PASSWORD })).signup);
      for (let i = 1; i < perUser && sessions.length < samples; i += 4) {
        const logins = await Promise.all(
          Array.from({ length: Math.min(4, perUser - i, samples - sessions.length) }, () => graphql<{ login: (typeof sessions)[number] }>(a.url, LOGIN, { e: email, p: PASSWORD })),
        );
        sessions.push(...logins.map((l) => l.login));
      }
    }
    const latencies: number[] = [];
    for (const session of sessions) {
      const ws = await open(b.url, session.accessToken);
      const closed = new Promise<{ at: number; code: number }>((resolve) => ws.once('close', (code) => resolve({ at: performance.now(), code })));
      await graphql(a.url, 'mutation { revokeSession }', {}, session.accessToken);
      const returned = performance.now();
      const { at, code } = await closed;
      if (code !== 4403) throw new Error(`the revoked session's socket closed with ${code}, not 4403`);
      latencies.push(Math.max(0, at - returned));
    }
    latencies.sort((x, y) => x - y);
    const revocation = {
      background,
      samples: latencies.length,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies[latencies.length - 1]!),
    };
    return { idle, revocation };
  } finally {
    for (const ws of sockets) ws.terminate();
    await Promise.all(children.map((child) => child.stop()));
    await redis.stop();
  }
}

export function printRealtime(figures: RealtimeFigures, write: (line: string) => void): void {
  const { idle, revocation } = figures;
  const kib = (bytes: number) => `${round(bytes / 1024)} KiB`;
  write('\nrealtime (GraphQL over WebSocket)\n');
  write(
    `  idle authenticated connections: ${idle.connections} on one instance, opened in ${idle.openSeconds} s: ` +
      `${kib(idle.rssBytesPerConnection)} RSS and ${kib(idle.heapBytesPerConnection)} V8 heap per connection (target ≤ 16 KiB)\n`,
  );
  write(
    `  revocation to close (revokeSession answered on A → socket closed 4403 on B, ${revocation.background} other connections open on B, ` +
      `${revocation.samples} samples): p50 ${revocation.p50Ms} ms, p99 ${revocation.p99Ms} ms, max ${revocation.maxMs} ms (p99 ≤ 1 s, target 250 ms)\n`,
  );
}
