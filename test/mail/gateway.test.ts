import { afterEach, describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { type SmtpInbox, startSmtpInbox } from '../helpers/smtpInbox.js';
import { createTestServer, type TestServer } from '../helpers/testServer.js';

/*
 * The mailer as the gateway builds it from its settings (app.mailer, what the account flows
 * call): the quick start's log transport, and SMTP to a real server.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: Parameters<typeof createTestServer>[0]): Promise<TestServer> {
  const started = await createTestServer(options);
  cleanups.push(() => started.close());
  return started;
}

async function inbox(): Promise<SmtpInbox> {
  const started = await startSmtpInbox();
  cleanups.push(() => started.close());
  return started;
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the gateway mailer', () => {
  it('the quick start (no mail settings): the message and its link go to the log', async () => {
    const gateway = await server({ store: 'memory' });
    expect(gateway.app.mailer.enabled).toBe(true);
    gateway.app.mailer.send({ kind: 'password_reset', to: 'quick@example.com', token: 'quickstarttoken' });
    const logged = () => gateway.logs.find((l) => l.includes('MAIL_TRANSPORT=log'));
    await until(() => logged() !== undefined);
    const line = logged();
    expect(JSON.parse(line!)).toMatchObject({
      msg: expect.stringContaining('http://localhost:4000/reset-password?token=quickstarttoken'),
      mail: { kind: 'password_reset', to: 'quick@example.com', subject: 'Reset your Tessera password' },
    });
  });

  it('MAIL_TRANSPORT=smtp: the mail reaches the SMTP server; counted in tessera_mail_sent_total; close() lets it finish', async () => {
    const mailbox = await inbox();
    const metrics = new PrometheusMetrics();
    const gateway = await createTestServer({ store: 'memory', env: { ...mailbox.env, EMAIL_VERIFICATION_URL: 'https://app.example.com/verify/{token}' }, deps: { metrics } });
    gateway.app.mailer.send({ kind: 'email_verification', to: 'smtp@example.com', token: 'tok-1' });
    // close() right away: the send in flight is waited for, not cut.
    await gateway.close();
    const mail = await mailbox.nextMail('smtp@example.com', 1_000);
    expect(mail.link).toBe('https://app.example.com/verify/tok-1');
    const text = await metrics.registry.metrics();
    expect(text).toContain('tessera_mail_sent_total{kind="email_verification",outcome="sent"} 1');
    for (const line of gateway.logs) expect(line).not.toContain('tok-1');
  });
});
