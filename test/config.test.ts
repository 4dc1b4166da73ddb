import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { parseDuration } from '../src/duration.js';
import { ConfigError } from '../src/errors.js';

const CWD = path.resolve('/srv/tessera');
const S = 1_000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

const PROD = {
  NODE_ENV: 'production',
  REDIS_URL: 'redis://redis:6379',
  SIGNING_KEYS: '/run/secrets/signing-keys.json',
};

function load(env: Record<string, string | undefined>) {
  return loadConfig(env, CWD);
}

/** The ConfigError thrown for `env`, checked to be one line naming `variable`. */
function configError(env: Record<string, string | undefined>, variable: string): string {
  let caught: unknown;
  try {
    load(env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const message = (caught as ConfigError).message;
  expect(message).toContain(variable);
  expect(message).not.toMatch(/[\n\r\u2028\u2029]/);
  return message;
}

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['900', 900 * S],
    ['10s', 10 * S],
    ['15m', 15 * M],
    ['24h', 24 * H],
    ['30d', 30 * D],
    ['0s', 0],
    ['007', 7 * S],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', ' ', '-5', '-5m', '1.5', '1.5h', '15 m', ' 15m', '15m ', '15M', '15x', 'm', '15ms', '1h30m', '+5', '1e3', '0x10', '99999999999999999999d'])(
    '%j is not a duration',
    (text) => {
      expect(parseDuration(text)).toBeNull();
    },
  );
});

describe('loadConfig defaults', () => {
  it('outside production', () => {
    expect(load({})).toEqual({
      port: 4000,
      host: '0.0.0.0',
      production: false,
      redisUrl: null,
      redisKeyPrefix: 'tessera:',
      issuer: 'http://localhost:4000',
      audience: 'tessera',
      clientId: 'tessera',
      accessTokenTtlMs: 15 * M,
      refreshTokenTtlMs: 30 * D,
      sessionMaxLifetimeMs: 90 * D,
      refreshReuseGraceMs: 10 * S,
      clockToleranceSec: 5,
      signupEnabled: true,
      loginMaxFailures: 10,
      loginFailureWindowMs: 15 * M,
      signingKeysFile: null,
      devKeyDir: path.join(CWD, '.tessera'),
      trustProxy: { kind: 'none' },
      logLevel: 'info',
      loginMaxFailuresPerAddress: 100,
      maxSessionsPerUser: 100,
      refreshTokenTransport: 'body',
      limits: {
        maxBodyBytes: 65_536,
        maxDocumentBytes: 16_384,
        maxTokens: 2_000,
        maxDepth: 12,
        maxAliases: 15,
        maxRootFields: 15,
        maxDirectives: 15,
        maxBatchSize: 1,
      },
      shutdownTimeoutMs: 10 * S,
      federation: null,
      redisTopology: { kind: 'single' },
      redisMinReplicasAck: 0,
      observability: { metricsPort: 9464, metricsHost: '0.0.0.0', logFormat: 'json', otlpEndpoint: null },
      audit: { streamMax: 100_000, webhook: null },
      accounts: {
        freshAuthMaxAgeMs: 5 * 60_000,
        passwordResetTtlMs: 30 * 60_000,
        emailVerificationTtlMs: 24 * 3_600_000,
        emailVerification: 'optional',
        passwordResetMaxRequests: 3,
        passwordResetWindowMs: 15 * 60_000,
        passwordResetMaxRequestsPerAddress: 30,
        notifyNewSignIn: false,
      },
      identity: { providers: [], redirectUris: [], providerTimeoutMs: 10_000 },
      mail: {
        transport: { kind: 'log' },
        from: '"Tessera" <no-reply@localhost>',
        productName: 'Tessera',
        templatesDir: null,
        templates: expect.objectContaining({ password_reset: expect.objectContaining({ subject: 'Reset your {{productName}} password' }) }),
        links: {
          password_reset: 'http://localhost:4000/reset-password?token={token}',
          email_verification: 'http://localhost:4000/verify-email?token={token}',
          email_change: 'http://localhost:4000/confirm-email-change?token={token}',
        },
        sendTimeoutMs: 10_000,
      },
      corsOrigins: [],
      factors: { rpId: 'localhost', origins: ['http://localhost:4000'] },
      realtime: { initTimeoutMs: 5_000, maxSubscriptions: 20, subgraphWsUrls: {} },
    });
  });

  it('in production: signup off, production on', () => {
    const config = load(PROD);
    expect(config.production).toBe(true);
    expect(config.signupEnabled).toBe(false);
    expect(config.redisUrl).toBe('redis://redis:6379');
    expect(config.signingKeysFile).toBe(path.resolve('/run/secrets/signing-keys.json'));
  });

  it('an empty value counts as unset', () => {
    expect(load({ PORT: '', ACCESS_TOKEN_TTL: '', REDIS_URL: '', TRUST_PROXY: '' })).toMatchObject({
      port: 4000,
      accessTokenTtlMs: 15 * M,
      redisUrl: null,
      trustProxy: { kind: 'none' },
    });
  });

  it('other NODE_ENV values are not production', () => {
    expect(load({ NODE_ENV: 'development' }).production).toBe(false);
    expect(load({ NODE_ENV: 'Production' }).production).toBe(false);
  });

  it('never reads process.env', () => {
    const saved = process.env.PORT;
    process.env.PORT = '5999';
    try {
      expect(load({}).port).toBe(4000);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });
});

describe('loadConfig parses each variable', () => {
  it.each([
    [{ PORT: '8080' }, { port: 8080 }],
    [{ PORT: '1' }, { port: 1 }],
    [{ PORT: '65535' }, { port: 65535 }],
    [{ HOST: '127.0.0.1' }, { host: '127.0.0.1' }],
    [{ HOST: '::' }, { host: '::' }],
    [{ REDIS_URL: 'rediss://user:secret@cache.example.com:6380/2' }, { redisUrl: 'rediss://user:secret@cache.example.com:6380/2' }],
    [{ REDIS_KEY_PREFIX: 'app1:auth:' }, { redisKeyPrefix: 'app1:auth:' }],
    [{ AUTH_ISSUER: 'https://auth.example.com' }, { issuer: 'https://auth.example.com' }],
    [{ AUTH_AUDIENCE: 'api.example.com' }, { audience: 'api.example.com' }],
    [{ AUTH_CLIENT_ID: 'shop-web' }, { clientId: 'shop-web' }],
    [{ ACCESS_TOKEN_TTL: '300' }, { accessTokenTtlMs: 300 * S }],
    [{ ACCESS_TOKEN_TTL: '1s' }, { accessTokenTtlMs: S }],
    [{ ACCESS_TOKEN_TTL: '24h' }, { accessTokenTtlMs: 24 * H }],
    [{ REFRESH_TOKEN_TTL: '7d' }, { refreshTokenTtlMs: 7 * D }],
    [{ SESSION_MAX_LIFETIME: '365d' }, { sessionMaxLifetimeMs: 365 * D }],
    [{ SESSION_MAX_LIFETIME: '30d' }, { sessionMaxLifetimeMs: 30 * D }],
    [{ REFRESH_REUSE_GRACE: '0' }, { refreshReuseGraceMs: 0 }],
    [{ REFRESH_REUSE_GRACE: '1m' }, { refreshReuseGraceMs: 60 * S }],
    [{ CLOCK_TOLERANCE: '0' }, { clockToleranceSec: 0 }],
    [{ CLOCK_TOLERANCE: '60' }, { clockToleranceSec: 60 }],
    [{ CLOCK_TOLERANCE: '30s' }, { clockToleranceSec: 30 }],
    [{ SIGNUP_ENABLED: 'false' }, { signupEnabled: false }],
    [{ SIGNUP_ENABLED: '0' }, { signupEnabled: false }],
    [{ SIGNUP_ENABLED: 'FALSE' }, { signupEnabled: false }],
    [{ ...PROD, SIGNUP_ENABLED: 'true' }, { signupEnabled: true }],
    [{ ...PROD, SIGNUP_ENABLED: '1' }, { signupEnabled: true }],
    [{ LOGIN_MAX_FAILURES: '1' }, { loginMaxFailures: 1 }],
    [{ LOGIN_MAX_FAILURES: '25' }, { loginMaxFailures: 25 }],
    [{ LOGIN_FAILURE_WINDOW: '1h' }, { loginFailureWindowMs: H }],
    [{ SIGNING_KEYS: 'keys/jwks.json' }, { signingKeysFile: path.join(CWD, 'keys/jwks.json') }],
    [{ SIGNING_KEYS: '/etc/tessera/jwks.json' }, { signingKeysFile: path.resolve('/etc/tessera/jwks.json') }],
    [{ TRUST_PROXY: 'false' }, { trustProxy: { kind: 'none' } }],
    [{ TRUST_PROXY: '0' }, { trustProxy: { kind: 'none' } }],
    [{ TRUST_PROXY: '1' }, { trustProxy: { kind: 'hops', hops: 1 } }],
    [{ TRUST_PROXY: '3' }, { trustProxy: { kind: 'hops', hops: 3 } }],
    [{ TRUST_PROXY: '10.0.0.1' }, { trustProxy: { kind: 'addresses', addresses: ['10.0.0.1'] } }],
    [
      { TRUST_PROXY: '10.0.0.1, 10.0.0.2,::1,2001:db8::7' },
      { trustProxy: { kind: 'addresses', addresses: ['10.0.0.1', '10.0.0.2', '::1', '2001:db8::7'] } },
    ],
  ])('%j', (env, expected) => {
    expect(load(env)).toMatchObject(expected);
  });

  it('the cwd argument places the dev key directory', () => {
    expect(load({}).devKeyDir).toBe(path.join(CWD, '.tessera'));
    expect(loadConfig({}, '/tmp/other').devKeyDir).toBe(path.resolve('/tmp/other/.tessera'));
  });
});

describe('loadConfig errors', () => {
  it.each([
    [{ PORT: '0' }, 'PORT'],
    [{ PORT: '65536' }, 'PORT'],
    [{ PORT: 'http' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ HOST: 'local host' }, 'HOST'],
    [{ REDIS_URL: 'http://redis:6379' }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis:6379' }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis://[bad' }, 'REDIS_URL'],
    [{ REDIS_KEY_PREFIX: '' }, 'REDIS_KEY_PREFIX'],
    [{ REDIS_KEY_PREFIX: 'my app:' }, 'REDIS_KEY_PREFIX'],
    [{ REDIS_KEY_PREFIX: '{tessera}:' }, 'REDIS_KEY_PREFIX'],
    [{ REDIS_KEY_PREFIX: 'tessera}' }, 'REDIS_KEY_PREFIX'],
    [{ AUTH_ISSUER: 'tessera' }, 'AUTH_ISSUER'],
    [{ AUTH_ISSUER: 'ftp://auth.example.com' }, 'AUTH_ISSUER'],
    [{ AUTH_AUDIENCE: 'my api' }, 'AUTH_AUDIENCE'],
    [{ AUTH_CLIENT_ID: 'shop web' }, 'AUTH_CLIENT_ID'],
    [{ ACCESS_TOKEN_TTL: '15x' }, 'ACCESS_TOKEN_TTL'],
    [{ ACCESS_TOKEN_TTL: '0' }, 'ACCESS_TOKEN_TTL'],
    [{ ACCESS_TOKEN_TTL: '25h' }, 'ACCESS_TOKEN_TTL'],
    [{ ACCESS_TOKEN_TTL: '-15m' }, 'ACCESS_TOKEN_TTL'],
    [{ REFRESH_TOKEN_TTL: '30 days' }, 'REFRESH_TOKEN_TTL'],
    [{ REFRESH_TOKEN_TTL: '15m' }, 'REFRESH_TOKEN_TTL'],
    [{ ACCESS_TOKEN_TTL: '1h', REFRESH_TOKEN_TTL: '30m' }, 'REFRESH_TOKEN_TTL'],
    [{ SESSION_MAX_LIFETIME: '1.5d' }, 'SESSION_MAX_LIFETIME'],
    [{ SESSION_MAX_LIFETIME: '29d' }, 'SESSION_MAX_LIFETIME'],
    [{ REFRESH_REUSE_GRACE: '61' }, 'REFRESH_REUSE_GRACE'],
    [{ REFRESH_REUSE_GRACE: 'off' }, 'REFRESH_REUSE_GRACE'],
    [{ CLOCK_TOLERANCE: '61' }, 'CLOCK_TOLERANCE'],
    [{ CLOCK_TOLERANCE: '2m' }, 'CLOCK_TOLERANCE'],
    [{ SIGNUP_ENABLED: 'yes' }, 'SIGNUP_ENABLED'],
    [{ LOGIN_MAX_FAILURES: '0' }, 'LOGIN_MAX_FAILURES'],
    [{ LOGIN_MAX_FAILURES: '2.5' }, 'LOGIN_MAX_FAILURES'],
    [{ LOGIN_MAX_FAILURES: 'ten' }, 'LOGIN_MAX_FAILURES'],
    [{ LOGIN_FAILURE_WINDOW: '0' }, 'LOGIN_FAILURE_WINDOW'],
    [{ LOGIN_FAILURE_WINDOW: 'forever' }, 'LOGIN_FAILURE_WINDOW'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/8' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.1,,10.0.0.2' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'proxy.internal' }, 'TRUST_PROXY'],
  ])('%j', (env, variable) => {
    configError(env, variable);
  });

  it('uses the message style of the contract', () => {
    expect(configError({ ACCESS_TOKEN_TTL: '15x' }, 'ACCESS_TOKEN_TTL')).toBe(
      'ACCESS_TOKEN_TTL: "15x" is not a duration (use seconds, or 15m / 30d style)',
    );
    expect(configError({ ACCESS_TOKEN_TTL: '1h', REFRESH_TOKEN_TTL: '30m' }, 'REFRESH_TOKEN_TTL')).toBe(
      'REFRESH_TOKEN_TTL (30m) must be longer than ACCESS_TOKEN_TTL (1h)',
    );
    expect(configError({ ACCESS_TOKEN_TTL: '25h' }, 'ACCESS_TOKEN_TTL')).toBe('ACCESS_TOKEN_TTL: "25h" must be between 1s and 24h');
    expect(configError({ CLOCK_TOLERANCE: '61' }, 'CLOCK_TOLERANCE')).toBe('CLOCK_TOLERANCE: "61" must be between 0s and 60s');
  });

  it('keeps the message on one line whatever the value holds', () => {
    const message = configError({ ACCESS_TOKEN_TTL: '15m\nFAKE LOG LINE\u2028\u0085' }, 'ACCESS_TOKEN_TTL');
    expect(message).not.toMatch(/[\u0085]/);
  });

  it('does not echo REDIS_URL, which may hold a password', () => {
    const message = configError({ REDIS_URL: 'http://user:hunter2@redis:6379' }, 'REDIS_URL');
    expect(message).not.toContain('hunter2');
  });
});

describe('production rules', () => {
  it('refuses to start without REDIS_URL', () => {
    expect(configError({ ...PROD, REDIS_URL: undefined }, 'REDIS_URL')).toBe(
      'REDIS_URL is required when NODE_ENV=production (the embedded store keeps sessions in one process only)',
    );
  });

  it('refuses to start without SIGNING_KEYS', () => {
    expect(configError({ ...PROD, SIGNING_KEYS: undefined }, 'SIGNING_KEYS')).toBe(
      'SIGNING_KEYS is required when NODE_ENV=production (generate keys with: npx tessera keys generate)',
    );
  });

  it('checks variables in the order of the contract table', () => {
    const bare = { NODE_ENV: 'production' };
    configError({ ...bare, PORT: 'x' }, 'PORT');
    configError(bare, 'REDIS_URL');
    configError({ ...bare, REDIS_URL: 'redis://r:6379', ACCESS_TOKEN_TTL: 'x' }, 'ACCESS_TOKEN_TTL');
    configError({ ...bare, REDIS_URL: 'redis://r:6379' }, 'SIGNING_KEYS');
    configError({ ...bare, REDIS_URL: 'redis://r:6379', LOGIN_MAX_FAILURES: '0' }, 'LOGIN_MAX_FAILURES');
  });

  it('the same settings are fine outside production', () => {
    expect(load({ NODE_ENV: 'test' })).toMatchObject({ redisUrl: null, signingKeysFile: null });
  });
});

describe('LOG_LEVEL', () => {
  it('defaults to info and accepts pino levels in any case', () => {
    expect(loadConfig({}).logLevel).toBe('info');
    expect(loadConfig({ LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
  });

  it('refuses an unknown level with one line naming the variable', () => {
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/^LOG_LEVEL: "loud" is not one of/);
  });
});

describe('hardening settings', () => {
  it('reads the transport, limits and per-address failures', () => {
    const config = loadConfig({
      REFRESH_TOKEN_TRANSPORT: 'Cookie',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '50',
      MAX_DEPTH: '5',
      MAX_BATCH_SIZE: '4',
      SHUTDOWN_TIMEOUT: '30s',
      MAX_SESSIONS_PER_USER: '5',
    });
    expect(config.maxSessionsPerUser).toBe(5);
    expect(config.refreshTokenTransport).toBe('cookie');
    expect(config.loginMaxFailuresPerAddress).toBe(50);
    expect(config.limits).toMatchObject({ maxDepth: 5, maxBatchSize: 4 });
    expect(config.shutdownTimeoutMs).toBe(30_000);
  });

  it('refuses bad values with one line naming the variable', () => {
    expect(() => loadConfig({ REFRESH_TOKEN_TRANSPORT: 'header' })).toThrow(/^REFRESH_TOKEN_TRANSPORT: "header" is not one of body, cookie, both$/);
    expect(() => loadConfig({ MAX_DEPTH: '0' })).toThrow(/^MAX_DEPTH: /);
    expect(() => loadConfig({ MAX_BODY_BYTES: '1kb' })).toThrow(/^MAX_BODY_BYTES: /);
    expect(() => loadConfig({ MAX_SESSIONS_PER_USER: '0' })).toThrow(/^MAX_SESSIONS_PER_USER: /);
  });
});

describe('federation and Redis topology settings', () => {
  it('SUBGRAPHS is a list of name=url', () => {
    expect(loadConfig({ SUBGRAPHS: 'orders=http://localhost:4001/graphql, reviews=https://r.example/graphql' }).federation).toEqual({
      kind: 'subgraphs',
      subgraphs: [
        { name: 'orders', url: 'http://localhost:4001/graphql' },
        { name: 'reviews', url: 'https://r.example/graphql' },
      ],
    });
  });

  it('SUPERGRAPH_FILE is a path', () => {
    expect(loadConfig({ SUPERGRAPH_FILE: 'supergraph.graphql' }, '/srv').federation).toEqual({
      kind: 'supergraphFile',
      path: '/srv/supergraph.graphql',
    });
  });

  it('refuses bad federation settings in one line', () => {
    expect(() => loadConfig({ SUBGRAPHS: 'orders' })).toThrow(/^SUBGRAPHS: "orders" is not name=url$/);
    expect(() => loadConfig({ SUBGRAPHS: 'auth=http://x/graphql' })).toThrow(/^SUBGRAPHS: the name "auth"/);
    expect(() => loadConfig({ SUBGRAPHS: 'a=ftp://x' })).toThrow(/^SUBGRAPHS: "ftp:\/\/x"/);
    expect(() => loadConfig({ SUBGRAPHS: 'a=http://x,a=http://y' })).toThrow(/appears twice/);
    expect(() => loadConfig({ SUBGRAPHS: 'a=http://x', SUPERGRAPH_FILE: 's.graphql' })).toThrow(/^SUBGRAPHS and SUPERGRAPH_FILE/);
  });

  it('reads a Cluster or a Sentinel topology', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,[::1]:7001' }).redisTopology).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
      ],
    });
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'main' }).redisTopology).toEqual({
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'main',
    });
    expect(() => loadConfig({ REDIS_SENTINELS: 's1:26379' })).toThrow(/^REDIS_SENTINEL_NAME is required/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'host' })).toThrow(/^REDIS_CLUSTER_NODES: "host" is not host:port$/);
    expect(loadConfig({ REDIS_MIN_REPLICAS_ACK: '1' }).redisMinReplicasAck).toBe(1);
  });

  it('a Cluster or Sentinel satisfies production without REDIS_URL', () => {
    const env = { NODE_ENV: 'production', SIGNING_KEYS: 'k.json' };
    expect(loadConfig({ ...env, REDIS_CLUSTER_NODES: 'r:7000' }).production).toBe(true);
    expect(loadConfig({ ...env, REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }).production).toBe(true);
  });
});

describe('security event settings', () => {
  const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

  it('reads AUDIT_STREAM_MAX and the webhook (URL, secret, timeout, backoff cap)', () => {
    expect(load({ AUDIT_STREAM_MAX: '5000' }).audit).toEqual({ streamMax: 5000, webhook: null });
    expect(
      load({
        AUDIT_WEBHOOK_URL: 'https://hooks.example.com/tessera',
        AUDIT_WEBHOOK_SECRET: SECRET,
        AUDIT_WEBHOOK_TIMEOUT: '10s',
        AUDIT_WEBHOOK_MAX_BACKOFF: '1h',
      }).audit.webhook,
    ).toEqual({ url: 'https://hooks.example.com/tessera', secret: SECRET, timeoutMs: 10 * S, maxBackoffMs: H });
    expect(load({ AUDIT_WEBHOOK_URL: 'http://receiver:8080/', AUDIT_WEBHOOK_SECRET: SECRET }).audit.webhook).toMatchObject({
      timeoutMs: 5 * S,
      maxBackoffMs: 5 * M,
    });
  });

  it.each([
    [{ AUDIT_STREAM_MAX: '0' }, 'AUDIT_STREAM_MAX'],
    [{ AUDIT_STREAM_MAX: 'lots' }, 'AUDIT_STREAM_MAX'],
    [{ AUDIT_WEBHOOK_URL: 'https://hooks.example.com/' }, 'AUDIT_WEBHOOK_SECRET'],
    [{ AUDIT_WEBHOOK_SECRET: SECRET }, 'AUDIT_WEBHOOK_URL'],
    [{ AUDIT_WEBHOOK_URL: 'ftp://hooks.example.com/', AUDIT_WEBHOOK_SECRET: SECRET }, 'AUDIT_WEBHOOK_URL'],
    [{ AUDIT_WEBHOOK_URL: 'https://hooks.example.com/', AUDIT_WEBHOOK_SECRET: 'hunter2hunter2hunter2hunter2' }, 'AUDIT_WEBHOOK_SECRET'],
    [{ AUDIT_WEBHOOK_URL: 'https://hooks.example.com/', AUDIT_WEBHOOK_SECRET: 'whsec_c2hvcnQ=' }, 'AUDIT_WEBHOOK_SECRET'],
    [{ AUDIT_WEBHOOK_URL: 'https://hooks.example.com/', AUDIT_WEBHOOK_SECRET: 'whsec_not base64!' }, 'AUDIT_WEBHOOK_SECRET'],
    [{ AUDIT_WEBHOOK_TIMEOUT: '0' }, 'AUDIT_WEBHOOK_TIMEOUT'],
    [{ AUDIT_WEBHOOK_MAX_BACKOFF: '2d' }, 'AUDIT_WEBHOOK_MAX_BACKOFF'],
  ])('refuses %j with one line naming %s', (env, variable) => {
    configError(env, variable);
  });

  it('never echoes the secret or the URL (either may carry credentials)', () => {
    const secret = 'whsec_' + 'x'.repeat(10);
    expect(configError({ AUDIT_WEBHOOK_URL: 'https://hooks.example.com/', AUDIT_WEBHOOK_SECRET: secret }, 'AUDIT_WEBHOOK_SECRET')).not.toContain(secret);
    expect(configError({ AUDIT_WEBHOOK_URL: 'gopher://user:pw@x/', AUDIT_WEBHOOK_SECRET: SECRET }, 'AUDIT_WEBHOOK_URL')).not.toContain('pw');
  });
});

describe('WebSocket settings', () => {
  it('reads WS_CONNECTION_INIT_TIMEOUT, WS_MAX_SUBSCRIPTIONS and SUBGRAPH_WS_URLS', () => {
    expect(
      load({
        WS_CONNECTION_INIT_TIMEOUT: '2s',
        WS_MAX_SUBSCRIPTIONS: '3',
        SUBGRAPH_WS_URLS: 'orders=ws://orders:4001/graphql,reviews=wss://reviews.example.com/ws',
      }).realtime,
    ).toEqual({
      initTimeoutMs: 2 * S,
      maxSubscriptions: 3,
      subgraphWsUrls: { orders: 'ws://orders:4001/graphql', reviews: 'wss://reviews.example.com/ws' },
    });
  });

  it.each([
    [{ WS_CONNECTION_INIT_TIMEOUT: '0' }, 'WS_CONNECTION_INIT_TIMEOUT'],
    [{ WS_MAX_SUBSCRIPTIONS: '0' }, 'WS_MAX_SUBSCRIPTIONS'],
    [{ SUBGRAPH_WS_URLS: 'orders=http://orders:4001/graphql' }, 'SUBGRAPH_WS_URLS'],
    [{ SUBGRAPH_WS_URLS: 'ws://orders:4001/graphql' }, 'SUBGRAPH_WS_URLS'],
  ])('refuses %j with one line naming %s', (env, variable) => {
    configError(env, variable);
  });
});
