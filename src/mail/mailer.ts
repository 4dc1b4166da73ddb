import { jitterFactor, retryDelayMs } from '../events/backoff.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { type Metrics, noMetrics } from '../observability/metrics.js';
import { buildLink, LINK_KINDS, type LinkKind, type MailSettings } from './settings.js';
import { render, type TemplateName } from './templates.js';
import { LogTransport } from './transports/logTransport.js';
import { SmtpTransport } from './transports/smtpTransport.js';
import type { MailTransport, OutgoingMail } from './transports/transport.js';
import { WebhookTransport } from './transports/webhookTransport.js';
import type { Mailer, MailRequest } from './types.js';

/** How the mailer paces its work; tests make them short. */
export interface MailerTimings {
  /** Attempts per message, the first included. */
  maxAttempts: number;
  /** The wait after the first failed attempt; it doubles after each (times a jitter in [0.5, 1]). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Messages handed to the transport at once; the others wait in the queue. */
  concurrency: number;
  /** Messages waiting at most; past it a new one is dropped (logged and counted as failed). */
  maxQueued: number;
  /** How long `close()` waits for messages in flight. */
  closeTimeoutMs: number;
}

export const DEFAULT_MAILER_TIMINGS: MailerTimings = {
  maxAttempts: 3,
  baseDelayMs: 2_000,
  maxDelayMs: 30_000,
  concurrency: 4,
  maxQueued: 1_000,
  closeTimeoutMs: 5_000,
};

export interface MailerOptions {
  settings: MailSettings;
  transport: MailTransport;
  logger: Logger;
  metrics?: Metrics;
  timings?: Partial<MailerTimings>;
  /** The backoff's jitter source, in [0, 1). */
  random?: () => number;
}

interface Job {
  mail: OutgoingMail;
  attempt: number;
}

const isLinkKind = (kind: string): kind is LinkKind => (LINK_KINDS as readonly string[]).includes(kind);

/**
 * The mailer the account flows call (`Mailer`): `send` renders the kind's templates, builds the
 * link, queues the message and returns at once, so no answer waits on a mail server. A queue of
 * bounded size feeds the transport a few messages at a time; a failed attempt is retried with
 * exponential backoff up to `maxAttempts`, then given up. Every outcome is counted
 * (`tessera_mail_sent_total{kind,outcome}`: sent, retried, failed) and logged by kind, message
 * id, attempt and a reason that never holds the link, the token or the recipient.
 */
export class BackgroundMailer implements Mailer {
  readonly enabled = true;
  private readonly timings: MailerTimings;
  private readonly metrics: Metrics;
  private readonly random: () => number;
  private readonly queue: Job[] = [];
  private readonly retryTimers = new Map<NodeJS.Timeout, Job>();
  private readonly stop = new AbortController();
  private running = 0;
  private closing = false;
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: MailerOptions) {
    this.timings = { ...DEFAULT_MAILER_TIMINGS, ...options.timings };
    this.metrics = options.metrics ?? noMetrics;
    this.random = options.random ?? Math.random;
  }

  /** Messages queued, in flight or waiting for a retry. */
  get pending(): number {
    return this.queue.length + this.running + this.retryTimers.size;
  }

  send(request: MailRequest): void {
    try {
      const mail = this.compose(request);
      if (this.closing) return this.giveUp(mail, 1, 'the gateway is stopping');
      if (this.queue.length >= this.timings.maxQueued) return this.giveUp(mail, 1, 'the mail queue is full');
      this.queue.push({ mail, attempt: 1 });
      // Not even the transport's first step runs in the caller's turn: the answer goes out first.
      this.schedulePump();
    } catch (error) {
      // A bug here must not become the caller's error (nor a 500): log it and count the mail as failed.
      this.options.logger.error({ err: error, mail: { kind: request.kind } }, 'mail could not be prepared');
      this.metrics.mailSent(request.kind, 'failed');
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const [timer, job] of this.retryTimers) {
      clearTimeout(timer);
      this.giveUp(job.mail, job.attempt, 'the gateway stopped before the retry');
    }
    this.retryTimers.clear();
    if (this.pending > 0) {
      let deadline: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      const timeout = new Promise<'timeout'>((resolve) => (deadline = setTimeout(() => resolve('timeout'), this.timings.closeTimeoutMs)));
      const result = await Promise.race([idle, timeout]);
      clearTimeout(deadline);
      if (result === 'timeout') {
        this.options.logger.warn({ mail: { unfinished: this.pending } }, 'mail: stopped with messages still in flight (not sent)');
        this.stop.abort();
        for (const job of this.queue.splice(0)) this.giveUp(job.mail, job.attempt, 'the gateway stopped before it was sent');
      }
    }
    await this.options.transport.close();
  }

  private compose(request: MailRequest): OutgoingMail {
    const { settings } = this.options;
    let link: string | null = null;
    let template: TemplateName = request.kind;
    if (request.kind === 'email_change' && request.token === null) {
      // The notice to the old address (no link): same kind, its own template.
      template = 'email_change_notice';
    } else if (isLinkKind(request.kind)) {
      if (request.token === null) throw new Error(`a ${request.kind} mail needs a token`);
      link = buildLink(settings.links[request.kind], request.token);
    }
    const rendered = render(settings.templates[template], {
      ...request.details,
      productName: settings.productName,
      email: request.to,
      link: link ?? '',
    });
    return {
      kind: request.kind,
      to: request.to,
      from: settings.from,
      ...rendered,
      link,
      token: link === null ? null : request.token,
      id: `mail_${newId()}`,
    };
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.timings.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running += 1;
      this.attempt(job).finally(() => {
        this.running -= 1;
        this.pump();
        if (this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      });
    }
  }

  private async attempt(job: Job): Promise<void> {
    const { mail } = job;
    const transport = this.options.transport;
    try {
      await transport.deliver(mail, this.stop.signal);
    } catch (error) {
      const reason = error instanceof Error && error.name === 'DeliveryError' ? error.message : 'unexpected error';
      if (!(error instanceof Error && error.name === 'DeliveryError')) {
        // Not a transport's own failure: keep its class for the operator, never its message (it may hold the message).
        this.options.logger.error({ mail: { id: mail.id, kind: mail.kind }, errorClass: error instanceof Error ? error.name : typeof error }, 'mail transport failed unexpectedly');
      }
      if (job.attempt >= this.timings.maxAttempts || this.closing) return this.giveUp(mail, job.attempt, reason);
      const { baseDelayMs, maxDelayMs } = this.timings;
      const delayMs = retryDelayMs(job.attempt, { baseDelayMs, maxDelayMs, minIdleMs: 0 }, jitterFactor(this.random()));
      this.metrics.mailSent(mail.kind, 'retried');
      this.options.logger.warn(
        { mail: { id: mail.id, kind: mail.kind, transport: transport.name, attempt: job.attempt, retryInMs: delayMs, reason } },
        `mail ${mail.kind} not sent (${reason}): attempt ${job.attempt} of ${this.timings.maxAttempts}, retrying`,
      );
      const next: Job = { mail, attempt: job.attempt + 1 };
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        this.queue.push(next);
        this.pump();
      }, delayMs);
      this.retryTimers.set(timer, next);
      return;
    }
    this.metrics.mailSent(mail.kind, 'sent');
    if (transport.name !== 'log') {
      this.options.logger.info({ mail: { id: mail.id, kind: mail.kind, transport: transport.name, attempt: job.attempt } }, `mail ${mail.kind} sent`);
    }
  }

  private giveUp(mail: OutgoingMail, attempts: number, reason: string): void {
    this.metrics.mailSent(mail.kind, 'failed');
    this.options.logger.error(
      { mail: { id: mail.id, kind: mail.kind, transport: this.options.transport.name, attempts, reason } },
      `mail ${mail.kind} not sent (${reason}): given up`,
    );
  }
}

/** Production without a transport: the mail features are off (FORBIDDEN FEATURE_DISABLED); `send` does nothing. */
export const disabledMailer: Mailer = {
  enabled: false,
  send: () => undefined,
  close: async () => undefined,
};

export interface CreateMailerDeps {
  logger: Logger;
  metrics?: Metrics;
  timings?: Partial<MailerTimings>;
  random?: () => number;
  /** A transport other than the configured one (tests). */
  transport?: MailTransport;
}

/** The mailer of the configuration: its transport, or `disabledMailer` when there is none. */
export function createMailer(settings: MailSettings, deps: CreateMailerDeps): Mailer {
  const transport = deps.transport ?? makeTransport(settings, deps.logger);
  if (!transport) return disabledMailer;
  return new BackgroundMailer({
    settings,
    transport,
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.timings ? { timings: deps.timings } : {}),
    ...(deps.random ? { random: deps.random } : {}),
  });
}

function makeTransport(settings: MailSettings, logger: Logger): MailTransport | null {
  const chosen = settings.transport;
  if (!chosen) return null;
  switch (chosen.kind) {
    case 'log':
      return new LogTransport(logger);
    case 'smtp':
      return new SmtpTransport(chosen.smtp, settings.sendTimeoutMs);
    case 'webhook':
      return new WebhookTransport(chosen.webhook, settings.sendTimeoutMs);
  }
}
