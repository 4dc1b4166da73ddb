/**
 * The gateway-mode scenarios of `npm run bench` (`npm run bench -- --gateway` runs only these):
 * Tessera in gateway mode against @apollo/gateway with no auth (the ceiling), @apollo/gateway +
 * `jose.jwtVerify` per request forwarding `x-user-id` (what teams write by hand), and Hive
 * Gateway with its JWT option forwarding the payload. Every gateway and every subgraph is a
 * process of its own; each gateway has its own copy of the bench subgraph (subgraph.ts), which
 * reads the caller the way that gateway hands it over. Alternating rounds, ratios to the ceiling
 * of the same run, CPU per request of the gateway and of its subgraph apart.
 */
import { isDeepStrictEqual } from 'node:util';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { systemClock } from '../../src/clock.js';
import { AccessTokenService } from '../../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet } from '../../src/tokens/keys.js';
import { load } from '../lib/load.js';
import { type Child, cpuTime, freePort, startChild, startRedis, waitForHttp, waitForOutput } from '../lib/processes.js';
import { expectedData, ME_EXTENDED, PEER_AUDIENCE, PEER_ISSUER, SUBGRAPH_NAME, subgraphSdl, VIEWER } from './shared.js';
import {
  GATEWAY_NAMES,
  type GatewayFigures,
  type GatewayName,
  type GatewayRun,
  type GatewayScenario,
  type GatewayScenarioFigure,
  type Shape,
  SHAPES,
} from './types.js';

export interface GatewayBenchOptions {
  /** The compiled bench (bench-results/build): its src/main.js and bench/gateway/*.js are run. */
  build: string;
  /** The package root (schema/ is read from there). */
  root: string;
  durationSec: number;
  rounds: number;
  connections: number;
  warmupSec: number;
  logLevel: string;
  /** Extra node arguments for every server (--cpu-prof …). */
  nodeArgs: string[];
  log: (line: string) => void;
}

const TESSERA_ISSUER = 'https://bench.tessera.test';
const TESSERA_AUDIENCE = 'tessera';
const PASSWORD = 'bench correct horse battery';
const SIGNUP = 'mutation($e: String!, $p: String!) { signup(email: $e, password: $p) { accessToken user { id } session { id } } }';
const WARM_UP_RESPONSES = 3_000;
/** Tessera serves its own subgraph in process; this URL is never called. */
const AUTH_ROUTING_URL = 'http://auth.tessera.internal/graphql';

const LABELS: Record<GatewayName, { label: string; identity: string }> = {
  ceiling: { label: '@apollo/gateway, no auth (the ceiling)', identity: 'none (a fixed caller)' },
  jose: { label: '@apollo/gateway + `jose.jwtVerify` per request (EdDSA)', identity: '`x-user-id` header' },
  hive: { label: 'Hive Gateway 2.15, `jwt` option (ES256)', identity: 'the forwarded payload, `extensions.jwt.payload`' },
  tessera: { label: 'Tessera, gateway mode (EdDSA)', identity: '`x-tessera-context`, verified by `tessera/subgraph`' },
};

interface Target {
  name: GatewayName;
  gateway: Child;
  subgraph: Child;
  url: string;
  /** The Authorization header of the `viewer`/`me` scenarios; none for the ceiling. */
  warm: string | null;
  /** Tokens the gateway has never seen, each its own `jti`; null for the ceiling. */
  mint: ((n: number) => Promise<string[]>) | null;
  /** Each scenario's answer, validated once before any load: autocannon then wants exactly it. */
  expect: Partial<Record<Shape, string>>;
}

const post = async (url: string, body: string, headers: Record<string, string> = {}) => {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: response.status, text: await response.text() };
};

/**
 * Starts a compiled bench/gateway script in a process of its own (it prints `listening <port>`
 * once it serves). APOLLO_TELEMETRY_DISABLED: without it @apollo/gateway probes cloud metadata
 * addresses and reports host metrics to Apollo (Tessera turns that off for itself too).
 */
function startScript(options: GatewayBenchOptions, script: string, env: Record<string, string>): Child {
  return startChild(process.execPath, [...options.nodeArgs, join(options.build, 'bench', 'gateway', script)], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', APOLLO_TELEMETRY_DISABLED: 'true', ...env },
  });
}

/** The operations a bench subgraph has served (it prints them on SIGUSR2). */
async function operationsOf(child: Child): Promise<number> {
  const from = child.output().length;
  process.kill(child.pid, 'SIGUSR2');
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const match = /operations (\d+)\n/.exec(child.output().slice(from));
    if (match) return Number(match[1]);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`subgraph ${child.pid} did not report its operations`);
}

function compose(subgraphs: { name: string; url: string; sdl: string }[]): string {
  const result = composeServices(subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
  if (result.errors) throw new Error(`composition failed: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.supergraphSdl;
}

/** The peers' identity provider: an EdDSA key (for jose) and an ES256 key (for Hive), one JWKS served over HTTP. */
async function startPeerIdp(): Promise<{ jwksUrl: string; sign: Record<'EdDSA' | 'ES256', (sub: string, jti: string) => Promise<string>>; close(): Promise<void> }> {
  const keys = await Promise.all(
    (['EdDSA', 'ES256'] as const).map(async (alg) => {
      const pair = await generateKeyPair(alg, { extractable: true });
      const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: `bench-${alg.toLowerCase()}`, alg, use: 'sig' };
      return { alg, pair, jwk };
    }),
  );
  const jwks = JSON.stringify({ keys: keys.map((k) => k.jwk) });
  const server: Server = createServer((req, res) => {
    res.writeHead(req.url === '/jwks.json' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(req.url === '/jwks.json' ? jwks : '{}');
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const signer = (alg: 'EdDSA' | 'ES256') => {
    const key = keys.find((k) => k.alg === alg)!;
    return (sub: string, jti: string) =>
      new SignJWT({ roles: ['user'], scope: '' })
        .setProtectedHeader({ alg, kid: key.jwk.kid!, typ: 'JWT' })
        .setIssuer(PEER_ISSUER)
        .setAudience(PEER_AUDIENCE)
        .setSubject(sub)
        .setJti(jti)
        .setIssuedAt()
        .setExpirationTime('15m')
        .sign(key.pair.privateKey);
  };
  return {
    jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    sign: { EdDSA: signer('EdDSA'), ES256: signer('ES256') },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function mintMany(n: number, one: (i: number) => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const from = out.length;
    out.push(...(await Promise.all(Array.from({ length: Math.min(512, n - from) }, (_, i) => one(from + i)))));
  }
  return out;
}

/** Checks an answer: status 200, exactly the expected `data`, no `errors`. */
function validate(what: string, answer: { status: number; text: string }, data: unknown): string {
  let parsed: { data?: unknown; errors?: unknown };
  try {
    parsed = JSON.parse(answer.text) as typeof parsed;
  } catch {
    throw new Error(`${what}: not JSON (HTTP ${answer.status}): ${answer.text.slice(0, 500)}`);
  }
  if (answer.status !== 200 || parsed.errors !== undefined || !isDeepStrictEqual(parsed.data, data)) {
    throw new Error(`${what}: expected HTTP 200 with ${JSON.stringify({ data })}, got HTTP ${answer.status} ${answer.text.slice(0, 500)}`);
  }
  return answer.text;
}

/** An answer to a request without a token must not carry the caller's data. */
function validateRefused(what: string, answer: { status: number; text: string }, userId: string): void {
  if (answer.text.includes(userId) || !answer.text.includes('"errors"')) {
    throw new Error(`${what}: a request without a token was not refused: HTTP ${answer.status} ${answer.text.slice(0, 500)}`);
  }
}

export async function gatewayBenchmarks(options: GatewayBenchOptions): Promise<GatewayFigures> {
  const { log } = options;
  const redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-gateway-'));
  const idp = await startPeerIdp();
  const children: Child[] = [];
  const start = (script: string, env: Record<string, string>) => {
    const child = startScript(options, script, env);
    children.push(child);
    return child;
  };
  try {
    // Tessera first: its user is the caller of every gateway, so every answer is the same bytes.
    const tesseraPort = await freePort();
    const tesseraUrl = `http://127.0.0.1:${tesseraPort}`;
    const subgraphPorts = { ceiling: await freePort(), jose: await freePort(), hive: await freePort(), tessera: await freePort() };
    const subgraphUrl = (name: GatewayName) => `http://127.0.0.1:${subgraphPorts[name]}/graphql`;
    const tesseraSubgraph = start('subgraph.js', {
      PORT: String(subgraphPorts.tessera),
      IDENTITY: 'tessera',
      TESSERA_JWKS_URL: `${tesseraUrl}/.well-known/jwks.json`,
      TESSERA_ISSUER: TESSERA_ISSUER,
    });
    const authSdl = (
      await Promise.all([readFile(join(options.root, 'schema', 'auth.graphql'), 'utf8'), readFile(join(options.root, 'schema', 'federation', 'auth-entity.graphql'), 'utf8')])
    ).join('\n');
    const tesseraSupergraph = join(dir, 'supergraph-tessera.graphql');
    await writeFile(
      tesseraSupergraph,
      compose([
        { name: 'auth', url: AUTH_ROUTING_URL, sdl: authSdl },
        { name: SUBGRAPH_NAME, url: subgraphUrl('tessera'), sdl: subgraphSdl(false) },
      ]),
    );
    const jwks = keySetJson([await generateSigningJwk('EdDSA')]);
    const keyFile = join(dir, 'signing-keys.json');
    await writeFile(keyFile, jwks, { mode: 0o600 });
    const tessera = startChild(process.execPath, [...options.nodeArgs, join(options.build, 'src', 'main.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(tesseraPort),
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: 'tessera-bench-gateway:',
        SIGNING_KEYS: keyFile,
        AUTH_ISSUER: TESSERA_ISSUER,
        AUTH_AUDIENCE: TESSERA_AUDIENCE,
        SIGNUP_ENABLED: 'true',
        LOG_LEVEL: options.logLevel,
        SUPERGRAPH_FILE: tesseraSupergraph,
      },
    });
    children.push(tessera);
    await waitForOutput(tesseraSubgraph, /^listening \d+$/m);
    await waitForHttp(`${tesseraUrl}/readyz`, tessera);
    const signupAnswer = await post(tesseraUrl, JSON.stringify({ query: SIGNUP, variables: { e: `bench-gateway-${Date.now()}@example.com`, p: PASSWORD } }));
    const signed = (JSON.parse(signupAnswer.text) as { data?: { signup: { accessToken: string; user: { id: string }; session: { id: string } } } }).data?.signup;
    if (!signed) throw new Error(`Tessera signup failed: ${signupAnswer.text}`);
    const userId = signed.user.id;
    const minter = new AccessTokenService({
      keys: await parseKeySet(jwks, keyFile),
      issuer: TESSERA_ISSUER,
      audience: TESSERA_AUDIENCE,
      clientId: 'tessera',
      ttlMs: 15 * 60_000,
      clockToleranceSec: 5,
      clock: systemClock,
      verifiedCacheSize: 0,
    });

    // The peers: each subgraph copy, then its gateway over a supergraph of that copy alone.
    const peerSupergraph = async (name: GatewayName) => {
      const file = join(dir, `supergraph-${name}.graphql`);
      await writeFile(file, compose([{ name: SUBGRAPH_NAME, url: subgraphUrl(name), sdl: subgraphSdl(true) }]));
      return file;
    };
    const peerSubgraphs = {
      ceiling: start('subgraph.js', { PORT: String(subgraphPorts.ceiling), IDENTITY: 'none', BENCH_CALLER_ID: userId }),
      jose: start('subgraph.js', { PORT: String(subgraphPorts.jose), IDENTITY: 'header' }),
      hive: start('subgraph.js', { PORT: String(subgraphPorts.hive), IDENTITY: 'hive' }),
    };
    for (const child of Object.values(peerSubgraphs)) await waitForOutput(child, /^listening \d+$/m);
    const gatewayPorts = { ceiling: await freePort(), jose: await freePort(), hive: await freePort() };
    const peerGateways = {
      ceiling: start('apolloGateway.js', { PORT: String(gatewayPorts.ceiling), AUTH: 'none', SUPERGRAPH_FILE: await peerSupergraph('ceiling') }),
      jose: start('apolloGateway.js', { PORT: String(gatewayPorts.jose), AUTH: 'jose', JWKS_URL: idp.jwksUrl, SUPERGRAPH_FILE: await peerSupergraph('jose') }),
      hive: start('hiveGateway.js', { PORT: String(gatewayPorts.hive), JWKS_URL: idp.jwksUrl, SUPERGRAPH_FILE: await peerSupergraph('hive') }),
    };
    for (const child of Object.values(peerGateways)) await waitForOutput(child, /^listening \d+$/m, 60_000);

    let jti = 0;
    const peerMint = (alg: 'EdDSA' | 'ES256') => (n: number) => mintMany(n, () => idp.sign[alg](userId, `bench-${alg}-${jti++}`));
    const targets: Record<GatewayName, Target> = {
      ceiling: { name: 'ceiling', gateway: peerGateways.ceiling, subgraph: peerSubgraphs.ceiling, url: `http://127.0.0.1:${gatewayPorts.ceiling}`, warm: null, mint: null, expect: {} },
      jose: {
        name: 'jose',
        gateway: peerGateways.jose,
        subgraph: peerSubgraphs.jose,
        url: `http://127.0.0.1:${gatewayPorts.jose}`,
        warm: `Bearer ${await idp.sign.EdDSA(userId, 'bench-eddsa-warm')}`,
        mint: peerMint('EdDSA'),
        expect: {},
      },
      hive: {
        name: 'hive',
        gateway: peerGateways.hive,
        subgraph: peerSubgraphs.hive,
        url: `http://127.0.0.1:${gatewayPorts.hive}`,
        warm: `Bearer ${await idp.sign.ES256(userId, 'bench-es256-warm')}`,
        mint: peerMint('ES256'),
        expect: {},
      },
      tessera: {
        name: 'tessera',
        gateway: tessera,
        subgraph: tesseraSubgraph,
        url: tesseraUrl,
        warm: `Bearer ${signed.accessToken}`,
        mint: (n) => mintMany(n, async () => (await minter.issue({ userId, sessionId: signed.session.id, roles: ['user'] })).token),
        expect: {},
      },
    };
    log(
      `gateway mode: ${GATEWAY_NAMES.map((name) => `${name} gateway pid ${targets[name].gateway.pid} ${targets[name].url}, subgraph pid ${targets[name].subgraph.pid}`).join('; ')}; redis ${redis.url}\n`,
    );

    // Every scenario's answer once, before any load: the right caller's data and no errors.
    for (const target of Object.values(targets)) {
      const auth: Record<string, string> = target.warm ? { authorization: target.warm } : {};
      target.expect.viewer = validate(`${target.name} viewer`, await post(target.url, VIEWER, auth), expectedData('viewer', userId));
      target.expect.me = validate(`${target.name} me`, await post(target.url, ME_EXTENDED, auth), expectedData('me', userId));
      if (target.mint) {
        const [fresh] = await target.mint(1);
        target.expect.viewerFresh = validate(`${target.name} viewer, new token`, await post(target.url, VIEWER, { authorization: `Bearer ${fresh}` }), expectedData('viewer', userId));
        validateRefused(`${target.name} viewer`, await post(target.url, VIEWER), userId);
        validateRefused(`${target.name} me`, await post(target.url, ME_EXTENDED), userId);
      }
    }

    let minted = 0;
    /** Fresh-token scenarios that ran out of tokens (cleared after the warm-up, which only warms). */
    const wrapped = new Set<GatewayScenario>();
    const lastRps: Partial<Record<GatewayScenario, number>> = {};
    const run = async (target: Target, shape: Shape, seconds: number): Promise<GatewayRun> => {
      const key: GatewayScenario = `${target.name}.${shape}`;
      const body = shape === 'me' ? ME_EXTENDED : VIEWER;
      let authorizationByConnection: string[][] | undefined;
      let tokens = 0;
      if (shape === 'viewerFresh') {
        // Enough for the fastest this scenario ran so far, and then some: the machines are noisy.
        const perConnection = Math.ceil((Math.max(lastRps[key] ?? 4_000, 1_500) * seconds * 2) / options.connections) + 100;
        const list = await target.mint!(perConnection * options.connections);
        tokens = list.length;
        minted += tokens;
        authorizationByConnection = Array.from({ length: options.connections }, (_, i) =>
          list.slice(i * perConnection, (i + 1) * perConnection).map((token) => `Bearer ${token}`),
        );
      }
      const operationsBefore = await operationsOf(target.subgraph);
      const subgraphBefore = await cpuTime(target.subgraph.pid);
      let firstUnexpected: string | null = null;
      const expectBody = target.expect[shape]!;
      const result = await load({
        url: target.url,
        serverPid: target.gateway.pid,
        connections: options.connections,
        durationSec: seconds,
        body,
        expectBody,
        onResponse: (status, text) => {
          if (firstUnexpected === null && (status !== 200 || text !== expectBody)) firstUnexpected = `HTTP ${status} ${text.slice(0, 300)}`;
        },
        ...(target.warm && shape !== 'viewerFresh' ? { headers: { authorization: target.warm } } : {}),
        ...(authorizationByConnection ? { authorizationByConnection } : {}),
      });
      const subgraphAfter = await cpuTime(target.subgraph.pid);
      const operations = (await operationsOf(target.subgraph)) - operationsBefore;
      const subgraphCallsPerRequest = operations / result.responses;
      // Past its list a connection starts over: tokens seen before, so no longer a fresh-token run.
      if (tokens && result.responses > tokens) wrapped.add(key);
      if (result.failures > 0) {
        throw new Error(
          `${key}: ${result.failures} of ${result.responses} answers failed (connection errors, timeouts, non-2xx, or not the validated body)` +
            `${firstUnexpected ? `; the first unexpected answer: ${firstUnexpected}` : ''}`,
        );
      }
      // One call per answer; the requests still in flight when autocannon stops (one per
      // connection at most) reach the subgraph without being counted as answers, and so may
      // those of the run before, still in flight when this one's count began (on a loaded
      // machine a 1 s warm-up answered 80 and the subgraph counted 93).
      const extra = operations - result.responses;
      if (extra < 0 || extra > 2 * options.connections + 0.02 * result.responses) {
        throw new Error(`${key}: the subgraph served ${operations} operations for ${result.responses} answers, not one per request`);
      }
      lastRps[key] = Math.max(result.rps, lastRps[key] ?? 0);
      return {
        ...result,
        subgraphCallsPerRequest,
        subgraphCpuUs: subgraphBefore && subgraphAfter ? ((subgraphAfter.totalMs - subgraphBefore.totalMs) * 1000) / result.responses : null,
      };
    };

    const groups: [GatewayName, Shape][][] = [
      [['ceiling', 'viewer'], ['jose', 'viewer'], ['hive', 'viewer'], ['tessera', 'viewer'], ['jose', 'viewerFresh'], ['hive', 'viewerFresh'], ['tessera', 'viewerFresh']],
      [['ceiling', 'me'], ['jose', 'me'], ['hive', 'me'], ['tessera', 'me']],
    ];
    // A new @apollo/gateway process needs a few thousand requests before V8 has compiled its hot
    // paths (its first 500 cost it about three times the CPU of later ones here): each scenario
    // warms for WARM_UP_RESPONSES answers, in runs of warmupSec, at most five.
    log(`gateway mode warm-up (${options.warmupSec} s runs, until ${WARM_UP_RESPONSES} answers per scenario) …\n`);
    for (const [name, shape] of groups.flat()) {
      let answers = 0;
      for (let i = 0; i < 5 && answers < WARM_UP_RESPONSES; i++) answers += (await run(targets[name], shape, options.warmupSec)).responses;
    }
    wrapped.clear();

    const collected: Partial<Record<GatewayScenario, GatewayRun[]>> = {};
    for (let round = 0; round < options.rounds; round++) {
      for (const group of groups) {
        for (const [name, shape] of round % 2 === 0 ? group : [...group].reverse()) {
          const result = await run(targets[name], shape, options.durationSec);
          (collected[`${name}.${shape}`] ??= []).push(result);
          const us = (v: number | null) => (v === null ? '?' : v.toFixed(0));
          log(
            `  round ${round + 1} ${`${name}.${shape}`.padEnd(20)} ${Math.round(result.rps).toString().padStart(7)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms` +
              `  gateway CPU ${us(result.cpuUs)} us/req (main thread ${us(result.mainThreadUs)}), subgraph ${us(result.subgraphCpuUs)}, client ${result.clientCpuUs.toFixed(0)}\n`,
          );
        }
      }
    }
    return summarize(collected, { minted, wrapped: [...wrapped] });
  } finally {
    // Gateways before subgraphs (each subgraph was started before its gateway): a gateway drains
    // its last requests while its subgraph still answers them.
    for (const child of [...children].reverse()) await child.stop();
    for (const child of children) {
      const text = child.output().trim();
      if (/error|fatal/i.test(text)) log(`process ${child.pid} said:\n${text.slice(-2000)}\n`);
    }
    await idp.close();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
/** The middle value (the mean of the two middle ones for an even count): one disturbed round moves it less than the mean. */
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const medianOrNull = (values: (number | null)[]) => (values.every((v) => v !== null) ? median(values as number[]) : null);
/** The ceiling's scenario a gateway's is measured against. */
const ceilingOf = (shape: Shape): GatewayScenario => (shape === 'me' ? 'ceiling.me' : 'ceiling.viewer');

function summarize(collected: Partial<Record<GatewayScenario, GatewayRun[]>>, freshTokens: GatewayFigures['freshTokens']): GatewayFigures {
  const scenarios: GatewayFigures['scenarios'] = {};
  for (const [key, runs] of Object.entries(collected) as [GatewayScenario, GatewayRun[]][]) {
    const [gateway, shape] = key.split('.') as [GatewayName, Shape];
    const figure: GatewayScenarioFigure = {
      gateway,
      shape,
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      gatewayCpuUs: medianOrNull(runs.map((r) => r.cpuUs)),
      gatewayMainThreadUs: medianOrNull(runs.map((r) => r.mainThreadUs)),
      subgraphCpuUs: medianOrNull(runs.map((r) => r.subgraphCpuUs)),
      subgraphCallsPerRequest: mean(runs.map((r) => r.subgraphCallsPerRequest)),
      clientCpuUs: median(runs.map((r) => r.clientCpuUs)),
      failures: runs.reduce((a, r) => a + r.failures, 0),
      runs,
    };
    scenarios[key] = figure;
  }
  const ratiosOf = (rps: (key: GatewayScenario) => number | undefined) => {
    const out: Partial<Record<GatewayScenario, number>> = {};
    for (const name of GATEWAY_NAMES) {
      for (const shape of SHAPES) {
        const key: GatewayScenario = `${name}.${shape}`;
        const own = rps(key);
        const ceiling = rps(ceilingOf(shape));
        if (own !== undefined && ceiling !== undefined && key !== ceilingOf(shape)) out[key] = own / ceiling;
      }
    }
    return out;
  };
  const rounds = Math.max(0, ...Object.values(collected).map((runs) => runs.length));
  const byRound = Array.from({ length: rounds }, (_, i) => (key: GatewayScenario) => collected[key]?.[i]?.rps);
  const tesseraViewer = collected['tessera.viewer'];
  const tesseraMe = collected['tessera.me'];
  const subgraphCost: GatewayFigures['subgraphCost'] = {};
  for (const shape of SHAPES) {
    const tesseraUs = scenarios[`tessera.${shape}`]?.subgraphCpuUs;
    const headerUs = scenarios[`jose.${shape}`]?.subgraphCpuUs;
    if (tesseraUs != null && headerUs != null) subgraphCost[shape] = { tesseraUs, headerUs, ratio: tesseraUs / headerUs };
  }
  return {
    gateways: LABELS,
    scenarios,
    ratios: ratiosOf((key) => scenarios[key]?.rps),
    ratiosByRound: byRound.map(ratiosOf),
    meOverViewer:
      tesseraViewer && tesseraMe
        ? { ratio: median(tesseraMe.map((r) => r.rps)) / median(tesseraViewer.map((r) => r.rps)), byRound: tesseraMe.map((r, i) => r.rps / tesseraViewer[i]!.rps) }
        : null,
    subgraphCost,
    freshTokens,
  };
}
