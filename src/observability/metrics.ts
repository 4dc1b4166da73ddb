import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { MAIL_KINDS, type MailKind } from '../mail/types.js';
import { FastCounter, FastHistogram } from './fastMetrics.js';

/**
 * The gateway's Prometheus metrics (contract section 10). Names and labels are stable; every
 * label value is one of the fixed words below, so nothing a client sends (an email, a token,
 * an operation name) can ever become a label.
 *
 * Callers increment where the decision is made (the rotation result, the throttle, the context
 * builder) through the `Metrics` interface; `noMetrics` is the default, so code built without
 * metrics (tests, the CLI) needs nothing. Each gateway gets a registry of its own, never
 * prom-client's global one, so several gateways in one process do not clash.
 */

export const LOGIN_OUTCOMES = ['success', 'invalid_credentials', 'rate_limited', 'mfa_required', 'disabled'] as const;
export const REFRESH_OUTCOMES = ['rotated', 'grace', 'reused', 'invalid', 'expired'] as const;
export const REVOCATION_CAUSES = ['logout', 'all', 'reuse', 'admin', 'password_reset', 'disabled', 'deleted', 'evicted'] as const;
/** Which limit refused: failed logins per account, or per client address. */
export const RATE_LIMITS = ['login_account', 'login_address', 'password_reset_address'] as const;
/** valid: signature and claims accepted and the session live; revoked: a genuine token of an ended session. */
export const TOKEN_RESULTS = ['valid', 'invalid', 'expired', 'revoked'] as const;
/** hit: answered from the cache of verified tokens (no signature check). */
export const TOKEN_CACHE = ['hit', 'miss'] as const;
/** unknown: the request never got as far as an operation (unparsable, invalid). */
export const OPERATION_TYPES = ['query', 'mutation', 'subscription', 'unknown'] as const;
/** The kinds of docs/contract.md section 7 (src/mail/types.ts). */
export { MAIL_KINDS };
/** sent: accepted by the transport; retried: an attempt failed and another follows; failed: given up (or never queued). */
export const MAIL_OUTCOMES = ['sent', 'retried', 'failed'] as const;
export const MFA_FACTORS = ['totp', 'webauthn', 'recovery_code'] as const;
export const MFA_OUTCOMES = ['success', 'failure', 'rate_limited'] as const;

export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];
export type RefreshOutcome = (typeof REFRESH_OUTCOMES)[number];
export type RevocationCause = (typeof REVOCATION_CAUSES)[number];
export type RateLimit = (typeof RATE_LIMITS)[number];
export type TokenResult = (typeof TOKEN_RESULTS)[number];
export type TokenCache = (typeof TOKEN_CACHE)[number];
export type OperationType = (typeof OPERATION_TYPES)[number];
export type { MailKind };
export type MailOutcome = (typeof MAIL_OUTCOMES)[number];
export type MfaFactor = (typeof MFA_FACTORS)[number];
export type MfaOutcome = (typeof MFA_OUTCOMES)[number];

/** What the rest of the gateway records. Every method is cheap and never throws. */
export interface Metrics {
  /** False for `noMetrics`: callers may skip work that only feeds metrics. */
  readonly enabled: boolean;
  login(outcome: LoginOutcome): void;
  refresh(outcome: RefreshOutcome): void;
  sessionsRevoked(cause: RevocationCause, count?: number): void;
  rateLimited(limit: RateLimit): void;
  accessTokenVerified(result: TokenResult, cache: TokenCache): void;
  graphqlRequest(operationType: OperationType, seconds: number): void;
  /** `command`: the store verb (a method name of the Store: `rotateSession`, `getSessions` …). */
  storeCommand(command: string, seconds: number): void;
  mailSent(kind: MailKind, outcome: MailOutcome): void;
  mfaAttempt(factor: MfaFactor, outcome: MfaOutcome): void;
  /** +1 when a WebSocket connection opens, -1 when it closes. */
  wsConnections(delta: number): void;
  /** Read at every scrape: is this instance's revocation feed healthy? */
  watchRevocationFeed(healthy: () => boolean): void;
  /** Read at every scrape: security events appended but not yet delivered to AUDIT_WEBHOOK_URL. */
  watchAuditWebhookBacklog(backlog: () => number | Promise<number>): void;
}

const nothing = () => {};

/** Records nothing: the default wherever no metrics were given (and with METRICS_PORT=0). */
export const noMetrics: Metrics = {
  enabled: false,
  login: nothing,
  refresh: nothing,
  sessionsRevoked: nothing,
  rateLimited: nothing,
  accessTokenVerified: nothing,
  graphqlRequest: nothing,
  storeCommand: nothing,
  mailSent: nothing,
  mfaAttempt: nothing,
  wsConnections: nothing,
  watchRevocationFeed: nothing,
  watchAuditWebhookBacklog: nothing,
};

/** Seconds, from 0.5 ms: a warm request takes well under a millisecond. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Seconds, from 100 µs: one Redis round trip on a local network. */
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

interface Incrementable {
  inc(value?: number): void;
}
interface Observable {
  observe(value: number): void;
}

/**
 * One series per label value, made once: the hot path never builds a label object. Counters'
 * series show from the first scrape (at 0), so rates and alerts work before the first event.
 */
function children<V extends string, C>(values: readonly V[], make: (value: V) => C): Record<V, C> {
  return Object.fromEntries(values.map((value) => [value, make(value)])) as Record<V, C>;
}

/** The metric names this module registers, besides Node's defaults (for the dashboards' test). */
export const METRIC_NAMES = [
  'tessera_logins_total',
  'tessera_refreshes_total',
  'tessera_sessions_revoked_total',
  'tessera_rate_limited_total',
  'tessera_access_tokens_verified_total',
  'tessera_graphql_request_duration_seconds',
  'tessera_store_command_duration_seconds',
  'tessera_revocation_feed_healthy',
  'tessera_mail_sent_total',
  'tessera_mfa_attempts_total',
  'tessera_ws_connections',
  'tessera_audit_webhook_backlog',
] as const;

/** Prometheus metrics on a registry of their own, with Node's default metrics. */
export class PrometheusMetrics implements Metrics {
  readonly enabled = true;
  readonly registry = new Registry();
  private readonly logins: Record<LoginOutcome, Incrementable>;
  private readonly refreshes: Record<RefreshOutcome, Incrementable>;
  private readonly revoked: Record<RevocationCause, Incrementable>;
  private readonly limited: Record<RateLimit, Incrementable>;
  private readonly tokens: Record<TokenResult, Record<TokenCache, Incrementable>>;
  private readonly requests: Record<OperationType, Observable>;
  private readonly storeHistogram: FastHistogram;
  private readonly storeCommands = new Map<string, Observable>();
  private readonly mail: Record<MailKind, Record<MailOutcome, Incrementable>>;
  private readonly mfa: Record<MfaFactor, Record<MfaOutcome, Incrementable>>;
  private readonly ws: Gauge;
  private feedHealthy: () => boolean = () => false;
  private webhookBacklog: () => number | Promise<number> = () => 0;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const logins = new FastCounter('tessera_logins_total', 'Logins, by outcome.', this.registry);
    this.logins = children(LOGIN_OUTCOMES, (outcome) => logins.labels({ outcome }));

    const refreshes = new FastCounter('tessera_refreshes_total', 'Refresh-token presentations, by what the rotation decided (reused: a replay that ended the session).', this.registry);
    this.refreshes = children(REFRESH_OUTCOMES, (outcome) => refreshes.labels({ outcome }));

    const revoked = new FastCounter('tessera_sessions_revoked_total', 'Sessions ended, by cause.', this.registry);
    this.revoked = children(REVOCATION_CAUSES, (cause) => revoked.labels({ cause }));

    const limited = new FastCounter('tessera_rate_limited_total', 'Requests refused with RATE_LIMITED, by the limit that refused.', this.registry);
    this.limited = children(RATE_LIMITS, (limit) => limited.labels({ limit }));

    const tokens = new FastCounter('tessera_access_tokens_verified_total', 'Access tokens checked, by result, and whether the cache of verified tokens answered.', this.registry);
    this.tokens = children(TOKEN_RESULTS, (result) => children(TOKEN_CACHE, (cache) => tokens.labels({ result, cache })));

    const requests = new FastHistogram(
      'tessera_graphql_request_duration_seconds',
      'GraphQL requests, from Apollo receiving them to the response, by operation type.',
      REQUEST_BUCKETS,
      this.registry,
    );
    this.requests = children(OPERATION_TYPES, (operation_type) => requests.labels({ operation_type }));

    this.storeHistogram = new FastHistogram(
      'tessera_store_command_duration_seconds',
      'Session-store commands (one store verb, usually one Redis round trip), by command.',
      STORE_BUCKETS,
      this.registry,
    );

    const feed = () => this.feedHealthy();
    new Gauge({
      name: 'tessera_revocation_feed_healthy',
      help: "1 while this instance's revocation feed is subscribed and answering its heartbeat, else 0.",
      registers,
      collect() {
        this.set(feed() ? 1 : 0);
      },
    });

    const mail = new FastCounter('tessera_mail_sent_total', 'Mail attempts, by kind and outcome (sent; retried: an attempt failed, another follows; failed: given up).', this.registry);
    this.mail = children(MAIL_KINDS, (kind) => children(MAIL_OUTCOMES, (outcome) => mail.labels({ kind, outcome })));

    const mfa = new FastCounter('tessera_mfa_attempts_total', 'Second-factor checks, by factor and outcome.', this.registry);
    this.mfa = children(MFA_FACTORS, (factor) => children(MFA_OUTCOMES, (outcome) => mfa.labels({ factor, outcome })));

    this.ws = new Gauge({ name: 'tessera_ws_connections', help: 'Open GraphQL WebSocket connections on this instance.', registers });

    const backlog = () => this.webhookBacklog();
    new Gauge({
      name: 'tessera_audit_webhook_backlog',
      help: 'Security events recorded but not yet delivered to AUDIT_WEBHOOK_URL (fed by the webhook delivery; 0 without it).',
      registers,
      async collect() {
        try {
          this.set(await backlog());
        } catch {
          // The store did not answer: the last value stands, and the scrape still succeeds.
        }
      },
    });
  }

  login(outcome: LoginOutcome): void {
    this.logins[outcome].inc();
  }

  refresh(outcome: RefreshOutcome): void {
    this.refreshes[outcome].inc();
  }

  sessionsRevoked(cause: RevocationCause, count = 1): void {
    if (count > 0) this.revoked[cause].inc(count);
  }

  rateLimited(limit: RateLimit): void {
    this.limited[limit].inc();
  }

  accessTokenVerified(result: TokenResult, cache: TokenCache): void {
    this.tokens[result][cache].inc();
  }

  graphqlRequest(operationType: OperationType, seconds: number): void {
    this.requests[operationType].observe(seconds);
  }

  storeCommand(command: string, seconds: number): void {
    let child = this.storeCommands.get(command);
    if (!child) {
      child = this.storeHistogram.labels({ command });
      this.storeCommands.set(command, child);
    }
    child.observe(seconds);
  }

  mailSent(kind: MailKind, outcome: MailOutcome): void {
    this.mail[kind][outcome].inc();
  }

  mfaAttempt(factor: MfaFactor, outcome: MfaOutcome): void {
    this.mfa[factor][outcome].inc();
  }

  wsConnections(delta: number): void {
    this.ws.inc(delta);
  }

  watchRevocationFeed(healthy: () => boolean): void {
    this.feedHealthy = healthy;
  }

  watchAuditWebhookBacklog(backlog: () => number | Promise<number>): void {
    this.webhookBacklog = backlog;
  }
}
