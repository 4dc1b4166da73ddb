import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { LogTransport } from '../../src/mail/transports/logTransport.js';
import { SmtpTransport } from '../../src/mail/transports/smtpTransport.js';
import type { OutgoingMail } from '../../src/mail/transports/transport.js';
import { type SmtpInbox, startSmtpInbox } from '../helpers/smtpInbox.js';

const TOKEN = 'tok_AbC-123_xyz';
const LINK = `http://localhost:3000/reset-password?token=${TOKEN}`;

function message(overrides: Partial<OutgoingMail> = {}): OutgoingMail {
  return {
    kind: 'password_reset',
    to: 'alice@example.com',
    from: 'Tessera <no-reply@tessera.test>',
    subject: 'Reset your Tessera password',
    text: `Open this link to choose a new password:\n\n${LINK}\n`,
    html: `<p><a href="${LINK}">Choose a new password</a></p>`,
    link: LINK,
    token: TOKEN,
    id: 'mail_test_1',
    ...overrides,
  };
}

const never = new AbortController().signal;
let inboxes: SmtpInbox[] = [];
afterEach(async () => {
  await Promise.all(inboxes.map((inbox) => inbox.close()));
  inboxes = [];
});

async function inbox(options: Parameters<typeof startSmtpInbox>[0] = {}): Promise<SmtpInbox> {
  const started = await startSmtpInbox(options);
  inboxes.push(started);
  return started;
}

describe('smtp transport', () => {
  it('delivers text and HTML to a real SMTP server, link intact', async () => {
    const server = await inbox();
    const transport = new SmtpTransport({ url: server.url, tls: 'off' }, 5_000);
    await transport.deliver(message(), never);
    const mail = await server.nextMail('alice@example.com');
    expect(mail.subject).toBe('Reset your Tessera password');
    expect(mail.from).toBe('"Tessera" <no-reply@tessera.test>');
    expect(mail.envelopeFrom).toBe('no-reply@tessera.test');
    expect(mail.link).toBe(LINK);
    expect(mail.token).toBe(TOKEN);
    expect(mail.html).toContain(`href="${LINK}"`);
    expect(mail.messageId).toBe('<mail_test_1@tessera>');
    await transport.close();
  });

  it('logs in with the credentials of SMTP_URL (percent-decoded)', async () => {
    const server = await inbox({ auth: { user: 'mailer@tessera.test', pass: 'p@ss:w/rd' } });
    const url = `smtp://${encodeURIComponent('mailer@tessera.test')}:${encodeURIComponent('p@ss:w/rd')}@127.0.0.1:${server.port}`;
    await new SmtpTransport({ url, tls: 'off' }, 5_000).deliver(message(), never);
    expect((await server.nextMail('alice@example.com')).authUser).toBe('mailer@tessera.test');

    const wrong = `smtp://mailer%40tessera.test:nope@127.0.0.1:${server.port}`;
    await expect(new SmtpTransport({ url: wrong, tls: 'off' }, 5_000).deliver(message(), never)).rejects.toThrow(/^EAUTH 535/);
  });

  it('SMTP_TLS=starttls never falls back to plaintext when the server offers no STARTTLS', async () => {
    const server = await inbox({ starttls: false });
    const transport = new SmtpTransport({ url: server.url, tls: 'starttls' }, 5_000);
    await expect(transport.deliver(message(), never)).rejects.toThrow(/^ETLS/);
    expect(server.received).toHaveLength(0);
    expect(server.attempts).toBe(0);
  });

  it('SMTP_TLS=starttls upgrades only to a certificate it trusts (a self-signed one is refused, nothing sent)', async () => {
    const server = await inbox({ starttls: true });
    const transport = new SmtpTransport({ url: server.url, tls: 'starttls' }, 5_000);
    const error = await transport.deliver(message(), never).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^E[A-Z]+/);
    expect(server.received).toHaveLength(0);
    expect(server.attempts).toBe(0);
  });

  it('a refusal, a hang and a dropped connection each reject with a loggable reason that carries neither link nor token', async () => {
    const server = await inbox({ mode: 'refuse' });
    const transport = new SmtpTransport({ url: server.url, tls: 'off' }, 500);
    const reasons: string[] = [];
    for (const mode of ['refuse', 'tempfail', 'hang', 'drop'] as const) {
      server.setMode(mode);
      const error = await transport.deliver(message(), never).then(
        () => null,
        (e: Error) => e,
      );
      expect(error, mode).toBeInstanceOf(Error);
      reasons.push(error!.message);
    }
    expect(reasons[0]).toBe('EENVELOPE 550 (RCPT TO)');
    expect(reasons[1]).toBe('EENVELOPE 451 (RCPT TO)');
    expect(reasons[2]).toMatch(/^ETIMEDOUT/);
    expect(reasons[3]).toMatch(/^E[A-Z]+/);
    for (const reason of reasons) {
      expect(reason).not.toContain(TOKEN);
      expect(reason).not.toContain('alice');
    }
    expect(server.received).toHaveLength(0);
    expect(server.attempts).toBe(4);
  });
});

describe('log transport', () => {
  it('writes the message and its link to the log instead of sending it', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    await new LogTransport(createLogger({ production: false }, sink)).deliver(message(), never);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { msg: string; mail: Record<string, unknown> };
    expect(line.msg).toContain(LINK);
    expect(line.mail).toMatchObject({ kind: 'password_reset', to: 'alice@example.com', link: LINK });
    expect(line.mail.text).toContain(LINK);
  });
});
