import autocannon from 'autocannon';
import { cpuTime } from './processes.js';

/** One autocannon run, with latency percentiles from every response time at full precision. */
export interface LoadResult {
  /** Responses per second over the run. */
  rps: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  responses: number;
  /** Connection errors, timeouts, non-2xx answers, bodies other than expected, GraphQL errors. */
  failures: number;
  /** The server process's CPU time per response, in microseconds: all threads, and its main thread (null without /proc). */
  cpuUs: number | null;
  mainThreadUs: number | null;
  /** This process's CPU time per response (autocannon's side: building requests, parsing answers), microseconds. */
  clientCpuUs: number;
}

export interface LoadOptions {
  url: string;
  /** The server's process, for its CPU time. */
  serverPid: number;
  connections: number;
  durationSec: number;
  body: string;
  headers?: Record<string, string>;
  /** Every answer must be exactly this body. */
  expectBody?: string;
  /**
   * Each connection's own Authorization headers, sent in turn (built once before the run, so the
   * client does no per-request work for them; a connection starts over after its last one).
   */
  authorizationByConnection?: string[][];
  /** Per-request changes (the next refresh token of a chain …). */
  setupRequest?: (request: autocannon.Request, context: Record<string, unknown>) => autocannon.Request;
  /** Sees each answer with the same context object its connection keeps for the whole run. */
  onResponse?: (status: number, body: string, context: Record<string, unknown>) => void;
}

interface ClientInternals {
  requestIterator: { context: Record<string, unknown>; resetContext: () => void };
}

export async function load(options: LoadOptions): Promise<LoadResult> {
  let times = new Float64Array(1 << 16);
  let count = 0;
  let firstAt = 0;
  let lastAt = 0;
  const record = (ms: number) => {
    lastAt = performance.now();
    if (count === 0) firstAt = lastAt;
    if (count === times.length) {
      const bigger = new Float64Array(times.length * 2);
      bigger.set(times);
      times = bigger;
    }
    times[count++] = ms;
  };
  let graphqlErrors = 0;
  const onResponse = options.onResponse;
  const request: autocannon.Request = {
    method: 'POST',
    path: '/graphql',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: options.body,
    ...(options.setupRequest ? { setupRequest: options.setupRequest as autocannon.Request['setupRequest'] } : {}),
    ...(onResponse
      ? {
          onResponse: (status: number, body: string, context: object) => {
            if (body.includes('"errors"')) graphqlErrors++;
            onResponse(status, body, context as Record<string, unknown>);
          },
        }
      : {}),
  };
  let connection = 0;
  const cpuBefore = await cpuTime(options.serverPid);
  const clientBefore = process.cpuUsage();
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSec,
    requests: [request],
    ...(options.expectBody !== undefined ? { verifyBody: (body: unknown) => body === options.expectBody } : {}),
    setupClient: (client) => {
      // autocannon resets a connection's context after each pass over `requests`; keep one per
      // connection for the whole run instead (a refresh chain lives in it).
      const iterator = (client as unknown as ClientInternals).requestIterator;
      const kept = iterator.context;
      iterator.resetContext = () => {
        iterator.context = kept;
      };
      const own = options.authorizationByConnection?.[connection++];
      if (own) client.setRequests(own.map((authorization) => ({ ...request, headers: { ...request.headers, authorization } })));
      client.on('response', (_status: number, _bytes: number, ms: number) => record(ms));
    },
  });
  const client = process.cpuUsage(clientBefore);
  const cpuAfter = await cpuTime(options.serverPid);
  const sorted = times.subarray(0, count).sort();
  const at = (q: number) => (count === 0 ? NaN : sorted[Math.min(count - 1, Math.floor(q * count))]!);
  return {
    // From the first answer to the last: setting connections up is not part of the rate.
    rps: count > 1 ? ((count - 1) * 1000) / (lastAt - firstAt) : 0,
    p50: at(0.5),
    p99: at(0.99),
    responses: count,
    failures: result.errors + result.timeouts + result.non2xx + result.mismatches + graphqlErrors,
    cpuUs: cpuBefore && cpuAfter ? ((cpuAfter.totalMs - cpuBefore.totalMs) * 1000) / count : null,
    mainThreadUs: cpuBefore && cpuAfter ? ((cpuAfter.mainMs - cpuBefore.mainMs) * 1000) / count : null,
    clientCpuUs: (client.user + client.system) / count,
  };
}
