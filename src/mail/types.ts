/**
 * What the account flows ask of mail (docs/contract.md section 7). Services call a `Mailer`,
 * never a transport: the mailer renders the kind's templates, builds the link from the kind's URL
 * template, and hands the message to the configured transport (`log`, `smtp`, `webhook`).
 */

/** The kinds of mail the contract names. */
export const MAIL_KINDS = ['password_reset', 'email_verification', 'email_change', 'password_changed', 'new_sign_in'] as const;
export type MailKind = (typeof MAIL_KINDS)[number];

/**
 * One mail to send. The kinds and what they carry:
 * - `password_reset`, `email_verification`: `token` (put into PASSWORD_RESET_URL /
 *   EMAIL_VERIFICATION_URL as `{token}`).
 * - `email_change` with a `token`: the confirmation, to the NEW address (EMAIL_CHANGE_URL).
 *   `email_change` with `token: null`: the notice to the OLD address, no link; pass
 *   `details.newEmail`. (One kind, so `tessera_mail_sent_total{kind}` and the webhook's `kind`
 *   stay the contract's five; the mailer picks the `email_change_notice` template.)
 * - `password_changed`: a notice, `token: null`.
 * - `new_sign_in`: a notice, `token: null`; `details.time` (ISO 8601), `details.ip`,
 *   `details.userAgent`.
 * A link kind without a token is a bug: logged and counted as failed, nothing sent.
 */
export interface MailRequest {
  kind: MailKind;
  /** The recipient's address (normalized). */
  to: string;
  /**
   * The mail token, for the kinds that carry one (password_reset, email_verification,
   * email_change): the mailer puts it into the kind's link template. Null for notices.
   */
  token: string | null;
  /** Values a template may show besides the product name, link and recipient (`{{name}}` in the templates; see above). */
  details?: Readonly<Record<string, string>>;
}

export interface Mailer {
  /** False in production with no transport configured: the mail features answer FORBIDDEN FEATURE_DISABLED. */
  readonly enabled: boolean;
  /**
   * Queues the message and returns at once; never throws and never waits for the transport (an
   * answer must not take longer because a mail goes out). Failures are logged, counted and retried
   * a bounded number of times.
   */
  send(request: MailRequest): void;
  /** Waits (bounded) for sends in flight; called when the app closes. */
  close(): Promise<void>;
}
