/**
 * What the account flows ask of mail (docs/contract.md section 7). Services call a `Mailer`,
 * never a transport: the mailer renders the kind's templates, builds the link from the kind's URL
 * template, and hands the message to the configured transport (`log`, `smtp`, `webhook`).
 */

/** The kinds of mail the contract names. */
export const MAIL_KINDS = ['password_reset', 'email_verification', 'email_change', 'password_changed', 'new_sign_in'] as const;
export type MailKind = (typeof MAIL_KINDS)[number];

export interface MailRequest {
  kind: MailKind;
  /** The recipient's address (normalized). */
  to: string;
  /**
   * The mail token, for the kinds that carry one (password_reset, email_verification,
   * email_change): the mailer puts it into the kind's link template. Null for notices.
   */
  token: string | null;
  /** Values a template may show besides the product name and link (e.g. the new address, the sign-in's user agent). */
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
