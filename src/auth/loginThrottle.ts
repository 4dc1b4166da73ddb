import type { Clock } from '../clock.js';
import { rateLimited } from '../errors.js';
import { type Metrics, noMetrics, type RateLimit } from '../observability/metrics.js';
import type { CounterStore } from '../store/types.js';

export interface LoginThrottleOptions {
  /** Failed logins per account per window. */
  maxFailures: number;
  /** Failed logins per client address per window (higher: many people may share one address). */
  maxFailuresPerAddress: number;
  windowMs: number;
}

/**
 * Counts failed logins per account and per client address in a fixed window. Past a limit,
 * every login (even with the right password) answers RATE_LIMITED with `retryAfter` until the
 * window ends. Each attempt is counted before its password is checked, so concurrent attempts
 * (aliases, batches, parallel requests) cannot slip past between a check and a count; a success
 * then takes its count back, and clears the account's.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly options: LoginThrottleOptions,
    private readonly metrics: Metrics = noMetrics,
  ) {}

  private accountKey(email: string): string {
    return `login-failures:account:${email}`;
  }

  private addressKey(address: string): string {
    return `login-failures:address:${address}`;
  }

  async beginAttempt(email: string, address: string | null): Promise<void> {
    const { windowMs, maxFailures, maxFailuresPerAddress } = this.options;
    const now = this.clock.now();
    const [account, byAddress] = await Promise.all([
      this.counters.increment(this.accountKey(email), windowMs, now),
      address === null ? null : this.counters.increment(this.addressKey(address), windowMs, now),
    ]);
    if (account.count > maxFailures) throw this.limited('login_account', account.resetInMs);
    if (byAddress && byAddress.count > maxFailuresPerAddress) throw this.limited('login_address', byAddress.resetInMs);
  }

  /** The refusal, counted here where it is decided: a login refused, and by which limit. */
  private limited(limit: RateLimit, resetInMs: number) {
    this.metrics.rateLimited(limit);
    this.metrics.login('rate_limited');
    return limited(resetInMs);
  }

  async recordSuccess(email: string, address: string | null): Promise<void> {
    await Promise.all([
      this.counters.reset(this.accountKey(email)),
      address === null
        ? null
        : this.counters.increment(this.addressKey(address), this.options.windowMs, this.clock.now(), -1),
    ]);
  }
}

function limited(resetInMs: number) {
  return rateLimited(Math.max(1, Math.ceil(resetInMs / 1000)));
}
