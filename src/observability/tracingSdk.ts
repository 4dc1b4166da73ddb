/**
 * The OpenTelemetry SDK behind `Tracing`: loaded by `startTracing` only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, so a gateway without it never loads these packages.
 *
 * Spans are made here rather than by the SDK's auto-instrumentations: those patch modules
 * through require hooks as they load, which does not reach an ES module gateway whose modules
 * are already imported, and they would trace every Redis command and resolver instead of the
 * few spans an operator reads (request, operation, store command, subgraph call). Nothing is
 * registered globally (no global tracer provider, context manager or propagator): each gateway
 * has its own provider and its own AsyncLocalStorage, so gateways in one process do not mix
 * their traces, and libraries that trace through the global API (Apollo Gateway) stay off.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import {
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, type ReadableSpan, type SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Logger } from '../logger.js';
import { REQUEST_ID_HEADER } from '../http/requestId.js';
import type { SpanAttributes, Tracing, TracingOptions } from './tracing.js';

/** Paths a request span is named after; any other path is named by its method alone (a path is the client's text). */
const ROUTES = new Set(['/graphql', '/graphiql', '/.well-known/jwks.json', '/healthz', '/readyz']);
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const WARN_EVERY_MS = 60_000;

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export class OtlpTracing implements Tracing {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly active = new AsyncLocalStorage<Context>();
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(options: TracingOptions) {
    const exporter = new LoggedExporter(
      new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` }),
      options.logger,
    );
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'tessera' }),
      // Every request is traced: a caller's `traceparent` gives the trace id, not the decision.
      sampler: new AlwaysOnSampler(),
      spanProcessors: [
        new BatchSpanProcessor({ exporter, ...(options.exportIntervalMs ? { scheduledDelayMillis: options.exportIntervalMs } : {}) }),
      ],
    });
    this.tracer = this.provider.getTracer('tessera');
  }

  instrumentServer(server: Server): void {
    const listeners = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.request(req, res, () => {
        for (const listener of listeners) listener.call(server, req, res);
      });
    });
  }

  private request(req: IncomingMessage, res: ServerResponse, next: () => void): void {
    const parent = this.propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const method = METHODS.has(req.method ?? '') ? req.method! : '_OTHER';
    const path = (req.url ?? '/').split('?')[0]!;
    const route = ROUTES.has(path) ? path : null;
    const attributes: SpanAttributes = { 'http.request.method': method, 'url.scheme': 'http' };
    if (route) Object.assign(attributes, { 'http.route': route, 'url.path': route });
    const span = this.tracer.startSpan(route ? `${method} ${route}` : method, { kind: SpanKind.SERVER, attributes }, parent);
    res.once('close', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      const requestId = res.getHeader(REQUEST_ID_HEADER);
      if (typeof requestId === 'string') span.setAttribute('tessera.request_id', requestId);
      if (res.statusCode >= 500 || !res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    this.active.run(trace.setSpan(parent, span), next);
  }

  operation<T>(execute: () => Promise<T>): Promise<T> {
    return this.span('GraphQL Operation', {}, execute);
  }

  describeOperation(type: string, name: string | null | undefined): void {
    const span = trace.getSpan(this.active.getStore() ?? ROOT_CONTEXT);
    if (!span) return;
    span.updateName(name ? `${type} ${name}` : type);
    span.setAttribute('graphql.operation.type', type);
    if (name) span.setAttribute('graphql.operation.name', name);
  }

  span<T>(name: string, attributes: SpanAttributes, fn: () => T, kind: 'internal' | 'client' = 'internal'): T {
    const parent = this.active.getStore();
    if (!parent) return fn();
    const span = this.tracer.startSpan(name, { attributes, kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL }, parent);
    return this.runIn(span, trace.setSpan(parent, span), fn);
  }

  clientSpan<T>(name: string, attributes: SpanAttributes, fn: (headers: Record<string, string>) => Promise<T>): Promise<T> {
    const parent = this.active.getStore();
    if (!parent) return fn({});
    const span = this.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
    const context = trace.setSpan(parent, span);
    const headers: Record<string, string> = {};
    this.propagator.inject(context, headers, defaultTextMapSetter);
    return this.runIn(span, context, () => fn(headers));
  }

  /** Runs `fn` with `context` active; ends `span` when it returns or settles. */
  private runIn<T>(span: Span, context: Context, fn: () => T): T {
    let result: T;
    try {
      result = this.active.run(context, fn);
    } catch (error) {
      failed(span, error);
      span.end();
      throw error;
    }
    if (!(result instanceof Promise)) {
      span.end();
      return result;
    }
    return result.then(
      (value: unknown) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        failed(span, error);
        span.end();
        throw error;
      },
    ) as T;
  }

  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

/** The error's class only: its message may quote what it failed on. */
function failed(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
}

/** The OTLP exporter, saying in the log (at most once a minute) when the collector cannot be reached. */
class LoggedExporter implements SpanExporter {
  private lastWarning = -Infinity;

  constructor(
    private readonly inner: SpanExporter,
    private readonly logger: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && performance.now() - this.lastWarning > WARN_EVERY_MS) {
        this.lastWarning = performance.now();
        this.logger.warn({ spans: spans.length, err: result.error }, 'tracing: the spans could not be sent to OTEL_EXPORTER_OTLP_ENDPOINT');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
