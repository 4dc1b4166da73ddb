import { WebhookSender } from '../../events/webhookSender.js';
import { DeliveryError, type MailTransport, type OutgoingMail } from './transport.js';

export interface MailWebhookSettings {
  /** MAIL_WEBHOOK_URL */
  url: string;
  /** MAIL_WEBHOOK_SECRET: `whsec_…` */
  secret: string;
}

/**
 * MAIL_TRANSPORT=webhook: a POST of `{ kind, to, subject, text, html, link, token }`, signed per
 * Standard Webhooks with the same sender as the audit webhook (`webhook-id` is the message's id,
 * the same on every retry, so a receiver can de-duplicate). Only a 2xx counts as delivered.
 */
export class WebhookTransport implements MailTransport {
  readonly name = 'webhook';
  private readonly sender: WebhookSender;

  constructor(settings: MailWebhookSettings, timeoutMs: number) {
    this.sender = new WebhookSender({ url: settings.url, secret: settings.secret, timeoutMs });
  }

  async deliver(mail: OutgoingMail, stop: AbortSignal): Promise<void> {
    const body = JSON.stringify({
      kind: mail.kind,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      link: mail.link,
      token: mail.token,
    });
    const result = await this.sender.post(mail.id, body, stop);
    // The sender's error is a status or an error code, never the body.
    if (!result.ok) throw new DeliveryError(result.error);
  }

  async close(): Promise<void> {}
}
