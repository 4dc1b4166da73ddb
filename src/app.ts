import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { AccountService } from './accounts/accountService.js';
import { AdminService } from './accounts/adminService.js';
import { FreshAuthRule } from './accounts/freshAuth.js';
import { MailTokenCodec } from './tokens/mailTokens.js';
import { AuthService } from './auth/authService.js';
import { LoginThrottle } from './auth/loginThrottle.js';
import { type Clock, systemClock } from './clock.js';
import type { Config, FederationSource } from './config.js';
import { auditLogger } from './events/auditLog.js';
import { SecurityEventService } from './events/eventService.js';
import { FactorService } from './factors/factorService.js';
import { MfaGate } from './factors/mfaGate.js';
import { DEFAULT_WEBHOOK_TIMINGS, WebhookDelivery, type WebhookTimings } from './events/webhookDelivery.js';
import { WebhookSender } from './events/webhookSender.js';
import { createApolloServer } from './graphql/apolloServer.js';
import { ContextBuilder } from './graphql/contextBuilder.js';
import { createExecutableSchema } from './graphql/executableSchema.js';
import { apolloEndpoint } from './graphql/httpEndpoint.js';
import { WsOperations } from './graphql/wsOperations.js';
import { originPolicy } from './http/cors.js';
import { loadGraphiQL } from './http/graphiql.js';
import { createHttpServer } from './http/httpServer.js';
import { IdentityService } from './identity/identityService.js';
import type { ProviderClient } from './identity/providers.js';
import type { Logger } from './logger.js';
import { createMailer } from './mail/mailer.js';
import type { Mailer } from './mail/types.js';
import type { Metrics } from './observability/metrics.js';
import type { Tracing } from './observability/tracing.js';
import { type Observability, observability } from './observability/wiring.js';
import type { OperationDoor } from './realtime/types.js';
import { RealtimeServer } from './realtime/websocketServer.js';
import { RevocationFeed } from './revocation/revocationFeed.js';
import type { Store } from './store/types.js';
import { AccessTokenService } from './tokens/accessTokens.js';
import type { KeySet } from './tokens/keys.js';
import { RefreshTokenCodec } from './tokens/refreshTokens.js';
import type { PasswordHasher } from './users/passwords.js';

/** Everything the gateway is built from; main.ts makes the real ones, tests their own. */
export interface AppDeps {
  config: Config;
  store: Store;
  keys: KeySet;
  passwords: PasswordHasher;
  logger: Logger;
  clock?: Clock;
  /** SUPERGRAPH_FILE: how often the file is checked for a change (default 500 ms). */
  supergraphPollIntervalMs?: number;
  /** Prometheus metrics (main.ts: unless METRICS_PORT=0); none by default. */
  metrics?: Metrics;
  /** OpenTelemetry tracing (main.ts: with OTEL_EXPORTER_OTLP_ENDPOINT); none by default. */
  tracing?: Tracing;
  /** AUDIT_WEBHOOK_URL: delivery timings other than the configured ones (tests make them short). */
  webhookTimings?: Partial<WebhookTimings>;
  /** AUDIT_WEBHOOK_URL: the backoff's jitter source, in [0, 1). */
  webhookRandom?: () => number;
  /** IDENTITY_PROVIDERS_FILE: provider clients of the test's own instead of those of the file. */
  identityProviders?: ProviderClient[];
  /** A mailer other than the one of config.mail (tests: short retry timings, a transport of their own). */
  mailer?: Mailer;
}

export interface App {
  server: Server;
  /** GraphQL over WebSocket on the same port (src/realtime). */
  realtime: RealtimeServer;
  auth: AuthService;
  accessTokens: AccessTokenService;
  revocations: RevocationFeed;
  /** The mail of the account flows (config.mail, or AppDeps.mailer). */
  mailer: Mailer;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish, then closes the store. */
  close(): Promise<void>;
}

const REVOCATION_MARGIN_MS = 5_000;

/**
 * SUBGRAPHS / SUPERGRAPH_FILE: the supergraph's gateway. Loaded only then, so the standalone
 * server never loads @apollo/gateway.
 */
async function federationMode(federation: FederationSource, deps: AppDeps, clock: Clock, revocations: RevocationFeed, observed: Observability) {
  const [{ createGateway }, { createGatewayFormatError }] = await Promise.all([
    import('./federation/gateway.js'),
    import('./federation/gatewayErrors.js'),
  ]);
  const { gateway, signer, authSchema } = createGateway({
    federation,
    keys: deps.keys,
    issuer: deps.config.issuer,
    clock,
    revocations,
    logger: deps.logger,
    production: deps.config.production,
    tracing: observed.tracing,
    ...(deps.supergraphPollIntervalMs ? { supergraphPollIntervalMs: deps.supergraphPollIntervalMs } : {}),
  });
  return { gateway, formatError: createGatewayFormatError, signer, authSchema };
}

/**
 * Gateway mode over WebSocket: subscriptions passed through to the subgraph that serves them
 * whole (src/federation/subscriptionDoor.ts), following the supergraph from before it loads.
 */
async function subscriptionDoor(federated: Awaited<ReturnType<typeof federationMode>>, deps: AppDeps, clock: Clock): Promise<OperationDoor> {
  const { SubscriptionDoor } = await import('./federation/subscriptionDoor.js');
  const door = new SubscriptionDoor({
    gateway: federated.gateway,
    // The API schema comes from the supergraph; this one only parses, validates with the limits, and formats.
    operations: new WsOperations(federated.authSchema, deps.config.limits, deps.config.production, deps.logger),
    authSchema: federated.authSchema,
    signer: federated.signer,
    wsUrls: deps.config.realtime.subgraphWsUrls,
    clock,
    logger: deps.logger,
  });
  door.watch();
  return door;
}

/** AUDIT_WEBHOOK_URL: the delivery of the audit log, running until the app closes. */
function startWebhookDelivery(deps: AppDeps, clock: Clock): WebhookDelivery | null {
  const settings = deps.config.audit.webhook;
  if (!settings) return null;
  const timings: WebhookTimings = {
    ...DEFAULT_WEBHOOK_TIMINGS,
    timeoutMs: settings.timeoutMs,
    maxDelayMs: settings.maxBackoffMs,
    ...deps.webhookTimings,
  };
  const delivery = new WebhookDelivery({
    store: deps.store,
    sender: new WebhookSender({ url: settings.url, secret: settings.secret, timeoutMs: timings.timeoutMs }),
    logger: deps.logger,
    timings,
    clock,
    ...(deps.webhookRandom ? { random: deps.webhookRandom } : {}),
  });
  delivery.start();
  return delivery;
}

export async function createApp(deps: AppDeps): Promise<App> {
  const { config, keys, passwords, logger } = deps;
  const observed = observability(deps);
  const { metrics } = observed;
  const store = observed.store(deps.store);
  const clock = deps.clock ?? systemClock;
  const accessTokens = new AccessTokenService({
    keys,
    issuer: config.issuer,
    audience: config.audience,
    clientId: config.clientId,
    ttlMs: config.accessTokenTtlMs,
    clockToleranceSec: config.clockToleranceSec,
    clock,
  });
  // A revoked session's access tokens live at most this long: their lifetime, the leeway that
  // verification allows, and a margin for a token signed just after a racing revocation.
  const retainMs = config.accessTokenTtlMs + config.clockToleranceSec * 1000 + REVOCATION_MARGIN_MS;
  const revocations = new RevocationFeed(store, clock, retainMs);
  await revocations.start();
  metrics.watchRevocationFeed(() => revocations.isHealthy);
  // Every security event a store step appended goes to the log once the step has succeeded.
  const stopAuditLog = store.onEvents(auditLogger(logger));
  // Sessions a login ended to stay under MAX_SESSIONS_PER_USER: decided inside the login's script,
  // which records each as a session.revoked event with cause `evicted`.
  const stopEvictionCount = store.onEvents((events) => {
    for (const event of events) {
      if (event.type === 'session.revoked' && (event.details as { cause?: unknown } | null)?.cause === 'evicted') metrics.sessionsRevoked('evicted');
    }
  });
  const webhook = startWebhookDelivery(deps, clock);
  const mailer = deps.mailer ?? createMailer(config.mail, { logger, metrics });
  const throttle = new LoginThrottle(store, clock, {
    maxFailures: config.loginMaxFailures,
    maxFailuresPerAddress: config.loginMaxFailuresPerAddress,
    windowMs: config.loginFailureWindowMs,
  }, metrics);
  // The account flows hear of signups (the verification mail) and logins (NOTIFY_NEW_SIGN_IN).
  let accounts: AccountService | undefined;
  const auth = new AuthService({
    store,
    clock,
    accessTokens,
    refreshTokens: new RefreshTokenCodec(keys.refreshTagKeys),
    passwords,
    throttle,
    revocations,
    hooks: {
      onSignedUp: (user, client) => accounts?.sendSignupVerification(user, client),
      onSignedIn: (user, _session, client) => accounts?.notifySignIn(user, client),
    },
    policy: {
      signupEnabled: config.signupEnabled,
      refreshTokenTtlMs: config.refreshTokenTtlMs,
      sessionMaxLifetimeMs: config.sessionMaxLifetimeMs,
      maxSessionsPerUser: config.maxSessionsPerUser,
      refreshReuseGraceMs: config.refreshReuseGraceMs,
      defaultRoles: ['user'],
    },
    metrics,
    secondFactor: new MfaGate(store, clock),
  });
  const issuerHost = new URL(config.issuer).host;
  const factors = new FactorService({
    store,
    clock,
    auth,
    throttle,
    rp: { id: config.factors.rpId, name: issuerHost, origins: config.factors.origins },
    totpIssuer: issuerHost,
    metrics,
  });
  const identity =
    config.identity.providers.length > 0 || deps.identityProviders
      ? new IdentityService({
          store,
          clock,
          settings: config.identity,
          issuer: config.issuer,
          sessions: auth,
          signupEnabled: config.signupEnabled,
          defaultRoles: ['user'],
          logger,
          revocations,
          metrics,
          ...(deps.identityProviders ? { providers: deps.identityProviders } : {}),
        })
      : null;
  const freshAuth = new FreshAuthRule(config.accounts.freshAuthMaxAgeMs, clock);
  accounts = new AccountService({
    store,
    clock,
    auth,
    passwords,
    mailer,
    mailTokens: new MailTokenCodec(keys.refreshTagKeys),
    revocations,
    throttle,
    freshAuth,
    settings: config.accounts,
    metrics,
  });
  const admin = new AdminService({ store, clock, revocations, metrics });
  const schema = config.federation ? null : createExecutableSchema();
  const federated = config.federation ? await federationMode(config.federation, deps, clock, revocations, observed) : null;
  const operations: OperationDoor = federated
    ? await subscriptionDoor(federated, deps, clock)
    : new WsOperations(schema!, config.limits, config.production, logger);
  const apollo = createApolloServer({
    production: config.production,
    logger,
    limits: config.limits,
    plugins: observed.plugins,
    ...(schema ? { schema } : {}),
    ...(federated ? { federation: { gateway: federated.gateway, formatError: federated.formatError } } : {}),
  });
  await apollo.start();
  const contexts = new ContextBuilder({
    refreshTransport: config.refreshTokenTransport,
    accessTokens,
    revocations,
    store,
    clock,
    auth,
    metrics,
    events: new SecurityEventService(store),
    factors,
    identity,
    freshAuth,
    accounts,
    admin,
  });
  // CORS on /graphql and the WebSocket upgrade's Origin rule (contract sections 11 and 12).
  const origins = originPolicy({ origins: config.corsOrigins, issuer: config.issuer });
  const realtime = new RealtimeServer({
    settings: config.realtime,
    origins,
    trustProxy: config.trustProxy,
    maxPayloadBytes: config.limits.maxBodyBytes,
    clockToleranceSec: config.clockToleranceSec,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    contexts,
    operations,
    revocations,
    store,
    clock,
    logger,
    metrics,
  });
  await realtime.start();
  const server = createHttpServer({
    graphql: apolloEndpoint(observed.apollo(apollo)),
    contexts,
    upgrade: (req, socket, head) => realtime.handleUpgrade(req, socket, head),
    jwks: () => accessTokens.jwks(),
    ready: () => store.ping(),
    trustProxy: config.trustProxy,
    maxBodyBytes: config.limits.maxBodyBytes,
    maxBatchSize: config.limits.maxBatchSize,
    origins,
    graphiql: config.production ? null : loadGraphiQL(),
    logger,
    identity,
  });
  observed.server(server);

  return {
    server,
    realtime,
    auth,
    accessTokens,
    revocations,
    mailer,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(server.address() as AddressInfo));
      }),
    close: async () => {
      // WebSockets first: upgraded sockets would keep server.close() waiting.
      await realtime.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // In-flight requests get SHUTDOWN_TIMEOUT to finish; then their connections are cut.
      const deadline = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      deadline.unref();
      await closed;
      clearTimeout(deadline);
      await apollo.stop();
      // No request runs any more, so no mail is queued after this; those in flight get a moment.
      await mailer.close();
      await webhook?.stop();
      stopAuditLog();
      stopEvictionCount();
      await store.close();
      logger.info('stopped: requests finished, store closed');
    },
  };
}
