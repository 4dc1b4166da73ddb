import type { Clock } from '../clock.js';
import { type Metrics, noMetrics } from '../observability/metrics.js';
import type { CounterStore } from '../store/types.js';

export interface LoginThrottleOptions {
  /** Failed logins per account per window. */
  maxFailures: number;
  /** Failed logins per client address per window (higher: many people may share one address). */
  maxFailuresPerAddress: number;
  windowMs: number;
}

/** A login refused by a limit: which one, for how long, and whether this is its first refusal of the window. */
export interface LimitReached {
  limit: 'account' | 'address';
  retryAfterSeconds: number;
  /** The attempt that passed the limit (the refusals after it in the same window are not). */
  first: boolean;
}

/**
 * Counts failed logins per account and per client address in a fixed window. Past a limit,
 * every login (even with the right password) answers RATE_LIMITED with `retryAfter` until the
 * window ends. Each attempt is counted before its password is checked, so concurrent attempts
 * (aliases, batches, parallel requests) cannot slip past between a check and a count; a success
 * then takes its count back, and clears the account's.
 */
/** The counter of an account's failed logins (keyed by its normalized email). */
export function accountFailuresKey(email: string): string {
  return `login-failures:account:${email}`;
}

export class LoginThrottle {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly options: LoginThrottleOptions,
    private readonly metrics: Metrics = noMetrics,
  ) {}

  private accountKey(email: string): string {
    return accountFailuresKey(email);
  }

  private addressKey(address: string): string {
    return `login-failures:address:${address}`;
  }

  /** Counts the attempt; the limit it is refused by (RATE_LIMITED for the caller), or null. */
  async beginAttempt(email: string, address: string | null): Promise<LimitReached | null> {
    const { windowMs, maxFailures, maxFailuresPerAddress } = this.options;
    const now = this.clock.now();
    const [account, byAddress] = await Promise.all([
      this.counters.increment(this.accountKey(email), windowMs, now),
      address === null ? null : this.counters.increment(this.addressKey(address), windowMs, now),
    ]);
    if (account.count > maxFailures) return this.refused(limited('account', account, maxFailures));
    if (byAddress && byAddress.count > maxFailuresPerAddress) return this.refused(limited('address', byAddress, maxFailuresPerAddress));
    return null;
  }

  /** The refusal, counted here where it is decided: a login refused, and by which limit. */
  private refused(reached: LimitReached): LimitReached {
    this.metrics.rateLimited(reached.limit === 'account' ? 'login_account' : 'login_address');
    this.metrics.login('rate_limited');
    return reached;
  }

  /** Takes back the attempt's own count (a correct password still waiting for its second factor), clearing nothing. */
  async takeBack(email: string, address: string | null): Promise<void> {
    const { windowMs } = this.options;
    const now = this.clock.now();
    await Promise.all([
      this.counters.increment(this.accountKey(email), windowMs, now, -1),
      address === null ? null : this.counters.increment(this.addressKey(address), windowMs, now, -1),
    ]);
  }

  /** Forgets the account's failed logins (a password reset proved the owner). */
  async clearAccount(email: string): Promise<void> {
    await this.counters.reset(this.accountKey(email));
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

function limited(limit: LimitReached['limit'], counter: { count: number; resetInMs: number }, max: number): LimitReached {
  return { limit, retryAfterSeconds: Math.max(1, Math.ceil(counter.resetInMs / 1000)), first: counter.count === max + 1 };
}
