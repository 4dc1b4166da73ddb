import type { MailKind } from '../types.js';

/** One rendered message, ready for a transport. */
export interface OutgoingMail {
  kind: MailKind;
  /** Recipient (normalized address). */
  to: string;
  /** MAIL_FROM. */
  from: string;
  subject: string;
  text: string;
  html: string;
  /** The link built from the kind's URL template; null for notices. A credential: never logged by smtp or webhook. */
  link: string | null;
  /** The mail token itself (the webhook transport hands it over); null for notices. */
  token: string | null;
  /** Stable across the retries of one message (the webhook's `webhook-id`, the SMTP Message-ID's left part). */
  id: string;
}

/**
 * Where rendered mail goes: `log`, `smtp`, `webhook`. `deliver` resolves once the message was
 * accepted, or rejects with a `DeliveryError` whose message is safe to log (a status or an error
 * code: never the link, the token, the body or a server's free-text reply, which may echo them).
 */
export interface MailTransport {
  readonly name: 'log' | 'smtp' | 'webhook';
  deliver(mail: OutgoingMail, stop: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A failed attempt; `message` is safe to log. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}
