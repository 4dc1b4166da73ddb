import type { Logger } from '../../logger.js';
import type { MailTransport, OutgoingMail } from './transport.js';

/**
 * MAIL_TRANSPORT=log (the default outside production, refused in production): nothing is sent;
 * the message, its link included, is written to the log, so the quick start works without a
 * mail server. The link is a credential: that is why production refuses this transport.
 */
export class LogTransport implements MailTransport {
  readonly name = 'log';

  constructor(private readonly logger: Logger) {}

  async deliver(mail: OutgoingMail, _stop: AbortSignal): Promise<void> {
    this.logger.info(
      { mail: { kind: mail.kind, to: mail.to, subject: mail.subject, link: mail.link, text: mail.text } },
      `mail not sent (MAIL_TRANSPORT=log): ${mail.kind} to ${mail.to}${mail.link ? `, link ${mail.link}` : ''}`,
    );
  }

  async close(): Promise<void> {}
}
