import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startTracing } from '../../src/observability/tracing.js';
import { bearer, LOGIN, REFRESH, SIGNUP, TEST_PASSWORD, uniqueEmail } from '../helpers/testServer.js';
import { createMeasuredServer, startOtlpReceiver } from './support.js';

describe('nothing secret in metrics or spans', () => {
  it('after signup, login, a failed login, refresh, me and revoke, neither /metrics nor any span holds a password, a token or the email', async () => {
    const receiver = await startOtlpReceiver();
    const tracing = await startTracing({ endpoint: receiver.url, logger: createLogger({ production: false, level: 'silent' }) });
    const server = await createMeasuredServer({ deps: { tracing } });
    try {
      const email = uniqueEmail();
      const wrongPassword = `wrong-${Date.now()}-password`;
      const secrets: string[] = [email, TEST_PASSWORD, wrongPassword];

      const signup = await server.graphql(SIGNUP, { email, password: TEST_PASSWORD });
      expect(signup.errors).toEqual([]);
      secrets.push(signup.data!.signup.accessToken, signup.data!.signup.refreshToken);
      const failed = await server.graphql(LOGIN, { email, password: wrongPassword });
      expect(failed.errors[0]?.extensions.reason).toBe('INVALID_CREDENTIALS');
      const login = await server.graphql(LOGIN, { email, password: TEST_PASSWORD });
      expect(login.errors).toEqual([]);
      secrets.push(login.data!.login.accessToken, login.data!.login.refreshToken);
      const refreshed = await server.graphql(REFRESH, { t: login.data!.login.refreshToken });
      expect(refreshed.errors).toEqual([]);
      secrets.push(refreshed.data!.refreshToken.accessToken, refreshed.data!.refreshToken.refreshToken);
      const me = await server.graphql('{ me { id email } sessions { id } }', {}, bearer(refreshed.data!.refreshToken.accessToken));
      expect(me.data!.me.email).toBe(email);
      const revoked = await server.graphql('mutation { revokeSession }', {}, bearer(refreshed.data!.refreshToken.accessToken));
      expect(revoked.data).toEqual({ revokeSession: true });
      // The refresh token's secret part alone, too (user id, session id, generation, secret, tag).
      for (const token of secrets.filter((s) => s.split('.').length === 5)) secrets.push(token.split('.')[3]!);

      await tracing.flush();
      const metrics = await server.scrape();
      const spans = receiver.bodies.join('\n');
      // The checks can fail: the flow was measured and traced.
      expect(metrics).toMatch(/tessera_logins_total\{outcome="success"\} 1/);
      expect(receiver.spans.filter((span) => span.name === 'POST /graphql')).toHaveLength(6);
      for (const secret of secrets) {
        expect(metrics.includes(secret), `metrics hold ${secret}`).toBe(false);
        expect(spans.includes(secret), `spans hold ${secret}`).toBe(false);
      }
      expect(spans).not.toContain(email.split('@')[0]);
    } finally {
      await server.close();
      await tracing.shutdown();
      await receiver.close();
    }
  });
});
