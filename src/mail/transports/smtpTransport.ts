import { createTransport } from 'nodemailer';
import { DeliveryError, type MailTransport, type OutgoingMail } from './transport.js';

export interface SmtpSettings {
  /** SMTP_URL: `smtp://user:pass@host:port` (STARTTLS per `tls`) or `smtps://…` (TLS from the first byte). */
  url: string;
  /** SMTP_TLS: `starttls` (default: the upgrade is required, never plaintext), `off` (a local relay). */
  tls: 'starttls' | 'off';
}

/** What nodemailer attaches to a failure (its own fields; the free-text `response` is not used). */
interface NodemailerError {
  code?: unknown;
  responseCode?: unknown;
  command?: unknown;
}

/**
 * MAIL_TRANSPORT=smtp, through nodemailer: one connection per message (auth mail is rare and
 * the mailer bounds how many go at once), every wait bounded (connection, greeting, and each
 * read or write), no file or URL access from message fields.
 */
export class SmtpTransport implements MailTransport {
  readonly name = 'smtp';
  private readonly transporter: ReturnType<typeof createTransport>;

  constructor(settings: SmtpSettings, timeoutMs: number) {
    const url = new URL(settings.url);
    const secure = url.protocol === 'smtps:';
    this.transporter = createTransport({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
      secure,
      requireTLS: !secure && settings.tls === 'starttls',
      ignoreTLS: !secure && settings.tls === 'off',
      ...(url.username === ''
        ? {}
        : { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }),
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      dnsTimeout: timeoutMs,
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
      debug: false,
    });
  }

  async deliver(mail: OutgoingMail, _stop: AbortSignal): Promise<void> {
    try {
      await this.transporter.sendMail({
        from: mail.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: `<${mail.id}@tessera>`,
        disableFileAccess: true,
        disableUrlAccess: true,
      });
    } catch (error) {
      throw new DeliveryError(describeSmtpFailure(error));
    }
  }

  async close(): Promise<void> {
    this.transporter.close();
  }
}

/** `EENVELOPE 550 (RCPT TO)`: the error code, the server's reply code and the command; never the reply's text. */
export function describeSmtpFailure(error: unknown): string {
  const { code, responseCode, command } = (error ?? {}) as NodemailerError;
  const parts = [
    typeof code === 'string' && /^[A-Z_]{1,32}$/.test(code) ? code : 'ERROR',
    ...(typeof responseCode === 'number' ? [String(responseCode)] : []),
    ...(typeof command === 'string' && /^[A-Z ]{1,20}$/.test(command) ? [`(${command})`] : []),
  ];
  return parts.join(' ');
}
