import type { ScenarioName } from './types.js';

/** Every HTTP scenario, in the order the report shows them (`--only` takes these names). */
export const SCENARIO_NAMES = [
  'baselineMeId',
  'warmMeId',
  'metricsOffMeId',
  'metricsOnMeId',
  'coldMeId',
  'coldMeIdEs256',
  'baselineMeFull',
  'warmMeFull',
  'baselineMeIdSequential',
  'refreshSequential',
  'refreshInFlight',
] as const satisfies readonly ScenarioName[];

// A scenario added to ScenarioName but not listed above does not compile.
type Unlisted = Exclude<ScenarioName, (typeof SCENARIO_NAMES)[number]>;
const everyScenarioListed: [Unlisted] extends [never] ? true : never = true;
void everyScenarioListed;

export interface BenchOptions {
  /** Short runs, one round: a smoke test of the bench itself. */
  quick: boolean;
  /** Only the session memory step. */
  memoryOnly: boolean;
  /** Everything but the memory step. */
  noMemory: boolean;
  /** Also write each server's CPU profile. */
  profile: boolean;
  /** Only the gateway-mode scenarios (bench/gateway/bench.ts). */
  gatewayOnly: boolean;
  /** Everything but the gateway-mode scenarios. */
  noGateway: boolean;
  /** Only the login step (bench/login/bench.ts). */
  loginOnly: boolean;
  /** Everything but the login step. */
  noLogin: boolean;
  /** Only the realtime scenarios (bench/realtime/bench.ts: idle WebSocket connections, revocation to close). */
  realtimeOnly: boolean;
  /** Everything but the realtime scenarios. */
  noRealtime: boolean;
  /** Seconds per HTTP run; null: the default (6, or 2 with --quick). */
  durationSec: number | null;
  /** Alternating rounds; null: the default (2, or 1 with --quick). */
  rounds: number | null;
  /** Only these HTTP scenarios (and the Redis command counts); null: all. */
  only: Set<ScenarioName> | null;
}

export type ParsedBenchArgs = { kind: 'run'; options: BenchOptions } | { kind: 'help' } | { kind: 'error'; message: string };

export const BENCH_USAGE = `Usage: npm run bench [-- options]

Tessera against an Apollo Server 5 baseline, side by side; prints tables and writes
bench-results/latest.json. With no option: everything (about four minutes).

Options:
  --quick                 short runs, one round (a smoke test of the bench itself)
  --memory                only the session memory step
  --no-memory             everything but the memory step
  --profile               also write each server's CPU profile to bench-results/profiles/
  --gateway               only the gateway-mode scenarios (Tessera, @apollo/gateway, Hive Gateway)
  --no-gateway            everything but the gateway-mode scenarios
  --login                 only the login step (logins and refreshes through the gateway, raw argon2id beside them)
  --no-login              everything but the login step
  --realtime              only the realtime scenarios (idle WebSocket connections, revocation to close)
  --no-realtime           everything but the realtime scenarios
  --duration=<seconds>    seconds per HTTP run (default 6; 2 with --quick)
  --rounds=<n>            alternating rounds (default 2; 1 with --quick)
  --only=<scenario,...>   only these HTTP scenarios (and the Redis command counts)
  --help, -h              this text

Scenarios: ${SCENARIO_NAMES.join(', ')}
`;

const FLAGS = {
  '--quick': 'quick',
  '--memory': 'memoryOnly',
  '--no-memory': 'noMemory',
  '--profile': 'profile',
  '--gateway': 'gatewayOnly',
  '--no-gateway': 'noGateway',
  '--login': 'loginOnly',
  '--no-login': 'noLogin',
  '--realtime': 'realtimeOnly',
  '--no-realtime': 'noRealtime',
} as const;
const VALUED = new Set(['--duration', '--rounds', '--only']);
const SEE_HELP = '(npm run bench -- --help lists the options)';

/** The bench's command line: options, a request for help, or the one line that says what is wrong. */
export function parseBenchArgs(argv: readonly string[]): ParsedBenchArgs {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  const options: BenchOptions = {
    quick: false,
    memoryOnly: false,
    noMemory: false,
    profile: false,
    gatewayOnly: false,
    noGateway: false,
    loginOnly: false,
    noLogin: false,
    realtimeOnly: false,
    noRealtime: false,
    durationSec: null,
    rounds: null,
    only: null,
  };
  const error = (message: string): ParsedBenchArgs => ({ kind: 'error', message: `${message} ${SEE_HELP}` });
  for (const arg of argv) {
    const at = arg.indexOf('=');
    const name = at < 0 ? arg : arg.slice(0, at);
    const value = at < 0 ? null : arg.slice(at + 1);
    if (name in FLAGS && value === null) {
      options[FLAGS[name as keyof typeof FLAGS]] = true;
      continue;
    }
    if (!VALUED.has(name)) return error(`unknown option ${JSON.stringify(arg)}`);
    if (value === null || value === '') return error(`${name} needs a value (${name}=…)`);
    if (name === '--duration') {
      const seconds = Number(value);
      if (!(Number.isFinite(seconds) && seconds > 0)) return error(`--duration must be a number of seconds above 0, not ${JSON.stringify(value)}`);
      options.durationSec = seconds;
    } else if (name === '--rounds') {
      const rounds = Number(value);
      if (!(Number.isInteger(rounds) && rounds > 0)) return error(`--rounds must be a whole number above 0, not ${JSON.stringify(value)}`);
      options.rounds = rounds;
    } else {
      const names = value.split(',').map((n) => n.trim());
      const unknown = names.filter((n) => !(SCENARIO_NAMES as readonly string[]).includes(n));
      if (unknown.length > 0) return error(`--only: no scenario ${unknown.map((n) => JSON.stringify(n)).join(', ')}`);
      options.only = new Set(names as ScenarioName[]);
    }
  }
  if (options.memoryOnly && options.noMemory) return error('--memory and --no-memory exclude each other');
  if (options.memoryOnly && options.only) return error('--memory and --only exclude each other');
  if (options.loginOnly && options.noLogin) return error('--login and --no-login exclude each other');
  if (options.loginOnly && (options.memoryOnly || options.gatewayOnly || options.only)) return error('--login runs the login step alone: it excludes --memory, --gateway and --only');
  if (options.realtimeOnly && options.noRealtime) return error('--realtime and --no-realtime exclude each other');
  if (options.realtimeOnly && (options.memoryOnly || options.gatewayOnly || options.loginOnly || options.only)) {
    return error('--realtime excludes --memory, --gateway, --login and --only');
  }
  return { kind: 'run', options };
}
