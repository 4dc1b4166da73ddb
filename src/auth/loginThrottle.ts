import type { Clock } from '../clock.js';
import { rateLimited } from '../errors.js';
import type { CounterStore } from '../store/types.js';

export interface LoginThrottleOptions {
  maxFailures: number;
  windowMs: number;
}

/**
 * Counts logins per account in a fixed window; a success clears the count, so what it holds is failures. Past `maxFailures`, every login of that
 * account answers RATE_LIMITED with `retryAfter` until the window ends, even with the right
 * password; a success clears the count.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly options: LoginThrottleOptions,
  ) {}

  private key(email: string): string {
    return `login-failures:account:${email}`;
  }

  /**
   * Counts this attempt before the password is checked, so concurrent attempts (aliases,
   * batches, parallel requests) cannot slip past the limit between a check and a count.
   */
  async beginAttempt(email: string): Promise<void> {
    const { count, resetInMs } = await this.counters.increment(this.key(email), this.options.windowMs, this.clock.now());
    if (count > this.options.maxFailures) throw rateLimited(Math.max(1, Math.ceil(resetInMs / 1000)));
  }

  async recordSuccess(email: string): Promise<void> {
    await this.counters.reset(this.key(email));
  }
}
