import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { BackgroundMailer, createMailer, disabledMailer, type MailerTimings } from '../../src/mail/mailer.js';
import type { Mailer } from '../../src/mail/types.js';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { type SmtpInbox, startSmtpInbox } from '../helpers/smtpInbox.js';
import { startWebhookReceiver, type WebhookReceiver, webhookSecret } from '../helpers/webhookReceiver.js';

const TOKEN = 'AbC-123_xyz+/= ünï';
const FAST: Partial<MailerTimings> = { baseDelayMs: 20, maxDelayMs: 50, maxAttempts: 3, closeTimeoutMs: 2_000 };

interface Harness {
  mailer: Mailer;
  logs: string[];
  metrics: PrometheusMetrics;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function capture(): { logger: Logger; logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ production: true, level: 'debug' }, sink), logs };
}

function harness(env: Record<string, string>, timings: Partial<MailerTimings> = FAST): Harness {
  const config = loadConfig({ AUTH_ISSUER: 'https://auth.tessera.test', ...env });
  const { logger, logs } = capture();
  const metrics = new PrometheusMetrics();
  const mailer = createMailer(config.mail, { logger, metrics, timings, random: () => 0.999 });
  cleanups.push(() => mailer.close());
  return { mailer, logs, metrics };
}

async function inbox(options: Parameters<typeof startSmtpInbox>[0] = {}): Promise<SmtpInbox> {
  const started = await startSmtpInbox(options);
  cleanups.push(() => started.close());
  return started;
}

async function receiver(secret: string): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver(secret);
  cleanups.push(() => started.close());
  return started;
}

async function mailCount(metrics: PrometheusMetrics, kind: string, outcome: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`tessera_mail_sent_total{kind="${kind}",outcome="${outcome}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('mailer over real SMTP', () => {
  it('renders the kind, puts the URL-encoded token into the link template, and sends text and HTML', async () => {
    const server = await inbox();
    const { mailer, metrics } = harness({ ...server.env, PASSWORD_RESET_URL: 'https://app.tessera.test/reset#t={token}', MAIL_PRODUCT_NAME: 'Acme <ID>' });
    expect(mailer.enabled).toBe(true);
    mailer.send({ kind: 'password_reset', to: 'alice@example.com', token: TOKEN });
    const mail = await server.nextMail('alice@example.com');
    const link = `https://app.tessera.test/reset#t=${encodeURIComponent(TOKEN)}`;
    expect(mail.subject).toBe('Reset your Acme <ID> password');
    expect(mail.text).toContain(link);
    expect(mail.html).toContain(`href="${link}"`);
    expect(mail.html).toContain('Acme &lt;ID&gt;');
    expect(mail.html).not.toContain('Acme <ID>');
    expect(mail.from).toContain('no-reply@auth.tessera.test');
    await until(async () => (await mailCount(metrics, 'password_reset', 'sent')) === 1, 'the sent count');
  });

  it('email_change with a token is the confirmation to the new address; without one, the notice to the old address', async () => {
    const server = await inbox();
    const { mailer } = harness(server.env);
    mailer.send({ kind: 'email_change', to: 'new@example.com', token: 'tok1' });
    mailer.send({ kind: 'email_change', to: 'old@example.com', token: null, details: { newEmail: 'new@example.com' } });
    const confirmation = await server.nextMail('new@example.com');
    expect(confirmation.link).toBe('https://auth.tessera.test/confirm-email-change?token=tok1');
    const notice = await server.nextMail('old@example.com');
    expect(notice.subject).toBe('Your Tessera email address is being changed');
    expect(notice.text).toContain('new@example.com');
    expect(notice.links).toEqual([]);
  });

  it('send returns at once, before the SMTP server has answered', async () => {
    const server = await inbox({ mode: 'hang' });
    const { mailer } = harness(server.env);
    mailer.send({ kind: 'email_verification', to: 'bob@example.com', token: 'tok' });
    // Nothing has reached the server yet: send only queued the message.
    expect(server.attempts).toBe(0);
    await server.waitFor(() => server.attempts === 1, 10_000, 'the attempt');
    server.setMode('accept');
  });

  it('values in details cannot add lines to the text or markup to the HTML', async () => {
    const server = await inbox();
    const { mailer } = harness(server.env);
    mailer.send({ kind: 'new_sign_in', to: 'carol@example.com', token: null, details: { userAgent: 'Evil\r\n\r\nClick https://evil.test <script>x</script>', ip: '203.0.113.9', time: '2026-12-04T18:00:00Z' } });
    const mail = await server.nextMail('carol@example.com');
    expect(mail.text).toContain('Device: Evil Click https://evil.test <script>x</script>');
    expect(mail.html).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(mail.html).not.toContain('<script>');
  });

  for (const mode of ['refuse', 'hang', 'drop'] as const) {
    it(`a server that ${mode === 'refuse' ? 'refuses (550)' : mode === 'hang' ? 'hangs' : 'drops the connection'}: retried a bounded number of times, logged and counted, never the link or token in a log line`, async () => {
      const server = await inbox({ mode });
      const { mailer, logs, metrics } = harness({ ...server.env, MAIL_SEND_TIMEOUT: '1s' });
      mailer.send({ kind: 'password_reset', to: 'dave@example.com', token: TOKEN });
      await until(async () => (await mailCount(metrics, 'password_reset', 'failed')) === 1, 'the failure count', 20_000);
      expect(server.attempts).toBe(3);
      expect(await mailCount(metrics, 'password_reset', 'retried')).toBe(2);
      expect(await mailCount(metrics, 'password_reset', 'sent')).toBe(0);
      expect(server.received).toHaveLength(0);
      const failures = logs.map((line) => JSON.parse(line) as { level: number; msg: string; mail?: { reason?: string; retryInMs?: number } });
      // Exponential backoff from 20 ms (the jitter source at its top: a factor of about 1).
      expect(failures.filter((l) => l.level === 40 && /retrying/.test(l.msg)).map((l) => l.mail!.retryInMs)).toEqual([19, 39]);
      const final = failures.filter((l) => l.level === 50);
      expect(final).toHaveLength(1);
      expect(final[0]!.mail!.reason).toMatch(mode === 'refuse' ? /^EENVELOPE 550/ : /^E[A-Z]+/);
      for (const line of logs) {
        expect(line).not.toContain(encodeURIComponent(TOKEN));
        expect(line).not.toContain('reset-password');
        expect(line).not.toContain('dave@example.com');
      }
    });
  }

  it('a failure followed by a recovery: the retry delivers the mail', async () => {
    const server = await inbox({ mode: 'tempfail' });
    const { mailer, metrics } = harness(server.env, { ...FAST, baseDelayMs: 300 });
    mailer.send({ kind: 'password_changed', to: 'erin@example.com', token: null });
    await server.waitFor(() => server.attempts === 1, 10_000, 'the first attempt');
    server.setMode('accept');
    const mail = await server.nextMail('erin@example.com');
    expect(mail.subject).toBe('Your Tessera password was changed');
    expect(await mailCount(metrics, 'password_changed', 'retried')).toBe(1);
    await until(async () => (await mailCount(metrics, 'password_changed', 'sent')) === 1, 'the sent count');
  });

  it('a full queue drops the newest message, logged and counted as failed, and send still returns', async () => {
    const server = await inbox({ mode: 'hang' });
    const { mailer, metrics, logs } = harness({ ...server.env, MAIL_SEND_TIMEOUT: '60s' }, { ...FAST, concurrency: 1, maxQueued: 2, closeTimeoutMs: 100 });
    for (let i = 0; i < 3; i += 1) mailer.send({ kind: 'email_verification', to: `q${i}@example.com`, token: `t${i}` });
    expect(await mailCount(metrics, 'email_verification', 'failed')).toBe(1);
    expect(logs.some((line) => line.includes('the mail queue is full'))).toBe(true);
    await server.waitFor(() => server.attempts === 1);
  });

  it('close() waits for the sends in flight (bounded)', async () => {
    const server = await inbox();
    const { mailer } = harness(server.env);
    for (let i = 0; i < 6; i += 1) mailer.send({ kind: 'email_verification', to: `user${i}@example.com`, token: `t${i}` });
    await mailer.close();
    expect(server.received).toHaveLength(6);

    const hung = await inbox({ mode: 'hang' });
    const stuck = harness({ ...hung.env, MAIL_SEND_TIMEOUT: '60s' }, { ...FAST, closeTimeoutMs: 200 });
    stuck.mailer.send({ kind: 'email_verification', to: 'frank@example.com', token: 't' });
    await hung.waitFor(() => hung.attempts === 1);
    const started = Date.now();
    await stuck.mailer.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stuck.logs.some((line) => line.includes('still in flight'))).toBe(true);
  });
});

describe('mailer over a signed webhook', () => {
  it('POSTs { kind, to, subject, text, html, link, token } signed per Standard Webhooks', async () => {
    const secret = webhookSecret();
    const hook = await receiver(secret);
    const { mailer } = harness({ MAIL_TRANSPORT: 'webhook', MAIL_WEBHOOK_URL: hook.url, MAIL_WEBHOOK_SECRET: secret, EMAIL_VERIFICATION_URL: 'myapp://verify/{token}' });
    mailer.send({ kind: 'email_verification', to: 'gina@example.com', token: TOKEN });
    await until(() => hook.delivered.length === 1, 'the delivery');
    const body = hook.delivered[0]!.payload as unknown;
    expect(body).toEqual({
      kind: 'email_verification',
      to: 'gina@example.com',
      subject: 'Confirm your email address for Tessera',
      text: expect.stringContaining(`myapp://verify/${encodeURIComponent(TOKEN)}`),
      html: expect.stringContaining(`href="myapp://verify/${encodeURIComponent(TOKEN)}"`),
      link: `myapp://verify/${encodeURIComponent(TOKEN)}`,
      token: TOKEN,
    });
    expect(hook.delivered[0]!.id).toMatch(/^mail_/);
    expect(hook.rejected).toBe(0);
  });

  it('a receiver that fails, then recovers: retried with the same webhook-id; a wrong secret is rejected by the receiver', async () => {
    const secret = webhookSecret();
    const hook = await receiver(secret);
    hook.setMode('error');
    const { mailer, metrics, logs } = harness({ MAIL_TRANSPORT: 'webhook', MAIL_WEBHOOK_URL: hook.url, MAIL_WEBHOOK_SECRET: secret }, { ...FAST, baseDelayMs: 200 });
    mailer.send({ kind: 'password_reset', to: 'hank@example.com', token: TOKEN });
    await until(() => hook.attempts === 1, 'the first attempt');
    hook.setMode('ok');
    await until(() => hook.delivered.length === 1, 'the retried delivery');
    expect(await mailCount(metrics, 'password_reset', 'retried')).toBe(1);
    for (const line of logs) expect(line).not.toContain(encodeURIComponent(TOKEN));
    expect(logs.some((line) => line.includes('HTTP 500'))).toBe(true);

    const other = harness({ MAIL_TRANSPORT: 'webhook', MAIL_WEBHOOK_URL: hook.url, MAIL_WEBHOOK_SECRET: webhookSecret() });
    other.mailer.send({ kind: 'password_changed', to: 'hank@example.com', token: null });
    await until(() => hook.rejected >= 1, 'the rejection');
    expect(hook.delivered).toHaveLength(1);
  });
});

describe('no transport', () => {
  it('production without MAIL_TRANSPORT: the mailer is disabled', () => {
    const { logger } = capture();
    const config = loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', SIGNING_KEYS: 'keys.json' });
    expect(config.mail.transport).toBeNull();
    const mailer = createMailer(config.mail, { logger });
    expect(mailer).toBe(disabledMailer);
    expect(mailer.enabled).toBe(false);
    expect(() => mailer.send({ kind: 'password_reset', to: 'a@example.com', token: 't' })).not.toThrow();
  });

  it('the log transport writes after send has returned, never in the caller\'s turn', async () => {
    const { mailer, logs } = harness({ MAIL_TRANSPORT: 'log' });
    mailer.send({ kind: 'password_changed', to: 'a@example.com', token: null });
    expect(logs).toEqual([]);
    await until(() => logs.length === 1, 'the log line');
    expect(logs[0]).toContain('password_changed to a@example.com');
  });

  it('a request the mailer cannot prepare is logged and counted, not thrown', async () => {
    const { mailer, logs, metrics } = harness({ MAIL_TRANSPORT: 'log' });
    expect(mailer).toBeInstanceOf(BackgroundMailer);
    expect(() => mailer.send({ kind: 'password_reset', to: 'a@example.com', token: null })).not.toThrow();
    expect(await mailCount(metrics, 'password_reset', 'failed')).toBe(1);
    expect(logs.some((line) => line.includes('could not be prepared'))).toBe(true);
  });
});
