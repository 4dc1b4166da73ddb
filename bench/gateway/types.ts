import type { LoadResult } from '../lib/load.js';

/** The gateways side by side: the no-auth ceiling, the two peers, Tessera. */
export type GatewayName = 'ceiling' | 'jose' | 'hive' | 'tessera';
export const GATEWAY_NAMES: readonly GatewayName[] = ['ceiling', 'jose', 'hive', 'tessera'];

/**
 * - `viewer`: `{ viewer { id } }`, one subgraph call, the same token every request;
 * - `viewerFresh`: the same with a token the gateway has not seen, one per request;
 * - `me`: `{ me { id orderCount } }`, the caller's user with a field of the bench subgraph
 *   (Tessera: its own `me`, then `_entities` on the bench subgraph; the others: one call).
 * The ceiling has no tokens: its `viewer` is the ceiling of both `viewer` and `viewerFresh`.
 */
export type Shape = 'viewer' | 'viewerFresh' | 'me';
export const SHAPES: readonly Shape[] = ['viewer', 'viewerFresh', 'me'];

/** `<gateway>.<shape>`, e.g. `tessera.viewerFresh`. */
export type GatewayScenario = `${GatewayName}.${Shape}`;

export interface GatewayRun extends LoadResult {
  /** The subgraph process's CPU time per response (all threads), microseconds; null without /proc. */
  subgraphCpuUs: number | null;
  /** Operations the subgraph served per response (checked to be one, but for requests in flight at the end). */
  subgraphCallsPerRequest: number;
}

export interface GatewayScenarioFigure {
  gateway: GatewayName;
  shape: Shape;
  /** Medians over the rounds (the subgraph calls: the mean). */
  rps: number;
  p50: number;
  p99: number;
  /** The gateway process's CPU per request, microseconds: all threads, and its main thread. */
  gatewayCpuUs: number | null;
  gatewayMainThreadUs: number | null;
  /** The subgraph process's CPU per request, microseconds (all threads). */
  subgraphCpuUs: number | null;
  subgraphCallsPerRequest: number;
  /** The bench process's (autocannon's) CPU per request, microseconds. */
  clientCpuUs: number;
  failures: number;
  runs: GatewayRun[];
}

export interface GatewayFigures {
  /** What each gateway is, and how its subgraph reads the caller. */
  gateways: Record<GatewayName, { label: string; identity: string }>;
  scenarios: Partial<Record<GatewayScenario, GatewayScenarioFigure>>;
  /** Throughput over the ceiling's of the same shape (`viewerFresh` over the ceiling's `viewer`), from the medians. */
  ratios: Partial<Record<GatewayScenario, number>>;
  /** The same, each round on its own. */
  ratiosByRound: Partial<Record<GatewayScenario, number>>[];
  /** Tessera's `me` (its auth subgraph, then the bench subgraph) over its `viewer` (one call), from the medians and each round. */
  meOverViewer: { ratio: number; byRound: number[] } | null;
  /**
   * The subgraph's CPU per request behind Tessera (verifying `x-tessera-context`) over the same
   * subgraph's behind @apollo/gateway + jose (reading `x-user-id`), per shape.
   */
  subgraphCost: Partial<Record<Shape, { tesseraUs: number; headerUs: number; ratio: number }>>;
  /** Tokens minted for the fresh-token runs; `wrapped`: the runs that used some twice (they ran out). */
  freshTokens: { minted: number; wrapped: GatewayScenario[] };
}
