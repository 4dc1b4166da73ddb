import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/**
 * A real SMTP server (`smtp-server`) on a free port of 127.0.0.1 that keeps what arrives, parsed
 * with `mailparser`. Point the gateway at it with `inbox.env` (MAIL_TRANSPORT=smtp, SMTP_URL,
 * SMTP_TLS=off), then `await inbox.nextMail('alice@example.com')` and read `mail.link` /
 * `mail.token` out of it.
 *
 * Modes, for fault tests (`setMode`): `accept`; `refuse` (550 to RCPT TO: a permanent refusal);
 * `tempfail` (451 to RCPT TO); `hang` (reads the message, never answers it); `drop` (reads the
 * message, then cuts the connection without an answer).
 */
export type InboxMode = 'accept' | 'refuse' | 'tempfail' | 'hang' | 'drop';

export interface ReceivedMail {
  /** The envelope (MAIL FROM, RCPT TO). */
  envelopeFrom: string | null;
  envelopeTo: string[];
  /** Headers as parsed. */
  from: string;
  to: string;
  subject: string;
  messageId: string | null;
  text: string;
  /** The HTML body; '' when the message had none. */
  html: string;
  /** The message as it came over the wire. */
  raw: string;
  /** Every http(s) URL in the text body, in order. */
  links: string[];
  /** The first of `links`, or null. */
  link: string | null;
  /** The link's `token` query parameter (the default link templates put it there), or null. */
  token: string | null;
  /** The user name of the SMTP AUTH, or null without AUTH. */
  authUser: string | null;
  /** Whether the session had been upgraded with STARTTLS. */
  secure: boolean;
}

export interface SmtpInboxOptions {
  mode?: InboxMode;
  /** Offer STARTTLS (with smtp-server's built-in self-signed certificate). Default: not offered. */
  starttls?: boolean;
  /** Require AUTH with these credentials (any other is refused with 535). Default: AUTH optional, any accepted. */
  auth?: { user: string; pass: string };
}

export interface SmtpInbox {
  port: number;
  /** smtp://127.0.0.1:port */
  url: string;
  /** The gateway settings that send to this inbox. */
  env: Record<string, string>;
  /** Every message accepted so far, in order of arrival. */
  readonly received: readonly ReceivedMail[];
  /** Messages attempted (RCPT TO seen), whatever the mode did with them. */
  readonly attempts: number;
  setMode(mode: InboxMode): void;
  /** The next message to `address` not yet returned by nextMail (oldest first); waits up to `timeoutMs` for one. */
  nextMail(address: string, timeoutMs?: number): Promise<ReceivedMail>;
  /** Messages accepted for `address` so far (returned by nextMail or not). */
  mailsTo(address: string): ReceivedMail[];
  /** Waits until `condition()` holds, checking after each SMTP event (and every 20 ms); rejects after `timeoutMs`. */
  waitFor(condition: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_WAIT_MS = 10_000;

export async function startSmtpInbox(options: SmtpInboxOptions = {}): Promise<SmtpInbox> {
  let mode: InboxMode = options.mode ?? 'accept';
  let attempts = 0;
  const received: ReceivedMail[] = [];
  const taken = new Set<ReceivedMail>();
  const hanging = new Set<() => void>();
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of [...listeners]) listener();
  };

  const refusal = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

  const server: SMTPServer = new SMTPServer({
    secure: false,
    logger: false,
    banner: 'tessera test inbox',
    authOptional: !options.auth,
    allowInsecureAuth: true,
    disabledCommands: options.starttls ? [] : ['STARTTLS'],
    onAuth(auth, _session, callback) {
      if (options.auth && (auth.username !== options.auth.user || auth.password !== options.auth.pass)) {
        callback(refusal(535, 'authentication failed'));
        return;
      }
      callback(null, { user: auth.username });
    },
    onRcptTo(_address, _session, callback) {
      attempts += 1;
      changed();
      if (mode === 'refuse') return callback(refusal(550, 'mailbox unavailable'));
      if (mode === 'tempfail') return callback(refusal(451, 'try again later'));
      callback();
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const current = mode;
        if (current === 'hang') {
          hanging.add(() => callback(refusal(421, 'closing')));
          changed();
          return;
        }
        if (current === 'drop') {
          for (const connection of server.connections) {
            if (connection.id === session.id) connection._socket.destroy();
          }
          changed();
          return;
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            const text = parsed.text ?? '';
            const links = [...text.matchAll(/https?:\/\/[^\s<>"']+/g)].map((m) => m[0]);
            const link = links[0] ?? null;
            const address = (value: unknown) =>
              value === undefined ? '' : Array.isArray(value) ? value.map((v) => v.text).join(', ') : (value as { text: string }).text;
            received.push({
              envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
              envelopeTo: session.envelope.rcptTo.map((r) => r.address),
              from: address(parsed.from),
              to: address(parsed.to),
              subject: parsed.subject ?? '',
              messageId: parsed.messageId ?? null,
              text,
              html: typeof parsed.html === 'string' ? parsed.html : '',
              raw: raw.toString('utf8'),
              links,
              link,
              token: link === null ? null : new URL(link).searchParams.get('token'),
              authUser: typeof session.user === 'string' ? session.user : null,
              secure: session.secure,
            });
            callback();
            changed();
          },
          (error: Error) => callback(refusal(554, `unparsable message: ${error.message}`)),
        );
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined);
  const port = (server.server.address() as AddressInfo).port;
  const url = `smtp://127.0.0.1:${port}`;

  const waitFor = (condition: () => boolean, timeoutMs = DEFAULT_WAIT_MS, what = 'the condition') =>
    new Promise<void>((resolve, reject) => {
      if (condition()) return resolve();
      const check = () => {
        if (!condition()) return;
        done();
        resolve();
      };
      const poll = setInterval(check, 20);
      const timer = setTimeout(() => {
        done();
        reject(new Error(`smtp inbox: timed out after ${timeoutMs} ms waiting for ${what} (${received.length} mail(s) received, ${attempts} attempt(s))`));
      }, timeoutMs);
      const done = () => {
        clearInterval(poll);
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
    });

  const mailsTo = (address: string) => {
    const wanted = address.toLowerCase();
    return received.filter((mail) => mail.envelopeTo.some((to) => to.toLowerCase() === wanted));
  };

  const releaseHanging = () => {
    for (const release of hanging) release();
    hanging.clear();
  };

  return {
    port,
    url,
    env: { MAIL_TRANSPORT: 'smtp', SMTP_URL: url, SMTP_TLS: 'off' },
    received,
    get attempts() {
      return attempts;
    },
    setMode(next) {
      mode = next;
      if (next !== 'hang') releaseHanging();
    },
    async nextMail(address, timeoutMs = DEFAULT_WAIT_MS) {
      const untaken = () => mailsTo(address).find((mail) => !taken.has(mail));
      await waitFor(() => untaken() !== undefined, timeoutMs, `a mail to ${address}`);
      const mail = untaken()!;
      taken.add(mail);
      return mail;
    },
    mailsTo,
    waitFor,
    close: () =>
      new Promise<void>((resolve) => {
        releaseHanging();
        for (const connection of server.connections) connection._socket.destroy();
        server.close(() => resolve());
      }),
  };
}
