import { cpus } from 'node:os';
import { join } from 'node:path';
import { load, type LoadResult } from '../lib/load.js';
import { type Child, startChild } from '../lib/processes.js';

/**
 * Password logins through the gateway against the physical limit of one: raw argon2id verifies
 * at the same parameters, same library, same cores, same concurrency, in a process of its own,
 * run alternately with the gateway (never at the same time). And refreshes, for the per-core
 * figures that Keycloak publishes for sizing (15 password logins/s and 120 refreshes/s per vCPU).
 */

export interface LoginBenchOptions {
  /** bench-results/build: its bench/login/argon2Raw.js is run. */
  build: string;
  url: string;
  serverPid: number;
  /** Signs up n users with `password`, returns their emails. */
  signUp: (n: number) => Promise<string[]>;
  password: string;
  durationSec: number;
  rounds: number;
  warmupSec: number;
  /** Logins (and verifies) in flight. */
  connections: number;
  log: (line: string) => void;
}

export interface RawArgon2Run {
  verifiesPerSec: number;
  /** The process's CPU time per verify, microseconds (all threads). */
  cpuUs: number;
}

export interface LoginFigures {
  connections: number;
  cpus: number;
  login: { rps: number; p50: number; p99: number; cpuUs: number | null; failures: number; runs: LoadResult[] };
  refresh: { rps: number; p50: number; p99: number; cpuUs: number | null; failures: number; runs: LoadResult[] };
  argon2: { verifiesPerSec: number; cpuUs: number; runs: RawArgon2Run[] };
  /** Gateway logins/s over raw verifies/s, of the means (target >= 0.8). */
  loginOverArgon2: number;
  /**
   * The same by CPU: raw CPU per verify over the gateway's CPU per login (null without /proc). On
   * a shared machine the wall-clock rates swing with the neighbours' load; CPU per operation much less.
   */
  loginOverArgon2ByCpu: number | null;
  /** Per core: 1 s of CPU / CPU per operation (server process, all threads); null without /proc. */
  loginsPerCoreSecond: number | null;
  refreshesPerCoreSecond: number | null;
  argon2PerCoreSecond: number;
}

const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }';
const REFRESH = 'mutation($t: String) { refreshToken(refreshToken: $t) { accessToken refreshToken } }';

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const meanOrNull = (values: (number | null)[]) => (values.some((v) => v === null) ? null : mean(values as number[]));

async function rawArgon2(options: LoginBenchOptions, seconds: number): Promise<RawArgon2Run> {
  const child: Child = startChild(process.execPath, [join(options.build, 'bench', 'login', 'argon2Raw.js')], {
    env: { PATH: process.env.PATH ?? '', ARGON2_SECONDS: String(seconds), IN_FLIGHT: String(options.connections) },
  });
  const deadline = Date.now() + (seconds + 60) * 1000;
  let line: string | undefined;
  while (!(line = child.output().split('\n').find((l) => l.startsWith('{')))) {
    if (Date.now() > deadline) throw new Error(`argon2Raw said nothing useful:\n${child.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await child.stop();
  const { verifies, seconds: elapsed, cpuMs } = JSON.parse(line) as { verifies: number; seconds: number; cpuMs: number };
  return { verifiesPerSec: verifies / elapsed, cpuUs: (cpuMs * 1000) / verifies };
}

export async function loginBenchmarks(options: LoginBenchOptions): Promise<LoginFigures> {
  // Many users, logged in to in turn: no user nears MAX_SESSIONS_PER_USER, as in real traffic.
  const users = await options.signUp(64);
  let next = 0;
  const loginRun = (seconds: number) =>
    load({
      url: options.url,
      serverPid: options.serverPid,
      connections: options.connections,
      durationSec: seconds,
      body: '',
      setupRequest: (request) => {
        request.body = JSON.stringify({ query: LOGIN, variables: { e: users[next++ % users.length], p: options.password } });
        return request;
      },
      onResponse: () => undefined,
    });
  const refreshRun = async (seconds: number) => {
    const chains: string[] = [];
    for (let i = 0; i < options.connections; i++) {
      const answer = (await (
        await fetch(`${options.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: LOGIN, variables: { e: users[i % users.length], p: options.password } }),
        })
      ).json()) as { data: { login: { refreshToken: string } } };
      chains.push(answer.data.login.refreshToken);
    }
    return load({
      url: options.url,
      serverPid: options.serverPid,
      connections: options.connections,
      durationSec: seconds,
      body: '',
      setupRequest: (request, context) => {
        context.token ??= chains.pop();
        request.body = JSON.stringify({ query: REFRESH, variables: { t: context.token } });
        return request;
      },
      onResponse: (_status, body, context) => {
        const token = /"refreshToken":"([^"]+)"/.exec(body)?.[1];
        if (token) context.token = token;
      },
    });
  };

  options.log(`login: ${options.connections} in flight, the gateway and raw argon2id alternately (warm-up ${options.warmupSec} s each) …\n`);
  await rawArgon2(options, options.warmupSec);
  await loginRun(options.warmupSec);
  const logins: LoadResult[] = [];
  const raws: RawArgon2Run[] = [];
  const refreshes: LoadResult[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const steps = [
      async () => {
        const run = await loginRun(options.durationSec);
        logins.push(run);
        options.log(`  round ${round + 1} login (gateway)        ${Math.round(run.rps).toString().padStart(7)} /s  p50 ${run.p50.toFixed(1)} ms  p99 ${run.p99.toFixed(1)} ms${run.cpuUs === null ? '' : `  server CPU ${run.cpuUs.toFixed(0)} us/login`}${run.failures ? `  FAILURES ${run.failures}` : ''}\n`);
      },
      async () => {
        const run = await rawArgon2(options, options.durationSec);
        raws.push(run);
        options.log(`  round ${round + 1} argon2id verify (raw)  ${Math.round(run.verifiesPerSec).toString().padStart(7)} /s  CPU ${run.cpuUs.toFixed(0)} us/verify\n`);
      },
    ];
    for (const step of round % 2 === 0 ? steps : [...steps].reverse()) await step();
    const refresh = await refreshRun(options.durationSec);
    refreshes.push(refresh);
    options.log(`  round ${round + 1} refreshToken           ${Math.round(refresh.rps).toString().padStart(7)} /s  p50 ${refresh.p50.toFixed(1)} ms  p99 ${refresh.p99.toFixed(1)} ms${refresh.cpuUs === null ? '' : `  server CPU ${refresh.cpuUs.toFixed(0)} us/refresh`}${refresh.failures ? `  FAILURES ${refresh.failures}` : ''}\n`);
  }
  const summary = (runs: LoadResult[]) => ({
    rps: mean(runs.map((r) => r.rps)),
    p50: mean(runs.map((r) => r.p50)),
    p99: mean(runs.map((r) => r.p99)),
    cpuUs: meanOrNull(runs.map((r) => r.cpuUs)),
    failures: runs.reduce((sum, r) => sum + r.failures, 0),
    runs,
  });
  const login = summary(logins);
  const refresh = summary(refreshes);
  const argon2 = { verifiesPerSec: mean(raws.map((r) => r.verifiesPerSec)), cpuUs: mean(raws.map((r) => r.cpuUs)), runs: raws };
  return {
    connections: options.connections,
    cpus: cpus().length,
    login,
    refresh,
    argon2,
    loginOverArgon2: login.rps / argon2.verifiesPerSec,
    loginOverArgon2ByCpu: login.cpuUs === null ? null : argon2.cpuUs / login.cpuUs,
    loginsPerCoreSecond: login.cpuUs === null ? null : 1e6 / login.cpuUs,
    refreshesPerCoreSecond: refresh.cpuUs === null ? null : 1e6 / refresh.cpuUs,
    argon2PerCoreSecond: 1e6 / argon2.cpuUs,
  };
}
