import type { RealtimeFigures } from '../realtime/bench.js';
import type { GatewayFigures } from '../gateway/types.js';
import type { LoginFigures } from '../login/bench.js';
import type { LoadResult } from './load.js';
import type { MemoryFigure } from './memory.js';
import type { VerifyFigures } from './micro.js';

export type ScenarioName =
  | 'baselineMeId'
  | 'warmMeId'
  /** A pair of gateways started alike, used for nothing else: metrics off (METRICS_PORT=0) and on; tracing off in both. */
  | 'metricsOffMeId'
  | 'metricsOnMeId'
  | 'coldMeId'
  | 'coldMeIdEs256'
  | 'baselineMeFull'
  | 'warmMeFull'
  | 'baselineMeIdSequential'
  | 'refreshSequential'
  | 'refreshInFlight';

export interface ScenarioFigure {
  /** Means over the rounds. */
  rps: number;
  p50: number;
  p99: number;
  /** Server CPU per request, microseconds: the whole process, and its main thread (null without /proc). */
  cpuUs: number | null;
  mainThreadUs: number | null;
  /** The bench process's (autocannon's) CPU per request, microseconds. */
  clientCpuUs: number;
  failures: number;
  runs: LoadResult[];
}

export interface HttpFigures {
  scenarios: Partial<Record<ScenarioName, ScenarioFigure>>;
  /** Tessera over the baseline, from the means (see `ratiosByRound` for each round's own). */
  ratios: Record<string, number>;
  ratiosByRound: Record<string, number>[];
  coldTokens: { minted: number; wrapped: boolean };
}

export interface PerOperation {
  operations: number;
  /** Commands clients sent per operation (an EVALSHA is one, whatever its script runs). */
  commandsPerOperation: number;
  /** Commands run inside scripts per operation (MONITOR's `[0 lua]` lines). */
  scriptInternalPerOperation: number;
  byCommandPerOperation: Record<string, number>;
  samples: string[];
}

export interface Results {
  command: string;
  environment: {
    node: string;
    cpus: number;
    cpuModel: string;
    commit: string | null;
    startedAt: string;
    seconds: number;
    loadavgAtStart: number[];
    loadavgAtEnd: number[];
  };
  settings: { durationSec: number; rounds: number; connections: number; refreshInFlight: number; logLevel: string };
  http: HttpFigures | null;
  redisCommands: Record<string, PerOperation> | null;
  verify: VerifyFigures[] | null;
  memory: MemoryFigure[] | null;
  /** The gateway-mode scenarios (bench/gateway/). */
  gateway: GatewayFigures | null;
  /** Password logins against raw argon2id, and refreshes, per core (bench/login/). */
  login: LoginFigures | null;
  /** The realtime scenarios (bench/realtime/). */
  realtime: RealtimeFigures | null;
}
