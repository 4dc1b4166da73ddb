import { accountFailuresKey } from '../auth/loginThrottle.js';
import type { CounterStore } from '../store/types.js';

/** The counter of reset requests for an address (PASSWORD_RESET_MAX_REQUESTS per window). */
export function resetRequestsKey(email: string): string {
  return `password-reset:account:${email}`;
}

/** A deleted account's counters, keyed by its email (not under the user's tag): gone with it. */
export async function forgetAccountCounters(store: CounterStore, email: string): Promise<void> {
  await Promise.all([store.reset(accountFailuresKey(email)), store.reset(resetRequestsKey(email))]);
}
