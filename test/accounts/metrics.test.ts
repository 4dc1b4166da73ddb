import { afterAll, describe, expect, it } from 'vitest';
import { disabledMailer } from '../../src/mail/mailer.js';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { createTestServer, type TestServer } from '../helpers/testServer.js';
import { sample } from '../observability/support.js';
import { account, adminAccount, bearer, errorOf, inbox, login, mailOf, OPS } from './support.js';

/* What the account flows count (docs/contract.md section 10), and the mail features with no transport. */

const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.close();
});

describe('account metrics', () => {
  it('tessera_sessions_revoked_total by cause (admin, disabled, deleted, password_reset) and tessera_logins_total{outcome=disabled}', async () => {
    const metrics = new PrometheusMetrics();
    const mailbox = await inbox();
    const server = await createTestServer({ store: 'redis', env: mailbox.env, deps: { metrics } });
    servers.push(server);
    const admin = await adminAccount(server);
    const auth = bearer(admin.accessToken);
    const [a, b, c, d] = [await account(server), await account(server), await account(server), await account(server)];
    await server.graphql(OPS.revokeUserSessions, { id: a.id }, auth);
    await server.graphql(OPS.disable, { id: b.id }, auth);
    await server.graphql(OPS.deleteUser, { id: c.id }, auth);
    await server.graphql(OPS.requestReset, { email: d.email });
    const mail = await mailOf(d.email, 'password_reset');
    expect((await server.graphql(OPS.reset, { token: mail.token, password: 'a new passphrase' })).errors).toEqual([]);
    expect(errorOf(await login(server, b.email))).toMatchObject({ reason: 'ACCOUNT_DISABLED' });
    const text = await metrics.registry.metrics();
    for (const cause of ['admin', 'disabled', 'deleted', 'password_reset']) {
      expect(sample(text, 'tessera_sessions_revoked_total', { cause }), cause).toBe(1);
    }
    expect(sample(text, 'tessera_logins_total', { outcome: 'disabled' })).toBe(1);
    // The link is a credential: never in a metric.
    expect(text).not.toContain(mail.token!);
  });
});

describe('mail features with no transport (production with no MAIL_TRANSPORT)', () => {
  it('requestPasswordReset, requestEmailVerification and requestEmailChange answer FORBIDDEN FEATURE_DISABLED; the rest works', async () => {
    const server = await createTestServer({ store: 'memory', deps: { mailer: disabledMailer } });
    servers.push(server);
    const user = await account(server);
    expect(errorOf(await server.graphql(OPS.requestReset, { email: user.email }))).toEqual({ code: 'FORBIDDEN', reason: 'FEATURE_DISABLED' });
    expect(errorOf(await server.graphql(OPS.requestVerification, {}, bearer(user.accessToken)))).toEqual({ code: 'FORBIDDEN', reason: 'FEATURE_DISABLED' });
    expect(errorOf(await server.graphql(OPS.requestEmailChange, { email: 'new@example.com' }, bearer(user.accessToken)))).toEqual({
      code: 'FORBIDDEN',
      reason: 'FEATURE_DISABLED',
    });
    expect((await server.graphql(OPS.changePassword, { password: 'another passphrase' }, bearer(user.accessToken))).data).toEqual({ changePassword: true });
  });
});
