/**
 * `npm run bench`: Tessera against an Apollo Server 5 baseline (same `me` shape, no auth), side
 * by side in one run, each server in its own process, Tessera on a redis-server of the bench's
 * own. Prints tables and writes bench-results/latest.json. The ratios are the result, not the
 * absolute numbers: the machines this runs on are shared and noisy.
 *
 *   npm run bench                    everything (about four minutes)
 *   npm run bench -- --quick         short runs, one round (a smoke test of the bench itself)
 *   npm run bench -- --memory        only the session memory step
 *   npm run bench -- --no-memory     everything but the memory step
 *   npm run bench -- --profile       also writes each server's CPU profile to bench-results/profiles/
 *   --duration=<s> --rounds=<n>      seconds per HTTP run (default 6), alternating rounds (default 2)
 *   --only=<scenario,…>              only these HTTP scenarios (and the Redis command counts)
 *   npm run bench -- --gateway       only the gateway-mode scenarios (bench/gateway/bench.ts)
 *   npm run bench -- --no-gateway    everything but the gateway-mode scenarios
 *   npm run bench -- --realtime      only the realtime scenarios (bench/realtime/bench.ts)
 *   npm run bench -- --no-realtime   everything but the realtime scenarios
 *   npm run bench -- --help          the options and the scenario names (lib/args.ts)
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { systemClock } from '../src/clock.js';
import { AccessTokenService } from '../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet } from '../src/tokens/keys.js';
import type { SigningAlgorithm } from '../src/tokens/types.js';
import { BENCH_USAGE, parseBenchArgs } from './lib/args.js';
import { load, type LoadResult } from './lib/load.js';
import { APP_USER_AGENT, BENCH_USER_AGENT, measureSessionMemory, type MemoryFigure } from './lib/memory.js';
import { verifyFigures, type VerifyFigures } from './lib/micro.js';
import { type CapturedCommands, RedisMonitor } from './lib/monitor.js';
import { type Child, freePort, startChild, startRedis, waitForHttp, waitForOutput } from './lib/processes.js';
import { printReport } from './lib/report.js';
import { gatewayBenchmarks } from './gateway/bench.js';
import { type LoginFigures, loginBenchmarks } from './login/bench.js';
import { printRealtime, type RealtimeFigures, realtimeBenchmarks } from './realtime/bench.js';
import type { GatewayFigures } from './gateway/types.js';
import type { HttpFigures, PerOperation, Results, ScenarioFigure, ScenarioName } from './lib/types.js';

/** bench-results/build/bench/run.js → bench-results/build, then the package root. */
const BUILD = resolve(import.meta.dirname, '..');
const ROOT = resolve(BUILD, '..', '..');
const RESULTS = join(ROOT, 'bench-results');

const argv = process.argv.slice(2);
const parsed = parseBenchArgs(argv);
if (parsed.kind === 'help') {
  process.stdout.write(BENCH_USAGE);
  process.exit(0);
}
if (parsed.kind === 'error') {
  process.stderr.write(`bench: ${parsed.message}\n`);
  process.exit(2);
}
const { options } = parsed;
const quick = options.quick;
const only: ReadonlySet<string> | null = options.only;
const settings = {
  durationSec: options.durationSec ?? (quick ? 2 : 6),
  rounds: options.rounds ?? (quick ? 1 : 2),
  connections: 10,
  refreshInFlight: 50,
  warmupSec: quick ? 1 : 2,
  microTimeMs: quick ? 300 : 1_000,
  monitorOps: { authenticated: 200, refresh: 50, login: 10 },
  logLevel: 'warn',
};

const ISSUER = 'https://bench.tessera.test';
const AUDIENCE = 'tessera';
const PASSWORD = 'bench correct horse battery';
const ME_ID = JSON.stringify({ query: '{ me { id } }' });
const ME_FULL = JSON.stringify({ query: '{ me { id email roles } }' });
const REFRESH = 'mutation($t: String) { refreshToken(refreshToken: $t) { accessToken refreshToken expiresIn } }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id } session { id } } }';
const SIGNUP = 'mutation($e: String!, $p: String!) { signup(email: $e, password: $p) { accessToken refreshToken user { id } session { id } } }';

interface Signed {
  accessToken: string;
  refreshToken: string;
  user: { id: string };
  session: { id: string };
}

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return response.text();
}

async function graphql<T>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const answer = JSON.parse(await post(url, JSON.stringify({ query, variables }))) as { data?: T; errors?: unknown[] };
  if (answer.errors?.length || !answer.data) throw new Error(`GraphQL error: ${JSON.stringify(answer.errors)}`);
  return answer.data;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function main(): Promise<void> {
  await mkdir(RESULTS, { recursive: true });
  // src/graphql/schema.js reads the SDL two levels up, as from dist/.
  if (!existsSync(join(BUILD, 'schema'))) await symlink(join(ROOT, 'schema'), join(BUILD, 'schema'));
  // src/mail/templates.ts reads the built-in mail templates beside itself, as dist/mail/templates.
  if (!existsSync(join(BUILD, 'src', 'mail', 'templates'))) await symlink(join(ROOT, 'src', 'mail', 'templates'), join(BUILD, 'src', 'mail', 'templates'));
  const started = Date.now();
  const loadavgAtStart = loadavg();
  const onlyMemory = options.memoryOnly;
  const onlyGateway = options.gatewayOnly;
  const onlyLogin = options.loginOnly;
  const onlyRealtime = options.realtimeOnly;
  let realtime: RealtimeFigures | null = null;
  let http: HttpFigures | null = null;
  let gateway: GatewayFigures | null = null;
  let redisCommands: Record<string, PerOperation> | null = null;
  let verify: VerifyFigures[] | null = null;
  let memory: MemoryFigure[] | null = null;
  let login: LoginFigures | null = null;
  const excluding = onlyMemory || onlyGateway || onlyLogin || onlyRealtime;
  if (!excluding) ({ http, redisCommands } = await serverBenchmarks());
  if (onlyLogin || (!onlyMemory && !onlyGateway && !onlyRealtime && !only && !options.noLogin)) login = await loginStep();
  if (onlyRealtime || (!onlyMemory && !onlyGateway && !onlyLogin && !only && !options.noRealtime)) {
    const keyDir = await mkdtemp(join(tmpdir(), 'tessera-bench-realtime-'));
    try {
      realtime = await realtimeBenchmarks({ build: BUILD, keyDir, quick, log: (line) => process.stdout.write(line) });
    } finally {
      await rm(keyDir, { recursive: true, force: true });
    }
  }
  if (onlyGateway || (!onlyMemory && !only && !onlyLogin && !onlyRealtime && !options.noGateway)) {
    const nodeArgs = options.profile ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${join(RESULTS, 'profiles')}`] : [];
    gateway = await gatewayBenchmarks({ ...settings, build: BUILD, root: ROOT, nodeArgs, log: (line) => process.stdout.write(line) });
  }
  if (!excluding && !only) {
    process.stdout.write('access-token verify micro-benchmark (tinybench) …\n');
    verify = [await verifyFigures('EdDSA', settings.microTimeMs), await verifyFigures('ES256', settings.microTimeMs)];
  }
  if (!options.noMemory && !only && !onlyGateway && !onlyLogin && !onlyRealtime) {
    process.stdout.write('session memory (100k sessions per line) …\n');
    const roomy = { redisConfig: { 'hash-max-listpack-value': '256' } };
    memory = [
      await measureSessionMemory(10_000, 10),
      await measureSessionMemory(100_000, 1),
      await measureSessionMemory(10_000, 10, roomy),
      await measureSessionMemory(100_000, 1, roomy),
      // A client whose User-Agent the stored dictionary of browser fragments does not help.
      await measureSessionMemory(10_000, 10, { userAgent: APP_USER_AGENT }),
    ];
  }
  const results: Results = {
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    environment: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      commit: gitCommit(),
      startedAt: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
      loadavgAtStart,
      loadavgAtEnd: loadavg(),
    },
    settings,
    http,
    redisCommands,
    verify,
    memory,
    gateway,
    login,
    realtime,
  };
  const file = join(RESULTS, 'latest.json');
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  printReport(results);
  if (realtime) printRealtime(realtime, (line) => process.stdout.write(line));
  process.stdout.write(`\nwritten: ${file} (User-Agent kept by the memory step: ${BENCH_USER_AGENT.length} bytes)\n`);
}

function gitCommit(): string | null {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${commit}+changes` : commit;
  } catch {
    return null;
  }
}

/** Signs up n users (four at a time), returns their emails. */
async function signUpUsers(url: string, n: number): Promise<string[]> {
  const emails = Array.from({ length: n }, (_, i) => `bench-user-${i}-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`);
  for (let i = 0; i < n; i += 4) {
    await Promise.all(emails.slice(i, i + 4).map((e) => graphql(url, SIGNUP, { e, p: PASSWORD })));
  }
  return emails;
}

// ---------------------------------------------------------------------------------------------

interface Gateway {
  child: Child;
  url: string;
  email: string;
  signed: Signed;
  /** Access tokens for the signed-up session, signed with the gateway's key, each its own jti. */
  mint(n: number): Promise<string[]>;
  expectMeId: string;
}

/** `node main.js` of the compiled gateway, as production runs it, on the bench's Redis; metrics off unless `metricsPort`. */
async function startGateway(alg: SigningAlgorithm, redisUrl: string, keyDir: string, nodeArgs: string[], metricsPort = 0, name = ''): Promise<Gateway> {
  const jwks = keySetJson([await generateSigningJwk(alg)]);
  const label = `${alg.toLowerCase()}${name ? `-${name}` : ''}`;
  const keyFile = join(keyDir, `signing-keys-${label}.json`);
  await writeFile(keyFile, jwks, { mode: 0o600 });
  const port = await freePort();
  const child = startChild(process.execPath, [...nodeArgs, join(BUILD, 'src', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: `tessera-bench-${label}:`,
      METRICS_PORT: String(metricsPort),
      SIGNING_KEYS: keyFile,
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
      SIGNUP_ENABLED: 'true',
      LOG_LEVEL: settings.logLevel,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/readyz`, child);
  if (metricsPort && !(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).includes('tessera_access_tokens_verified_total')) {
    throw new Error('the gateway with metrics on serves no tessera metrics');
  }
  const email = `bench-${label}-${Date.now()}@example.com`;
  const signed = (await graphql<{ signup: Signed }>(url, SIGNUP, { e: email, p: PASSWORD })).signup;
  const minter = new AccessTokenService({
    keys: await parseKeySet(jwks, keyFile),
    issuer: ISSUER,
    audience: AUDIENCE,
    clientId: 'tessera',
    ttlMs: 15 * 60_000,
    clockToleranceSec: 5,
    clock: systemClock,
    verifiedCacheSize: 0,
  });
  const mint = async (n: number): Promise<string[]> => {
    const out: string[] = [];
    while (out.length < n) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(512, n - out.length) }, () =>
          minter.issue({ userId: signed.user.id, sessionId: signed.session.id, roles: ['user'] }),
        ),
      );
      for (const issued of batch) out.push(issued.token);
    }
    return out;
  };
  const expectMeId = await post(url, ME_ID, bearer(signed.accessToken));
  if (!expectMeId.includes(`"me":{"id":"${signed.user.id}"}`)) throw new Error(`unexpected answer: ${expectMeId}`);
  return { child, url, email, signed, mint, expectMeId };
}

/** Logins through a gateway of its own (on a Redis of its own) against raw argon2id, and refreshes (bench/login/bench.ts). */
async function loginStep(): Promise<LoginFigures> {
  const redis = await startRedis();
  const keyDir = await mkdtemp(join(tmpdir(), 'tessera-bench-keys-'));
  let gateway: Gateway | null = null;
  try {
    gateway = await startGateway('EdDSA', redis.url, keyDir, [], 0, 'login');
    const { url, child } = gateway;
    return await loginBenchmarks({
      build: BUILD,
      url,
      serverPid: child.pid,
      signUp: (n) => signUpUsers(url, n),
      password: PASSWORD,
      durationSec: settings.durationSec,
      rounds: settings.rounds,
      warmupSec: settings.warmupSec,
      connections: settings.connections,
      log: (line) => process.stdout.write(line),
    });
  } finally {
    await gateway?.child.stop();
    await redis.stop();
    await rm(keyDir, { recursive: true, force: true });
  }
}

async function serverBenchmarks(): Promise<{ http: HttpFigures; redisCommands: Record<string, PerOperation> }> {
  const redis = await startRedis();
  const keyDir = await mkdtemp(join(tmpdir(), 'tessera-bench-keys-'));
  const children: Child[] = [];
  try {
    const profileDir = join(RESULTS, 'profiles');
    const nodeArgs = options.profile ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${profileDir}`] : [];
    const basePort = await freePort();
    const baseline = startChild(process.execPath, [...nodeArgs, join(BUILD, 'bench', 'baseline.js')], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PORT: String(basePort) },
    });
    children.push(baseline);
    const tessera = await startGateway('EdDSA', redis.url, keyDir, nodeArgs);
    children.push(tessera.child);
    const wantEs256 = only === null || only.has('coldMeIdEs256');
    const es256 = wantEs256 ? await startGateway('ES256', redis.url, keyDir, nodeArgs) : null;
    if (es256) children.push(es256.child);
    // What Prometheus metrics cost: two gateways started alike and used for nothing else (the same
    // history, so the same JIT state), metrics off and on.
    const wantPair = only === null || only.has('metricsOffMeId') || only.has('metricsOnMeId');
    const pair = wantPair
      ? [await startGateway('EdDSA', redis.url, keyDir, nodeArgs, 0, 'metrics-off'), await startGateway('EdDSA', redis.url, keyDir, nodeArgs, await freePort(), 'metrics-on')]
      : null;
    if (pair) children.push(pair[0]!.child, pair[1]!.child);
    await waitForOutput(baseline, /^listening \d+$/m);
    const base = `http://127.0.0.1:${basePort}`;
    process.stdout.write(
      `baseline pid ${baseline.pid} ${base}; Tessera (EdDSA) pid ${tessera.child.pid} ${tessera.url}` +
        `${es256 ? `; Tessera (ES256) pid ${es256.child.pid} ${es256.url}` : ''}; redis ${redis.url}\n`,
    );

    const warmToken = tessera.signed.accessToken;
    const expectMeFull = await post(tessera.url, ME_FULL, bearer(warmToken));
    const expectBaseId = await post(base, ME_ID);
    const expectBaseFull = await post(base, ME_FULL);
    for (const [name, answer] of Object.entries({ expectMeFull, expectBaseId, expectBaseFull })) {
      if (!answer.includes('"me":{"id"')) throw new Error(`${name}: unexpected answer ${answer}`);
    }

    // Each refresh chain is a session of its own user, as 50 refreshes in flight are in real
    // traffic (one user would soon pass MAX_SESSIONS_PER_USER and end the warm token's session).
    const chainUsers = await signUpUsers(tessera.url, settings.refreshInFlight + 1);
    let coldMinted = 0;
    let coldWrapped = false;
    /** `me { id }` with a token the gateway has not seen: minted beforehand, one per request. */
    const coldRun = async (gateway: Gateway, seconds: number, expectedRps: number): Promise<LoadResult> => {
      const perConnection = Math.ceil((expectedRps * seconds * 1.5) / settings.connections) + 100;
      const tokens = await gateway.mint(perConnection * settings.connections);
      coldMinted += tokens.length;
      const result = await load({
        url: gateway.url,
        serverPid: gateway.child.pid,
        connections: settings.connections,
        durationSec: seconds,
        body: ME_ID,
        expectBody: gateway.expectMeId,
        authorizationByConnection: Array.from({ length: settings.connections }, (_, i) =>
          tokens.slice(i * perConnection, (i + 1) * perConnection).map((token) => `Bearer ${token}`),
        ),
      });
      // Past its list a connection starts over; with more tokens than the cache holds, still never a hit.
      if (result.responses > tokens.length) coldWrapped = true;
      return result;
    };

    interface Chain {
      token: string;
    }
    /** Sessions to refresh, one per connection: each connection presents its chain's latest refresh token. */
    const newChains = async (n: number): Promise<Chain[]> => {
      const chains: Chain[] = [];
      for (let i = 0; i < n; i += 4) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(4, n - i) }, (_, j) =>
            graphql<{ login: Signed }>(tessera.url, LOGIN, { e: chainUsers[(i + j) % chainUsers.length], p: PASSWORD }),
          ),
        );
        for (const { login } of batch) chains.push({ token: login.refreshToken });
      }
      return chains;
    };
    const refreshRun = async (connections: number, seconds: number): Promise<LoadResult> => {
      const chains = await newChains(connections);
      return load({
        url: tessera.url,
        serverPid: tessera.child.pid,
        connections,
        durationSec: seconds,
        body: '',
        setupRequest: (request, context) => {
          let chain = context.chain as Chain | undefined;
          if (!chain) {
            chain = chains.pop();
            if (!chain) throw new Error('more connections than refresh chains');
            context.chain = chain;
          }
          request.body = JSON.stringify({ query: REFRESH, variables: { t: chain.token } });
          return request;
        },
        onResponse: (_status, body, context) => {
          const next = /"refreshToken":"([^"]+)"/.exec(body)?.[1];
          if (next) (context.chain as Chain).token = next;
        },
      });
    };

    const meRun = (pid: number, url: string, body: string, expectBody: string, headers: Record<string, string>, connections: number, seconds: number) =>
      load({ url, serverPid: pid, connections, durationSec: seconds, body, expectBody, headers });

    const lastRps: Partial<Record<ScenarioName, number>> = {};
    const runs: Record<ScenarioName, (seconds: number) => Promise<LoadResult>> = {
      baselineMeId: (s) => meRun(baseline.pid, base, ME_ID, expectBaseId, {}, settings.connections, s),
      warmMeId: (s) => meRun(tessera.child.pid, tessera.url, ME_ID, tessera.expectMeId, bearer(warmToken), settings.connections, s),
      metricsOffMeId: (s) => meRun(pair![0]!.child.pid, pair![0]!.url, ME_ID, pair![0]!.expectMeId, bearer(pair![0]!.signed.accessToken), settings.connections, s),
      metricsOnMeId: (s) => meRun(pair![1]!.child.pid, pair![1]!.url, ME_ID, pair![1]!.expectMeId, bearer(pair![1]!.signed.accessToken), settings.connections, s),
      coldMeId: (s) => coldRun(tessera, s, lastRps.coldMeId ?? 8_000),
      coldMeIdEs256: (s) => coldRun(es256!, s, lastRps.coldMeIdEs256 ?? 8_000),
      baselineMeFull: (s) => meRun(baseline.pid, base, ME_FULL, expectBaseFull, {}, settings.connections, s),
      warmMeFull: (s) => meRun(tessera.child.pid, tessera.url, ME_FULL, expectMeFull, bearer(warmToken), settings.connections, s),
      baselineMeIdSequential: (s) => meRun(baseline.pid, base, ME_ID, expectBaseId, {}, 1, s),
      refreshSequential: (s) => refreshRun(1, s),
      refreshInFlight: (s) => refreshRun(settings.refreshInFlight, s),
    };
    const wanted = (name: ScenarioName) => only === null || only.has(name);

    process.stdout.write(`warm-up (${settings.warmupSec} s per scenario) …\n`);
    const warmUps: ScenarioName[] = ['baselineMeId', 'warmMeId', 'metricsOffMeId', 'metricsOnMeId', 'coldMeId', 'coldMeIdEs256', 'baselineMeFull', 'warmMeFull', 'refreshInFlight'];
    for (const name of warmUps.filter(wanted)) lastRps[name] = (await runs[name](settings.warmupSec)).rps;

    // Alternation: the baseline, then Tessera, in each group; every other round in reverse order.
    const groups: ScenarioName[][] = [
      ['baselineMeId', 'warmMeId', 'coldMeId', 'coldMeIdEs256'],
      ['metricsOffMeId', 'metricsOnMeId'],
      ['baselineMeFull', 'warmMeFull'],
      ['baselineMeIdSequential', 'refreshSequential', 'refreshInFlight'],
    ];
    const collected = Object.fromEntries(Object.keys(runs).map((name) => [name, [] as LoadResult[]])) as Record<ScenarioName, LoadResult[]>;
    for (let round = 0; round < settings.rounds; round++) {
      for (const group of groups) {
        for (const name of (round % 2 === 0 ? group : [...group].reverse()).filter(wanted)) {
          const result = await runs[name](settings.durationSec);
          lastRps[name] = result.rps;
          collected[name].push(result);
          const cpu = result.cpuUs === null ? '' : `  server CPU ${result.cpuUs.toFixed(0)} us/req (main thread ${result.mainThreadUs!.toFixed(0)}), client ${result.clientCpuUs.toFixed(0)}`;
          process.stdout.write(
            `  round ${round + 1} ${name.padEnd(24)} ${Math.round(result.rps).toString().padStart(7)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms${cpu}${result.failures ? `  FAILURES ${result.failures}` : ''}\n`,
          );
        }
      }
    }
    const http = summarize(collected, { minted: coldMinted, wrapped: coldWrapped });
    const redisCommands = await countCommands(redis.url, redis.port, tessera, newChains);
    return { http, redisCommands };
  } finally {
    for (const child of children) await child.stop();
    for (const child of children) {
      const text = child.output().trim();
      if (/error|fatal/i.test(text)) process.stdout.write(`process ${child.pid} said:\n${text.slice(-2000)}\n`);
    }
    await redis.stop();
    await rm(keyDir, { recursive: true, force: true });
  }
}

/**
 * Redis commands per operation, with MONITOR on the gateway's Redis, in steady state: scripts
 * loaded, and the session confirmed once by the store since the revocation feed became healthy.
 */
async function countCommands(
  redisUrl: string,
  redisPort: number,
  tessera: Gateway,
  newChains: (n: number) => Promise<{ token: string }[]>,
): Promise<Record<string, PerOperation>> {
  const inspector = new Redis(redisUrl);
  const monitor = await RedisMonitor.open(redisPort);
  try {
    const ignore = await nonGatewayClients(inspector);
    const n = settings.monitorOps;
    const perOp = (captured: CapturedCommands, operations: number): PerOperation => ({
      operations,
      commandsPerOperation: captured.commands / operations,
      scriptInternalPerOperation: captured.scriptInternal / operations,
      byCommandPerOperation: Object.fromEntries(Object.entries(captured.byCommand).map(([k, v]) => [k, v / operations])),
      samples: captured.samples,
    });
    const times = async (count: number, step: (i: number) => Promise<unknown>) => {
      for (let i = 0; i < count; i++) await step(i);
    };
    const token = tessera.signed.accessToken;
    const out: Record<string, PerOperation> = {};
    await post(tessera.url, ME_ID, bearer(token));
    out['me { id }, token seen before'] = perOp(await monitor.capture(() => times(n.authenticated, () => post(tessera.url, ME_ID, bearer(token))), ignore), n.authenticated);
    const fresh = await tessera.mint(n.authenticated);
    out['me { id }, new token'] = perOp(await monitor.capture(() => times(n.authenticated, (i) => post(tessera.url, ME_ID, bearer(fresh[i]!))), ignore), n.authenticated);
    out['me { id email roles }'] = perOp(await monitor.capture(() => times(n.authenticated, () => post(tessera.url, ME_FULL, bearer(token))), ignore), n.authenticated);
    let [chain] = await newChains(1);
    const refresh = async () => {
      const data = await graphql<{ refreshToken: { refreshToken: string } }>(tessera.url, REFRESH, { t: chain!.token });
      chain = { token: data.refreshToken.refreshToken };
    };
    await refresh();
    out['refreshToken'] = perOp(await monitor.capture(() => times(n.refresh, refresh), ignore), n.refresh);
    // A user of its own, so the count is of a user with few sessions (a login checks each live one).
    const [loginUser] = await signUpUsers(tessera.url, 1);
    const login = () => graphql(tessera.url, LOGIN, { e: loginUser, p: PASSWORD });
    await login();
    out['login'] = perOp(await monitor.capture(() => times(n.login, login), ignore), n.login);
    return out;
  } finally {
    monitor.close();
    inspector.disconnect();
  }
}

/** Addresses of connections that are not a gateway's command connection: subscribers (heartbeat PINGs), monitors, this inspector. */
async function nonGatewayClients(inspector: Redis): Promise<Set<string>> {
  const list = (await inspector.call('CLIENT', 'LIST')) as string;
  const ownId = String(await inspector.call('CLIENT', 'ID'));
  const ignore = new Set<string>();
  for (const line of list.split('\n')) {
    const fields = Object.fromEntries(line.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
    if (!fields.addr) continue;
    const subscribed = Number(fields.sub ?? 0) + Number(fields.psub ?? 0) > 0;
    const monitoring = (fields.flags ?? '').includes('O');
    if (subscribed || monitoring || fields.id === ownId) ignore.add(fields.addr);
  }
  return ignore;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function summarize(collected: Record<ScenarioName, LoadResult[]>, coldTokens: HttpFigures['coldTokens']): HttpFigures {
  const scenarios: Partial<Record<ScenarioName, ScenarioFigure>> = {};
  for (const [name, list] of Object.entries(collected) as [ScenarioName, LoadResult[]][]) {
    if (list.length === 0) continue;
    const cpu = list.every((r) => r.cpuUs !== null);
    scenarios[name] = {
      rps: mean(list.map((r) => r.rps)),
      p50: mean(list.map((r) => r.p50)),
      p99: mean(list.map((r) => r.p99)),
      cpuUs: cpu ? mean(list.map((r) => r.cpuUs!)) : null,
      mainThreadUs: cpu ? mean(list.map((r) => r.mainThreadUs!)) : null,
      clientCpuUs: mean(list.map((r) => r.clientCpuUs)),
      failures: list.reduce((a, r) => a + r.failures, 0),
      runs: list,
    };
  }
  type Point = Pick<LoadResult, 'rps' | 'p50' | 'p99'>;
  const ratiosOf = (given: Partial<Record<ScenarioName, Point>>): Record<string, number> => {
    const missing: Point = { rps: NaN, p50: NaN, p99: NaN };
    const s = (name: ScenarioName) => given[name] ?? missing;
    const versus = (name: ScenarioName, baseline: ScenarioName, prefix: string) => ({
      [prefix]: s(name).rps / s(baseline).rps,
      [`${prefix}P50`]: s(name).p50 / s(baseline).p50,
      [`${prefix}P99`]: s(name).p99 / s(baseline).p99,
    });
    return {
      ...versus('warmMeId', 'baselineMeId', 'warmMeId'),
      // Metrics on over metrics off, both Tessera: what the metrics cost.
      ...versus('metricsOnMeId', 'metricsOffMeId', 'metricsOnOverOff'),
      ...versus('coldMeId', 'baselineMeId', 'coldMeId'),
      ...versus('coldMeIdEs256', 'baselineMeId', 'coldMeIdEs256'),
      ...versus('warmMeFull', 'baselineMeFull', 'warmMeFull'),
      ...versus('refreshSequential', 'baselineMeIdSequential', 'refreshSequential'),
      refreshInFlight: s('refreshInFlight').rps / s('baselineMeId').rps,
    };
  };
  const rounds = Math.max(...Object.values(collected).map((list) => list.length));
  const ratiosByRound = Array.from({ length: rounds }, (_, i) => {
    const point: Partial<Record<ScenarioName, Point>> = {};
    for (const [name, list] of Object.entries(collected) as [ScenarioName, LoadResult[]][]) if (list[i]) point[name] = list[i];
    return ratiosOf(point);
  });
  return { scenarios, ratios: ratiosOf(scenarios), ratiosByRound, coldTokens };
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
