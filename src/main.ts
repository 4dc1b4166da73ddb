#!/usr/bin/env node
/**
 * Composition root: load the configuration, create the dependencies (store, keys, password
 * hasher, logger), build the gateway and serve it. Nothing else reads the environment.
 */
import { createApp } from './app.js';
import { type Config, loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { asyncStdout, createLogger, type Logger } from './logger.js';
import { prettyDestination } from './observability/logFormat.js';
import { PrometheusMetrics } from './observability/metrics.js';
import { startMetricsServer } from './observability/metricsServer.js';
import { startTracing } from './observability/tracing.js';
import { createStore, usesEmbeddedStore } from './store/createStore.js';
import type { Store } from './store/types.js';
import { type KeySet, loadKeySetFile, loadOrCreateDevKeySet } from './tokens/keys.js';
import { PasswordHasher } from './users/passwords.js';

/** How long an exiting process waits for its log lines to be written. */
const EXIT_FLUSH_TIMEOUT_MS = 2_000;

async function loadKeys(config: Config, logger: Logger): Promise<KeySet> {
  if (config.signingKeysFile) return loadKeySetFile(config.signingKeysFile);
  const { keySet, path, created } = await loadOrCreateDevKeySet(config.devKeyDir);
  logger.warn({ path, kid: keySet.active.kid }, created ? 'generated a development signing key' : 'using the development signing key');
  return keySet;
}

async function openStore(config: Config, logger: Logger): Promise<Store> {
  if (usesEmbeddedStore(config)) {
    logger.warn(
      '*** EMBEDDED STORE: sessions and users live in this process only and are lost when it stops. Set REDIS_URL for anything but local development. ***',
    );
  }
  return createStore(config, {
    connect: 'background',
    onError: (error) => logger.warn({ err: error }, 'redis connection error'),
  });
}

/** What the log says about the schema served: the auth schema alone, or a supergraph and where from. */
function describeFederation(config: Config): string {
  const federation = config.federation;
  if (!federation) return 'off (the auth schema alone)';
  if (federation.kind === 'supergraphFile') return `supergraph file ${federation.path}`;
  return `subgraphs auth (in process), ${federation.subgraphs.map((s) => `${s.name} at ${s.url}`).join(', ')}`;
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`tessera: ${error.message}\n`);
    process.exit(1);
  }
  // Asynchronous log writes: a synchronous write per request line costs the event loop dearly.
  // LOG_FORMAT=pretty (for people) writes synchronously.
  const { observability } = config;
  const logger = createLogger(
    { production: config.production, level: config.logLevel },
    observability.logFormat === 'pretty' ? await prettyDestination() : asyncStdout(),
  );
  const exit = (code: number) => {
    // Standard output whose reader has gone (a closed pipe) never lets the flush finish: the
    // process still exits, with what it would have said lost.
    setTimeout(() => process.exit(code), EXIT_FLUSH_TIMEOUT_MS);
    logger.flush(() => process.exit(code));
  };
  // METRICS_PORT first: a port that cannot be bound stops the start before anything else.
  const metrics = observability.metricsPort === 0 ? undefined : new PrometheusMetrics();
  const metricsServer = metrics ? await startMetricsServer(metrics.registry, observability.metricsPort, observability.metricsHost) : null;
  const tracing = observability.otlpEndpoint ? await startTracing({ endpoint: observability.otlpEndpoint, logger }) : undefined;
  const keys = await loadKeys(config, logger);
  const store = await openStore(config, logger);
  const app = await createApp({
    config,
    store,
    keys,
    passwords: await PasswordHasher.create(),
    logger,
    ...(metrics ? { metrics } : {}),
    ...(tracing ? { tracing } : {}),
  });
  const address = await app.listen(config.port, config.host);
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const base = `http://${shown === '0.0.0.0' ? 'localhost' : shown}:${address.port}`;
  logger.info({ store: store.kind, port: address.port, federation: describeFederation(config) }, `Tessera serving GraphQL at ${base}/graphql${config.production ? '' : ` (GraphiQL: ${base}/graphiql)`}`);
  const metricsAt = metricsServer ? `http://${observability.metricsHost}:${metricsServer.port}/metrics` : 'off (METRICS_PORT=0)';
  // The collector's origin only: its URL may carry credentials.
  const tracingTo = observability.otlpEndpoint ? `OTLP/HTTP to ${new URL(observability.otlpEndpoint).origin}` : 'off';
  logger.info({ metrics: metricsAt, tracing: tracingTo }, `Prometheus metrics: ${metricsAt}; tracing: ${tracingTo}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    app
      .close()
      .then(() => Promise.all([metricsServer?.close(), tracing?.shutdown()]))
      .then(
        () => exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`tessera: ${error.message}\n`);
  } else {
    process.stderr.write(`tessera: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  process.exit(1);
});
