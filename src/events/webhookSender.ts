import { Webhook } from 'standardwebhooks';
import type { SecurityEvent } from './types.js';
import { webhookPayload } from './wire.js';

/** Standard Webhooks' secret form: `whsec_` and the base64 of 24 to 64 random bytes. */
export function isWebhookSecret(secret: string): boolean {
  const body = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : null;
  const bytes = body !== null && /^[A-Za-z0-9+/]+={0,2}$/.test(body) && body.length % 4 === 0 ? Buffer.from(body, 'base64').length : 0;
  return bytes >= 24 && bytes <= 64;
}

/** How one delivery attempt ended. */
export type SendResult = { ok: true; status: number } | { ok: false; status: number | null; error: string };

export interface WebhookSenderOptions {
  url: string;
  /** `whsec_…` (checked by loadConfig). */
  secret: string;
  timeoutMs: number;
}

/**
 * One signed POST per event, per the Standard Webhooks spec (the `standardwebhooks` package):
 * `webhook-id` is the event's id (receivers de-duplicate on it), `webhook-timestamp` the
 * attempt's wall-clock time in seconds, `webhook-signature` `v1,<HMAC-SHA256>` of
 * `id.timestamp.body`. Only a 2xx answer counts: a redirect, an error status, a reset
 * connection or no answer within the timeout is a failed attempt, retried later.
 */
export class WebhookSender {
  private readonly webhook: Webhook;

  constructor(private readonly options: WebhookSenderOptions) {
    this.webhook = new Webhook(options.secret);
  }

  async send(event: SecurityEvent, stop: AbortSignal): Promise<SendResult> {
    return this.post(event.id, JSON.stringify(webhookPayload(event)), stop);
  }

  /** One signed POST of `body` (JSON) as message `id` (the same id on every retry of one message). */
  async post(id: string, body: string, stop: AbortSignal): Promise<SendResult> {
    const at = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Tessera-Webhooks',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': this.webhook.sign(id, at, body),
    };
    const signal = AbortSignal.any([stop, AbortSignal.timeout(this.options.timeoutMs)]);
    try {
      const response = await fetch(this.options.url, { method: 'POST', headers, body, redirect: 'manual', signal });
      // The answer's body is not needed; reading it could hang as long as the receiver likes.
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
      return { ok: false, status: response.status, error: `HTTP ${response.status}` };
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown } }).cause;
      const name = error instanceof Error ? error.name : 'Error';
      const reason = name === 'TimeoutError' ? 'timed out' : typeof cause?.code === 'string' ? cause.code : name;
      return { ok: false, status: null, error: reason };
    }
  }
}
