import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { type MetricsServer, startMetricsServer } from '../../src/observability/metricsServer.js';
import { createTestServer, type TestServer, type TestServerOptions } from '../helpers/testServer.js';

/** A gateway with Prometheus metrics, served on a metrics port of its own (as main.ts does). */
export interface MeasuredServer extends TestServer {
  metrics: PrometheusMetrics;
  metricsServer: MetricsServer;
  metricsUrl: string;
  /** GET /metrics over HTTP: the Prometheus text. */
  scrape(): Promise<string>;
}

export async function createMeasuredServer(options: TestServerOptions = {}): Promise<MeasuredServer> {
  const metrics = new PrometheusMetrics();
  const metricsServer = await startMetricsServer(metrics.registry, 0, '127.0.0.1');
  const server = await createTestServer({ ...options, deps: { ...options.deps, metrics } });
  const metricsUrl = `http://127.0.0.1:${metricsServer.port}/metrics`;
  const closeServer = server.close;
  return Object.assign(server, {
    metrics,
    metricsServer,
    metricsUrl,
    async scrape() {
      const response = await fetch(metricsUrl);
      if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
      return response.text();
    },
    close: async () => {
      await closeServer();
      await metricsServer.close();
    },
  });
}

/**
 * The value of one series in Prometheus text: `name{labels}` with exactly these labels
 * (in any order); undefined when the series is not there.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const wanted = Object.entries(labels);
    if (Object.keys(found).length === wanted.length && wanted.every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/** Every metric family named in a Prometheus text (`# TYPE` lines). */
export function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number; message?: string };
  service: string | undefined;
}

export interface OtlpReceiver {
  /** The OTLP/HTTP base URL (what OTEL_EXPORTER_OTLP_ENDPOINT is set to). */
  url: string;
  spans: ReceivedSpan[];
  /** Every request body received, as sent. */
  bodies: string[];
  close(): Promise<void>;
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

function attributesOf(list: OtlpAttributes): Record<string, string | number | boolean> {
  return Object.fromEntries(
    (list ?? []).map(({ key, value }) => [
      key,
      value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue ?? '',
    ]),
  );
}

/** A local OTLP/HTTP collector: receives POST /v1/traces (JSON, as the OTLP/HTTP JSON exporter sends) and keeps the spans. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(404).end();
        return;
      }
      bodies.push(body);
      const parsed = JSON.parse(body) as {
        resourceSpans: {
          resource?: { attributes?: OtlpAttributes };
          scopeSpans: { spans: (Omit<ReceivedSpan, 'attributes' | 'service' | 'status'> & { attributes?: OtlpAttributes; status?: ReceivedSpan['status'] })[] }[];
        }[];
      };
      for (const resource of parsed.resourceSpans) {
        const service = attributesOf(resource.resource?.attributes)['service.name'];
        for (const scope of resource.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId || undefined,
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
              status: span.status ?? {},
              service: typeof service === 'string' ? service : undefined,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
