import type { RetryBackoff } from './types.js';

/**
 * How long an entry waits after its attempt number `attempts` began before it is tried again:
 * `base · 2^(attempts-1)`, capped at `max`, times a jitter factor in [0.5, 1], and never less
 * than `minIdle` (an attempt still in flight is not taken over). The Redis claim script
 * computes the same (redisEventScripts.ts); both stores' contract tests pin it.
 */
export function retryDelayMs(attempts: number, backoff: RetryBackoff, jitter: number): number {
  const exponential = Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.max(backoff.minIdleMs, Math.floor(exponential * jitter));
}

/** A jitter factor in [0.5, 1] from a random number in [0, 1). */
export function jitterFactor(random: number): number {
  return 0.5 + Math.min(Math.max(random, 0), 1) / 2;
}
