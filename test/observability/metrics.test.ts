import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { METRIC_NAMES, PrometheusMetrics } from '../../src/observability/metrics.js';
import { MetricsPortError, startMetricsServer } from '../../src/observability/metricsServer.js';
import { bearer, LOGIN, REFRESH, signUp, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';
import { createMeasuredServer, families, type MeasuredServer, sample } from './support.js';

const REVOKE = 'mutation($id: ID) { revokeSession(sessionId: $id) }';
const REVOKE_ALL = 'mutation { revokeAllSessions }';
const ME = '{ me { id } }';

describe('GET /metrics after real HTTP flows', () => {
  let server: MeasuredServer;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    server = await createMeasuredServer({ clock, env: { LOGIN_MAX_FAILURES: '2' } });
  });
  afterAll(() => server?.close());

  it('registers every metric of the contract, with Node defaults, each series of a fixed label at 0 before anything happened', async () => {
    const text = await server.scrape();
    const found = families(text);
    for (const name of METRIC_NAMES) expect(found.has(name), name).toBe(true);
    expect(found.get('tessera_graphql_request_duration_seconds')).toBe('histogram');
    expect(found.get('tessera_store_command_duration_seconds')).toBe('histogram');
    expect(found.get('tessera_revocation_feed_healthy')).toBe('gauge');
    expect(found.get('tessera_ws_connections')).toBe('gauge');
    expect(found.get('tessera_logins_total')).toBe('counter');
    // Node's default metrics, on this gateway's own registry.
    expect(found.has('process_cpu_user_seconds_total')).toBe(true);
    expect(found.has('nodejs_eventloop_lag_seconds')).toBe(true);
    for (const outcome of ['success', 'invalid_credentials', 'rate_limited', 'mfa_required', 'disabled']) {
      expect(sample(text, 'tessera_logins_total', { outcome }), outcome).toBe(0);
    }
    for (const outcome of ['rotated', 'grace', 'reused', 'invalid', 'expired']) {
      expect(sample(text, 'tessera_refreshes_total', { outcome }), outcome).toBe(0);
    }
    for (const cause of ['logout', 'all', 'reuse', 'admin', 'password_reset', 'disabled', 'deleted', 'evicted']) {
      expect(sample(text, 'tessera_sessions_revoked_total', { cause }), cause).toBe(0);
    }
    expect(sample(text, 'tessera_access_tokens_verified_total', { result: 'valid', cache: 'hit' })).toBe(0);
    expect(sample(text, 'tessera_mail_sent_total', { kind: 'password_reset', outcome: 'sent' })).toBe(0);
    expect(sample(text, 'tessera_mfa_attempts_total', { factor: 'totp', outcome: 'failure' })).toBe(0);
    expect(sample(text, 'tessera_ws_connections')).toBe(0);
    expect(sample(text, 'tessera_audit_webhook_backlog')).toBe(0);
  });

  it('the revocation feed is healthy once subscribed', async () => {
    await expect.poll(async () => sample(await server.scrape(), 'tessera_revocation_feed_healthy')).toBe(1);
  });

  it('counts logins by outcome, and failed ones past the limit as rate limited', async () => {
    const email = uniqueEmail();
    await signUp(server, email);
    const ok = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    expect(ok.errors).toEqual([]);
    const wrong = await server.graphql(LOGIN, { email, password: 'not the password' });
    expect(wrong.errors[0]?.extensions.reason).toBe('INVALID_CREDENTIALS');
    let text = await server.scrape();
    expect(sample(text, 'tessera_logins_total', { outcome: 'success' })).toBe(1);
    expect(sample(text, 'tessera_logins_total', { outcome: 'invalid_credentials' })).toBe(1);

    // LOGIN_MAX_FAILURES=2: the second failure is the last one counted as such.
    await server.graphql(LOGIN, { email, password: 'still not it' });
    const limited = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
    expect(limited.errors[0]?.extensions.code).toBe('RATE_LIMITED');
    text = await server.scrape();
    expect(sample(text, 'tessera_logins_total', { outcome: 'invalid_credentials' })).toBe(2);
    expect(sample(text, 'tessera_logins_total', { outcome: 'rate_limited' })).toBe(1);
    expect(sample(text, 'tessera_logins_total', { outcome: 'success' })).toBe(1);
    expect(sample(text, 'tessera_rate_limited_total', { limit: 'login_account' })).toBe(1);
    expect(sample(text, 'tessera_rate_limited_total', { limit: 'login_address' })).toBe(0);
  });

  it('counts refreshes as the rotation decided: rotated, grace, reused (which ends the session), invalid', async () => {
    const before = await server.scrape();
    const signed = await signUp(server);
    const first = await server.graphql(REFRESH, { t: signed.refreshToken });
    expect(first.errors).toEqual([]);
    // The same token again within REFRESH_REUSE_GRACE: the grace answer.
    const again = await server.graphql(REFRESH, { t: signed.refreshToken });
    expect(again.errors).toEqual([]);
    expect(again.data!.refreshToken.refreshToken).toBe(first.data!.refreshToken.refreshToken);
    // After the grace window: a replay.
    clock.advance(11_000);
    const replay = await server.graphql(REFRESH, { t: signed.refreshToken });
    expect(replay.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_REUSED');
    const garbage = await server.graphql(REFRESH, { t: 'not-a-refresh-token' });
    expect(garbage.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
    // The replay ended the session: its live token is refused now.
    const ended = await server.graphql(REFRESH, { t: first.data!.refreshToken.refreshToken });
    expect(ended.errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');

    const after = await server.scrape();
    const delta = (outcome: string) =>
      sample(after, 'tessera_refreshes_total', { outcome })! - sample(before, 'tessera_refreshes_total', { outcome })!;
    expect(delta('rotated')).toBe(1);
    expect(delta('grace')).toBe(1);
    expect(delta('reused')).toBe(1);
    expect(delta('invalid')).toBe(2);
    expect(delta('expired')).toBe(0);
    expect(
      sample(after, 'tessera_sessions_revoked_total', { cause: 'reuse' })! - sample(before, 'tessera_sessions_revoked_total', { cause: 'reuse' })!,
    ).toBe(1);
    // The rotation is a store command, timed.
    expect(sample(after, 'tessera_store_command_duration_seconds_count', { command: 'rotateSession' })).toBeGreaterThanOrEqual(4);
  });

  it('counts sessions revoked by logout and by revokeAllSessions', async () => {
    const before = await server.scrape();
    const email = uniqueEmail();
    const signed = await signUp(server, email);
    const other = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).data!.login;
    const third = (await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).data!.login;
    expect((await server.graphql(REVOKE, {}, bearer(other.accessToken))).data).toEqual({ revokeSession: true });
    expect((await server.graphql(REVOKE, { id: 'no-such-session' }, bearer(third.accessToken))).data).toEqual({ revokeSession: false });
    expect((await server.graphql(REVOKE_ALL, {}, bearer(signed.accessToken))).data).toEqual({ revokeAllSessions: 2 });
    const after = await server.scrape();
    const delta = (cause: string) =>
      sample(after, 'tessera_sessions_revoked_total', { cause })! - sample(before, 'tessera_sessions_revoked_total', { cause })!;
    expect(delta('logout')).toBe(1);
    expect(delta('all')).toBe(2);
  });

  it('counts access tokens by result and cache, and GraphQL requests by operation type', async () => {
    const before = await server.scrape();
    const signed = await signUp(server);
    expect((await server.graphql(ME, {}, bearer(signed.accessToken))).data).toEqual({ me: { id: signed.user.id } });
    expect((await server.graphql(ME, {}, bearer(signed.accessToken))).data).toEqual({ me: { id: signed.user.id } });
    expect((await server.graphql(ME, {}, bearer('nonsense.token.here'))).errors[0]?.extensions.reason).toBe('TOKEN_INVALID');
    await server.graphql(REVOKE, {}, bearer(signed.accessToken));
    expect((await server.graphql(ME, {}, bearer(signed.accessToken))).errors[0]?.extensions.reason).toBe('SESSION_REVOKED');
    const live = await signUp(server);
    clock.advance(16 * 60_000);
    expect((await server.graphql(ME, {}, bearer(live.accessToken))).errors[0]?.extensions.reason).toBe('TOKEN_EXPIRED');
    await server.graphql('{ me { id', {});

    const after = await server.scrape();
    const delta = (result: string, cache: string) =>
      sample(after, 'tessera_access_tokens_verified_total', { result, cache })! -
      sample(before, 'tessera_access_tokens_verified_total', { result, cache })!;
    // The signup's token was signed here: its first use verifies it (miss), the next ones hit the cache.
    expect(delta('valid', 'miss')).toBe(1);
    expect(delta('valid', 'hit')).toBe(2);
    expect(delta('invalid', 'miss')).toBe(1);
    expect(delta('revoked', 'hit')).toBe(1);
    expect(delta('expired', 'miss')).toBe(1);
    const count = (type: string, text: string) => sample(text, 'tessera_graphql_request_duration_seconds_count', { operation_type: type }) ?? 0;
    expect(count('query', after) - count('query', before)).toBe(5);
    expect(count('mutation', after) - count('mutation', before)).toBe(3);
    expect(count('unknown', after) - count('unknown', before)).toBe(1);
  });

  it('is not on the GraphQL port', async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('tessera_');
    // The metrics port serves /metrics alone.
    expect((await fetch(server.metricsUrl.replace('/metrics', '/graphql'))).status).toBe(404);
  });
});

describe('one registry per gateway', () => {
  it('two gateways in one process count apart', async () => {
    const a = await createMeasuredServer({ store: 'memory' });
    const b = await createMeasuredServer({ store: 'memory' });
    try {
      const email = uniqueEmail();
      await signUp(a, email);
      expect((await a.graphql(LOGIN, { email, password: TEST_PASSWORD })).errors).toEqual([]);
      expect(sample(await a.scrape(), 'tessera_logins_total', { outcome: 'success' })).toBe(1);
      expect(sample(await b.scrape(), 'tessera_logins_total', { outcome: 'success' })).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('sessions ended by the session cap', () => {
  it.each(['memory', 'redis'] as const)('a login past MAX_SESSIONS_PER_USER counts the ended session as evicted (%s store)', async (store) => {
    const server = await createMeasuredServer({ store, env: { MAX_SESSIONS_PER_USER: '2' } });
    try {
      const email = uniqueEmail();
      await signUp(server, email); // session 1
      for (let i = 0; i < 3; i++) expect((await server.graphql(LOGIN, { email, password: TEST_PASSWORD })).errors).toEqual([]);
      // Four sessions made with a cap of two: two ended.
      expect(sample(await server.scrape(), 'tessera_sessions_revoked_total', { cause: 'evicted' })).toBe(2);
    } finally {
      await server.close();
    }
  });
});

describe('what later features plug in', () => {
  it('revocations by cause, mail, second factors, WebSocket connections and the webhook backlog show in the scrape', async () => {
    const metrics = new PrometheusMetrics();
    const server = await startMetricsServer(metrics.registry, 0, '127.0.0.1');
    try {
      metrics.sessionsRevoked('admin', 2);
      metrics.sessionsRevoked('evicted');
      metrics.mailSent('password_reset', 'sent');
      metrics.mfaAttempt('totp', 'failure');
      metrics.wsConnections(1);
      metrics.wsConnections(1);
      metrics.wsConnections(-1);
      let backlog = 42;
      metrics.watchAuditWebhookBacklog(async () => {
        if (backlog < 0) throw new Error('the store did not answer');
        return backlog;
      });
      const scrape = async () => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      const text = await scrape();
      expect(sample(text, 'tessera_sessions_revoked_total', { cause: 'admin' })).toBe(2);
      expect(sample(text, 'tessera_sessions_revoked_total', { cause: 'evicted' })).toBe(1);
      expect(sample(text, 'tessera_mail_sent_total', { kind: 'password_reset', outcome: 'sent' })).toBe(1);
      expect(sample(text, 'tessera_mfa_attempts_total', { factor: 'totp', outcome: 'failure' })).toBe(1);
      expect(sample(text, 'tessera_ws_connections')).toBe(1);
      expect(sample(text, 'tessera_audit_webhook_backlog')).toBe(42);
      // A backlog that cannot be read keeps its last value; the scrape still answers.
      backlog = -1;
      expect(sample(await scrape(), 'tessera_audit_webhook_backlog')).toBe(42);
    } finally {
      await server.close();
    }
  });
});

describe('the metrics port', () => {
  it('one that cannot be bound is refused with one line naming METRICS_PORT', async () => {
    const taken = await startMetricsServer(new PrometheusMetrics().registry, 0, '127.0.0.1');
    try {
      const attempt = startMetricsServer(new PrometheusMetrics().registry, taken.port, '127.0.0.1');
      await expect(attempt).rejects.toBeInstanceOf(MetricsPortError);
      await expect(attempt).rejects.toThrow(
        new RegExp(`^METRICS_PORT: cannot listen on 127\\.0\\.0\\.1:${taken.port} for /metrics \\(the address is already in use\\)[^\\n]*$`),
      );
    } finally {
      await taken.close();
    }
  });
});
