import type { Server } from 'node:http';
import type { Logger } from '../logger.js';

/** Span attributes: fixed words and numbers only (never a token, a password, an email or a variable). */
export type SpanAttributes = Record<string, string | number | boolean>;

/**
 * OpenTelemetry traces (contract section 10), one trace per HTTP request: a server span for the
 * request, a child span for its GraphQL operation, and under it a span per store command and
 * per subgraph call (whose W3C `traceparent` the subgraph receives). Made only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise there is no Tracing at all and the SDK is never
 * loaded (`startTracing` imports it).
 */
export interface Tracing {
  /** From now on, each request of `server` runs in a server span (a child of the caller's `traceparent`, if it sent one). */
  instrumentServer(server: Server): void;
  /** Runs `execute` (one GraphQL HTTP request) in an operation span; `describeOperation` names it once parsed. */
  operation<T>(execute: () => Promise<T>): Promise<T>;
  /** Names the current operation span: `query Me`, `mutation`, … */
  describeOperation(type: string, name: string | null | undefined): void;
  /** Runs `fn` in a child span of the current one (`client`: a call out, such as a Redis command); outside any request, just runs it. */
  span<T>(name: string, attributes: SpanAttributes, fn: () => T, kind?: 'internal' | 'client'): T;
  /**
   * Runs `fn` in a client span (an outgoing call); `fn` gets the W3C trace-context headers
   * (`traceparent`) to send with it. Outside any request, `fn` gets none.
   */
  clientSpan<T>(name: string, attributes: SpanAttributes, fn: (headers: Record<string, string>) => Promise<T>): Promise<T>;
  /** Sends the spans that ended so far. */
  flush(): Promise<void>;
  /** Sends what is left and stops. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to `<endpoint>/v1/traces` (OTLP/HTTP, JSON). */
  endpoint: string;
  logger: Logger;
  serviceName?: string;
  /** How often ended spans are sent (default 5 s, as the SDK's). */
  exportIntervalMs?: number;
}

/** Loads the OpenTelemetry SDK (only now) and starts exporting. */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const { OtlpTracing } = await import('./tracingSdk.js');
  return new OtlpTracing(options);
}
