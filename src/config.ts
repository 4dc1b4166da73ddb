import { isIP } from 'node:net';
import path from 'node:path';
import { parseDuration } from './duration.js';
import { fail, read, show } from './settingValues.js';
import { type FactorSettings, readFactorSettings } from './factors/settings.js';
import { type IdentitySettings, readIdentitySettings } from './identity/settings.js';
import { isWebhookSecret } from './events/webhookSender.js';
import { type MailSettings, readMailSettings } from './mail/settings.js';

/** Settings, read once at start from the environment (docs/contract.md section 1). */
export interface Config {
  port: number;
  host: string;
  production: boolean;
  /** null: the embedded in-process store (refused in production). */
  redisUrl: string | null;
  redisKeyPrefix: string;
  issuer: string;
  audience: string;
  /** The `client_id` claim of access tokens (RFC 9068). */
  clientId: string;
  accessTokenTtlMs: number;
  /** Idle lifetime of a session: each refresh pushes it forward. */
  refreshTokenTtlMs: number;
  /** Absolute lifetime of a session. */
  sessionMaxLifetimeMs: number;
  /** 0 turns the grace off. */
  refreshReuseGraceMs: number;
  /** Leeway for exp, nbf and iat, in seconds (0..60). */
  clockToleranceSec: number;
  signupEnabled: boolean;
  loginMaxFailures: number;
  loginFailureWindowMs: number;
  /** Path to a JWK Set of private signing keys; null outside production: keys generated under `devKeyDir`. */
  signingKeysFile: string | null;
  /** Where development keys are kept. */
  devKeyDir: string;
  /** Which X-Forwarded-For entries to believe: none, the last N hops, or those added by these proxy addresses. */
  trustProxy: { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'addresses'; addresses: string[] };
  logLevel: LogLevel;
  /** Failed logins per client address per window before RATE_LIMITED (higher than per account). */
  loginMaxFailuresPerAddress: number;
  /** Live sessions per user: a login past it ends the user's oldest session. */
  maxSessionsPerUser: number;
  /** Where the refresh token travels: the response body, an HttpOnly cookie, or both. */
  refreshTokenTransport: RefreshTokenTransport;
  limits: RequestLimits;
  /** How long a stopping gateway waits for in-flight requests. */
  shutdownTimeoutMs: number;
  /** Federation: subgraphs composed by introspection (development), or a supergraph file (production); null: the auth schema alone. */
  federation: FederationSource | null;
  /** Where Redis is: one server (REDIS_URL), a Cluster, or a Sentinel-managed master. */
  redisTopology: RedisTopology;
  /** Acknowledge a session write only once this many replicas have it (Redis WAIT); 0: don't wait. */
  redisMinReplicasAck: number;
  /** Metrics, log format and tracing (contract section 10). */
  observability: ObservabilityConfig;
  /** Security events: how much the audit log keeps, and where it is delivered (docs/contract.md section 10). */
  audit: AuditSettings;
  /** Second factors: the passkeys' relying party (docs/contract.md section 8). */
  factors: FactorSettings;
  /** Sign-in with other identity providers (docs/contract.md section 9). */
  identity: IdentitySettings;
  /** Accounts: recovery, verification, fresh authentication (docs/contract.md section 7). */
  accounts: AccountSettings;
  /** Mail: transport, sender, templates and links (docs/contract.md section 7; src/mail/settings.ts). */
  mail: MailSettings;
  /** CORS_ORIGINS: the exact origins (normalized) allowed to call /graphql with credentials. */
  corsOrigins: string[];
  /** GraphQL over WebSocket (docs/contract.md section 12). */
  realtime: RealtimeSettings;
}

export interface RealtimeSettings {
  /** WS_CONNECTION_INIT_TIMEOUT: a connection that sends no `connection_init` within it is closed (4408). */
  initTimeoutMs: number;
  /** WS_MAX_SUBSCRIPTIONS: operations one connection may have running at once. */
  maxSubscriptions: number;
  /** SUBGRAPH_WS_URLS: where a subgraph serves graphql-transport-ws, when not its URL as ws(s)://. */
  subgraphWsUrls: Record<string, string>;
}

export type EmailVerificationMode = 'off' | 'optional' | 'required';

export interface AccountSettings {
  /** FRESH_AUTH_MAX_AGE: how recent `auth_time` must be for the fields that need fresh auth. */
  freshAuthMaxAgeMs: number;
  /** PASSWORD_RESET_TTL: how long a reset link works. */
  passwordResetTtlMs: number;
  /** EMAIL_VERIFICATION_TTL: how long a verification (or email change) link works. */
  emailVerificationTtlMs: number;
  /** EMAIL_VERIFICATION: off, optional (a mail at signup), required (unverified users may do little). */
  emailVerification: EmailVerificationMode;
  /** PASSWORD_RESET_MAX_REQUESTS per PASSWORD_RESET_WINDOW: reset mails per account (more are silently not sent). */
  passwordResetMaxRequests: number;
  passwordResetWindowMs: number;
  /** PASSWORD_RESET_MAX_REQUESTS_PER_ADDRESS per PASSWORD_RESET_WINDOW: reset requests per client address before RATE_LIMITED. */
  passwordResetMaxRequestsPerAddress: number;
  /** NOTIFY_NEW_SIGN_IN: a `new_sign_in` mail after each password login. */
  notifyNewSignIn: boolean;
}

export interface ObservabilityConfig {
  /** Where `GET /metrics` is served (its own port, never the GraphQL one); port 0: no metrics at all. */
  metricsPort: number;
  metricsHost: string;
  /** json (default): one JSON object per line, for machines; pretty: for people. */
  logFormat: 'json' | 'pretty';
  /** OTLP/HTTP collector base URL; null: no tracing (the SDK is not even loaded). */
  otlpEndpoint: string | null;
}

export interface AuditSettings {
  /** AUDIT_STREAM_MAX: each audit stream is trimmed to about this many events. */
  streamMax: number;
  /** AUDIT_WEBHOOK_URL and AUDIT_WEBHOOK_SECRET; null: no delivery. */
  webhook: WebhookSettings | null;
}

export interface WebhookSettings {
  url: string;
  /** `whsec_` and the base64 of the key, as Standard Webhooks writes it. */
  secret: string;
  /** AUDIT_WEBHOOK_TIMEOUT: how long one delivery may take before it counts as failed. */
  timeoutMs: number;
  /** AUDIT_WEBHOOK_MAX_BACKOFF: the longest wait between two attempts of one event. */
  maxBackoffMs: number;
}

export type FederationSource =
  | { kind: 'subgraphs'; subgraphs: { name: string; url: string }[] }
  | { kind: 'supergraphFile'; path: string };

export type RedisTopology =
  | { kind: 'single' }
  | { kind: 'cluster'; nodes: HostPort[] }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string };

export interface HostPort {
  host: string;
  port: number;
}

export type RefreshTokenTransport = 'body' | 'cookie' | 'both';

/** Bounds on what one HTTP request may ask; over any of them: BAD_USER_INPUT before any resolver runs. */
export interface RequestLimits {
  maxBodyBytes: number;
  maxDocumentBytes: number;
  maxTokens: number;
  maxDepth: number;
  maxAliases: number;
  maxRootFields: number;
  maxDirectives: number;
  /** 1: batched requests are refused; N > 1: batches of up to N operations. */
  maxBatchSize: number;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

type Env = Record<string, string | undefined>;

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Reads the settings from `env` (docs/contract.md section 1), in the order of its table.
 * The only place that looks at environment variables: callers pass `process.env`.
 * Throws ConfigError, whose message is one line naming the variable, on the first problem.
 */
export function loadConfig(env: Env, cwd: string = process.cwd()): Config {
  const port = readPort(env);
  const host = readHost(env);
  const production = env.NODE_ENV === 'production';

  const redisUrl = readRedisUrl(env);
  const redisTopology = readRedisTopology(env);
  if (production && redisUrl === null && redisTopology.kind === 'single') {
    fail('REDIS_URL is required when NODE_ENV=production (the embedded store keeps sessions in one process only)');
  }
  const redisKeyPrefix = readKeyPrefix(env);
  const issuer = readIssuer(env);
  const audience = readToken(env, 'AUTH_AUDIENCE', 'tessera');
  const clientId = readToken(env, 'AUTH_CLIENT_ID', 'tessera');

  const accessTokenTtlMs = readDuration(env, 'ACCESS_TOKEN_TTL', '15m', '1s', '24h');
  const refreshTokenTtlMs = readDuration(env, 'REFRESH_TOKEN_TTL', '30d', '1s');
  if (refreshTokenTtlMs <= accessTokenTtlMs) {
    fail(
      `REFRESH_TOKEN_TTL (${formatDuration(refreshTokenTtlMs)}) must be longer than ACCESS_TOKEN_TTL (${formatDuration(accessTokenTtlMs)})`,
    );
  }
  const sessionMaxLifetimeMs = readDuration(env, 'SESSION_MAX_LIFETIME', '90d', '1s');
  if (sessionMaxLifetimeMs < refreshTokenTtlMs) {
    fail(
      `SESSION_MAX_LIFETIME (${formatDuration(sessionMaxLifetimeMs)}) must be at least REFRESH_TOKEN_TTL (${formatDuration(refreshTokenTtlMs)})`,
    );
  }
  const refreshReuseGraceMs = readDuration(env, 'REFRESH_REUSE_GRACE', '10s', '0s', '60s');
  const clockToleranceSec = readDuration(env, 'CLOCK_TOLERANCE', '5s', '0s', '60s') / SECOND;
  const signupEnabled = readBoolean(env, 'SIGNUP_ENABLED', !production);
  const loginMaxFailures = readPositiveInteger(env, 'LOGIN_MAX_FAILURES', 10);
  const loginFailureWindowMs = readDuration(env, 'LOGIN_FAILURE_WINDOW', '15m', '1s');

  const signingKeys = read(env, 'SIGNING_KEYS');
  if (production && signingKeys === undefined) {
    fail('SIGNING_KEYS is required when NODE_ENV=production (generate keys with: npx tessera keys generate)');
  }
  const signingKeysFile = signingKeys === undefined ? null : path.resolve(cwd, signingKeys);

  return {
    port,
    host,
    production,
    redisUrl,
    redisKeyPrefix,
    issuer,
    audience,
    clientId,
    accessTokenTtlMs,
    refreshTokenTtlMs,
    sessionMaxLifetimeMs,
    refreshReuseGraceMs,
    clockToleranceSec,
    signupEnabled,
    loginMaxFailures,
    loginFailureWindowMs,
    signingKeysFile,
    devKeyDir: path.resolve(cwd, '.tessera'),
    trustProxy: readTrustProxy(env),
    logLevel: readChoice(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    loginMaxFailuresPerAddress: readPositiveInteger(env, 'LOGIN_MAX_FAILURES_PER_ADDRESS', 100),
    maxSessionsPerUser: readPositiveInteger(env, 'MAX_SESSIONS_PER_USER', 100),
    refreshTokenTransport: readChoice(env, 'REFRESH_TOKEN_TRANSPORT', ['body', 'cookie', 'both'] as const, 'body'),
    limits: {
      maxBodyBytes: readPositiveInteger(env, 'MAX_BODY_BYTES', 65_536),
      maxDocumentBytes: readPositiveInteger(env, 'MAX_DOCUMENT_BYTES', 16_384),
      maxTokens: readPositiveInteger(env, 'MAX_TOKENS', 2_000),
      maxDepth: readPositiveInteger(env, 'MAX_DEPTH', 12),
      maxAliases: readPositiveInteger(env, 'MAX_ALIASES', 15),
      maxRootFields: readPositiveInteger(env, 'MAX_ROOT_FIELDS', 15),
      maxDirectives: readPositiveInteger(env, 'MAX_DIRECTIVES', 15),
      maxBatchSize: readPositiveInteger(env, 'MAX_BATCH_SIZE', 1),
    },
    shutdownTimeoutMs: readDuration(env, 'SHUTDOWN_TIMEOUT', '10s', '0s', '5m'),
    federation: readFederation(env, cwd),
    redisTopology,
    redisMinReplicasAck: readWholeNumber(env, 'REDIS_MIN_REPLICAS_ACK', 0, 0),
    observability: readObservability(env, host),
    audit: readAuditSettings(env),
    identity: readIdentitySettings(env, cwd, production, readDuration(env, 'IDENTITY_PROVIDER_TIMEOUT', '10s', '1s', '60s')),
    accounts: readAccountSettings(env),
    mail: readMailSettings(env, production, issuer, cwd),
    corsOrigins: readCorsOrigins(env),
    factors: readFactorSettings(env, issuer),
    realtime: readRealtimeSettings(env),
  };
}

/** WS_CONNECTION_INIT_TIMEOUT (default 5s), WS_MAX_SUBSCRIPTIONS (default 20), SUBGRAPH_WS_URLS. */
function readRealtimeSettings(env: Env): RealtimeSettings {
  return {
    initTimeoutMs: readDuration(env, 'WS_CONNECTION_INIT_TIMEOUT', '5s', '1s', '5m'),
    maxSubscriptions: readPositiveInteger(env, 'WS_MAX_SUBSCRIPTIONS', 20),
    subgraphWsUrls: readSubgraphWsUrls(env),
  };
}

/** SUBGRAPH_WS_URLS=name=ws://host/graphql,…: a ws:// or wss:// URL per subgraph name. */
function readSubgraphWsUrls(env: Env): Record<string, string> {
  const raw = read(env, 'SUBGRAPH_WS_URLS');
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const entry of raw.split(',').map((e) => e.trim()).filter(Boolean)) {
    const at = entry.indexOf('=');
    const name = at > 0 ? entry.slice(0, at) : '';
    const url = at > 0 ? entry.slice(at + 1) : '';
    let valid = false;
    try {
      const protocol = new URL(url).protocol;
      valid = protocol === 'ws:' || protocol === 'wss:';
    } catch {
      valid = false;
    }
    if (!name || !valid) fail(`SUBGRAPH_WS_URLS: ${show(entry)} must be name=ws://… or name=wss://…`);
    out[name] = url;
  }
  return out;
}

/**
 * CORS_ORIGINS: comma-separated exact origins (`scheme://host[:port]`, http or https, no path,
 * no trailing slash). `*` and `null` are refused: credentials need exact origins, and `null` is
 * what sandboxed frames and file: pages send. Normalized as browsers send them (lower case, no
 * default port).
 */
function readCorsOrigins(env: Env): string[] {
  const raw = read(env, 'CORS_ORIGINS');
  if (raw === undefined) return [];
  const origins: string[] = [];
  for (const entry of raw.split(',').map((part) => part.trim())) {
    if (entry === '') continue;
    if (entry === '*') fail('CORS_ORIGINS: "*" is not allowed (credentials need exact origins): list each origin, e.g. https://app.example.com');
    if (entry.toLowerCase() === 'null') fail('CORS_ORIGINS: "null" is not allowed (sandboxed frames and file: pages send it; any page can)');
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      // reported below
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || HAS_SPACE_OR_CONTROL.test(entry) || entry.includes('*')) {
      fail(`CORS_ORIGINS: ${show(entry)} is not an http(s) origin (scheme://host[:port], e.g. https://app.example.com)`);
    }
    if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '' || entry.endsWith('/')) {
      fail(`CORS_ORIGINS: ${show(entry)} is not a bare origin: write ${url.origin} (no path, query or trailing slash)`);
    }
    if (!origins.includes(url.origin)) origins.push(url.origin);
  }
  return origins;
}

/** METRICS_PORT (default 9464, 0 off), METRICS_HOST (default HOST), LOG_FORMAT, OTEL_EXPORTER_OTLP_ENDPOINT. */
function readObservability(env: Env, host: string): ObservabilityConfig {
  const rawPort = read(env, 'METRICS_PORT');
  const metricsPort = rawPort === undefined ? 9464 : WHOLE_NUMBER.test(rawPort) ? Number(rawPort) : NaN;
  if (!(metricsPort >= 0 && metricsPort <= 65535)) fail(`METRICS_PORT: ${show(rawPort!)} is not a port number (1 to 65535, or 0 for no metrics)`);
  const metricsHost = read(env, 'METRICS_HOST') ?? host;
  if (HAS_SPACE_OR_CONTROL.test(metricsHost)) fail(`METRICS_HOST: ${show(metricsHost)} is not a host name or address`);
  const endpoint = read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (endpoint !== undefined && (!/^https?:\/\//.test(endpoint) || !URL.canParse(endpoint) || HAS_SPACE_OR_CONTROL.test(endpoint))) {
    // Not echoed: a collector URL may carry credentials.
    fail('OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL (the collector\'s OTLP/HTTP base, e.g. http://localhost:4318)');
  }
  return {
    metricsPort,
    metricsHost,
    logFormat: readChoice(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
    otlpEndpoint: endpoint ?? null,
  };
}

/** AUDIT_*: the audit stream's bound and the webhook delivery (both URL and secret, or neither). */
/** Section 7's settings (the mail transport's are the mail module's). */
function readAccountSettings(env: Env): AccountSettings {
  return {
    freshAuthMaxAgeMs: readDuration(env, 'FRESH_AUTH_MAX_AGE', '5m', '1s', '30d'),
    passwordResetTtlMs: readDuration(env, 'PASSWORD_RESET_TTL', '30m', '1m', '7d'),
    emailVerificationTtlMs: readDuration(env, 'EMAIL_VERIFICATION_TTL', '24h', '1m', '30d'),
    emailVerification: readChoice(env, 'EMAIL_VERIFICATION', ['off', 'optional', 'required'] as const, 'optional'),
    passwordResetMaxRequests: readPositiveInteger(env, 'PASSWORD_RESET_MAX_REQUESTS', 3),
    passwordResetWindowMs: readDuration(env, 'PASSWORD_RESET_WINDOW', '15m', '1s', '30d'),
    passwordResetMaxRequestsPerAddress: readPositiveInteger(env, 'PASSWORD_RESET_MAX_REQUESTS_PER_ADDRESS', 30),
    notifyNewSignIn: readBoolean(env, 'NOTIFY_NEW_SIGN_IN', false),
  };
}

function readAuditSettings(env: Env): AuditSettings {
  const streamMax = readPositiveInteger(env, 'AUDIT_STREAM_MAX', 100_000);
  const url = read(env, 'AUDIT_WEBHOOK_URL');
  const secret = read(env, 'AUDIT_WEBHOOK_SECRET');
  const timeoutMs = readDuration(env, 'AUDIT_WEBHOOK_TIMEOUT', '5s', '1s', '60s');
  const maxBackoffMs = readDuration(env, 'AUDIT_WEBHOOK_MAX_BACKOFF', '5m', '1s', '24h');
  if (url === undefined && secret === undefined) return { streamMax, webhook: null };
  if (url === undefined) fail('AUDIT_WEBHOOK_SECRET is set but AUDIT_WEBHOOK_URL is not (set both, or neither)');
  if (secret === undefined) fail('AUDIT_WEBHOOK_URL is set but AUDIT_WEBHOOK_SECRET is not (every delivery is signed; set both, or neither)');
  if (!/^https?:\/\//.test(url) || !URL.canParse(url) || HAS_SPACE_OR_CONTROL.test(url)) {
    // Not echoed: a URL may carry credentials.
    fail('AUDIT_WEBHOOK_URL is not an http(s) URL (e.g. https://hooks.example.com/tessera)');
  }
  checkWebhookSecret(secret);
  return { streamMax, webhook: { url, secret, timeoutMs, maxBackoffMs } };
}

/** Standard Webhooks' form: `whsec_` and the base64 of 24 to 64 random bytes. Never echoed. */
function checkWebhookSecret(secret: string): void {
  if (!isWebhookSecret(secret)) {
    fail('AUDIT_WEBHOOK_SECRET must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))');
  }
}

function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [['d', DAY], ['h', HOUR], ['m', MINUTE]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms / SECOND}s`;
}

const WHOLE_NUMBER = /^\d+$/;
const HAS_SPACE_OR_CONTROL = /[\s\p{Cc}]/u;

function readPort(env: Env): number {
  const raw = read(env, 'PORT');
  if (raw === undefined) return 4000;
  const port = WHOLE_NUMBER.test(raw) ? Number(raw) : NaN;
  if (!(port >= 1 && port <= 65535)) fail(`PORT: ${show(raw)} is not a port number (1 to 65535)`);
  return port;
}

function readHost(env: Env): string {
  const raw = read(env, 'HOST');
  if (raw === undefined) return '0.0.0.0';
  if (HAS_SPACE_OR_CONTROL.test(raw)) fail(`HOST: ${show(raw)} is not a host name or address`);
  return raw;
}

function readRedisUrl(env: Env): string | null {
  const raw = read(env, 'REDIS_URL');
  if (raw === undefined) return null;
  // The value is not echoed: it may carry a password.
  if (!/^rediss?:\/\//.test(raw)) fail('REDIS_URL must start with redis:// or rediss://');
  try {
    new URL(raw);
  } catch {
    fail('REDIS_URL is not a valid URL (e.g. redis://redis:6379 or rediss://user:password@host:6380/0)');
  }
  return raw;
}

function readKeyPrefix(env: Env): string {
  const raw = env.REDIS_KEY_PREFIX;
  if (raw === undefined) return 'tessera:';
  if (raw === '') fail('REDIS_KEY_PREFIX must not be empty (every key the gateway writes starts with it)');
  if (HAS_SPACE_OR_CONTROL.test(raw)) fail(`REDIS_KEY_PREFIX: ${show(raw)} must not contain whitespace`);
  if (/[{}]/.test(raw)) {
    fail(`REDIS_KEY_PREFIX: ${show(raw)} must not contain { or } (the gateway's keys use Redis Cluster hash tags)`);
  }
  return raw;
}

function readIssuer(env: Env): string {
  const raw = read(env, 'AUTH_ISSUER');
  if (raw === undefined) return 'http://localhost:4000';
  let protocol = '';
  try {
    protocol = new URL(raw).protocol;
  } catch {
    // reported below
  }
  if ((protocol !== 'https:' && protocol !== 'http:') || HAS_SPACE_OR_CONTROL.test(raw)) {
    fail(`AUTH_ISSUER: ${show(raw)} is not an http(s) URL (e.g. https://auth.example.com)`);
  }
  return raw;
}

/** A non-empty value without whitespace. */
function readToken(env: Env, name: string, fallback: string): string {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (HAS_SPACE_OR_CONTROL.test(raw)) fail(`${name}: ${show(raw)} must not contain whitespace`);
  return raw;
}

/** A constant of this file, written as the contract writes it. */
function constant(text: string): number {
  const ms = parseDuration(text);
  if (ms === null) throw new Error(`bad duration constant ${text}`);
  return ms;
}

/** Default and bounds are written as in the contract (`'15m'`), and shown so in messages. */
function readDuration(env: Env, name: string, fallback: string, min: string, max?: string): number {
  const raw = read(env, name);
  if (raw === undefined) return constant(fallback);
  const ms = parseDuration(raw);
  if (ms === null) fail(`${name}: ${show(raw)} is not a duration (use seconds, or 15m / 30d style)`);
  if (max !== undefined && (ms < constant(min) || ms > constant(max))) {
    fail(`${name}: ${show(raw)} must be between ${min} and ${max}`);
  }
  if (ms < constant(min)) fail(`${name}: ${show(raw)} must be at least ${min}`);
  return ms;
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  if (lower === 'true' || lower === '1') return true;
  if (lower === 'false' || lower === '0') return false;
  return fail(`${name}: ${show(raw)} must be true, false, 1 or 0`);
}

function readPositiveInteger(env: Env, name: string, fallback: number): number {
  return readWholeNumber(env, name, fallback, 1);
}

function readWholeNumber(env: Env, name: string, fallback: number, min: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = WHOLE_NUMBER.test(raw) ? Number(raw) : NaN;
  if (!(Number.isSafeInteger(value) && value >= min)) fail(`${name}: ${show(raw)} must be a whole number of at least ${min}`);
  return value;
}

function readTrustProxy(env: Env): Config['trustProxy'] {
  const raw = read(env, 'TRUST_PROXY');
  if (raw === undefined || raw.toLowerCase() === 'false' || raw === '0') return { kind: 'none' };
  if (WHOLE_NUMBER.test(raw)) {
    const hops = Number(raw);
    if (!Number.isSafeInteger(hops)) fail(`TRUST_PROXY: ${show(raw)} is not a usable hop count`);
    return { kind: 'hops', hops };
  }
  if (raw.toLowerCase() === 'true') {
    fail('TRUST_PROXY: "true" would believe any address a client sends; give a hop count or the proxies\' addresses');
  }
  const addresses = raw.split(',').map((part) => part.trim());
  for (const address of addresses) {
    if (isIP(address) === 0) {
      fail(
        `TRUST_PROXY: ${show(address)} is not an IP address (use a hop count, or a comma-separated list of proxy addresses)`,
      );
    }
  }
  return { kind: 'addresses', addresses };
}

/** One of a fixed list of words, in any case. */
function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const choice = choices.find((c) => c === raw.toLowerCase());
  if (!choice) fail(`${name}: ${show(raw)} is not one of ${choices.join(', ')}`);
  return choice;
}

const SUBGRAPH_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

function readFederation(env: Env, cwd: string): FederationSource | null {
  const list = read(env, 'SUBGRAPHS');
  const file = read(env, 'SUPERGRAPH_FILE');
  if (list !== undefined && file !== undefined) fail('SUBGRAPHS and SUPERGRAPH_FILE cannot both be set (choose one way to build the supergraph)');
  if (file !== undefined) return { kind: 'supergraphFile', path: path.resolve(cwd, file) };
  if (list === undefined) return null;
  const subgraphs = list.split(',').map((entry) => {
    const at = entry.indexOf('=');
    const name = entry.slice(0, at).trim();
    const url = entry.slice(at + 1).trim();
    if (at <= 0 || !SUBGRAPH_NAME.test(name)) fail(`SUBGRAPHS: ${show(entry)} is not name=url`);
    if (name === 'auth') fail('SUBGRAPHS: the name "auth" is the gateway\'s own subgraph');
    if (!/^https?:\/\//.test(url) || !URL.canParse(url)) fail(`SUBGRAPHS: ${show(url)} (subgraph ${name}) is not an http(s) URL`);
    return { name, url };
  });
  if (new Set(subgraphs.map((s) => s.name)).size !== subgraphs.length) fail('SUBGRAPHS: a subgraph name appears twice');
  return { kind: 'subgraphs', subgraphs };
}

function readHostPorts(name: string, raw: string): HostPort[] {
  return raw.split(',').map((entry) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || !(port >= 1 && port <= 65535)) fail(`${name}: ${show(entry)} is not host:port`);
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

function readRedisTopology(env: Env): RedisTopology {
  const cluster = read(env, 'REDIS_CLUSTER_NODES');
  const sentinels = read(env, 'REDIS_SENTINELS');
  if (cluster !== undefined && sentinels !== undefined) fail('REDIS_CLUSTER_NODES and REDIS_SENTINELS cannot both be set');
  if (cluster !== undefined) return { kind: 'cluster', nodes: readHostPorts('REDIS_CLUSTER_NODES', cluster) };
  if (sentinels === undefined) return { kind: 'single' };
  const name = read(env, 'REDIS_SENTINEL_NAME');
  if (name === undefined) fail('REDIS_SENTINEL_NAME is required with REDIS_SENTINELS (the name of the master the sentinels watch)');
  return { kind: 'sentinel', sentinels: readHostPorts('REDIS_SENTINELS', sentinels), name };
}
