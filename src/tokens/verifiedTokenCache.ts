import type { Clock } from '../clock.js';
import type { AccessTokenClaims } from './types.js';

export interface VerifiedTokenCacheOptions {
  /** At most this many tokens are kept (0: nothing is cached). */
  maxEntries: number;
  clock: Clock;
  /** The verifier's leeway for exp, nbf and iat, in seconds. */
  clockToleranceSec: number;
}

/** What a hit hands back: the verified claims, frozen, shared by every request that presents the token. */
export type CachedClaims = Readonly<AccessTokenClaims>;

interface Entry {
  readonly token: string;
  readonly claims: CachedClaims;
  /** `exp`, in seconds. */
  readonly exp: number;
  /** The later of `iat` and `nbf`, in seconds. */
  readonly notBefore: number;
  /** Second-chance bit: set on a hit, cleared when the clock hand passes the entry. */
  used: boolean;
}

/**
 * Access tokens whose signature and claims were verified, so a token presented again skips the
 * signature check. Keyed by the exact token string: a token that differs in any character (a
 * malleated signature included) is not found here and is verified on its own.
 *
 * An entry is served only while verification would still accept the token's times: `exp` later
 * than now minus the tolerance, `iat`/`nbf` no later than now plus the tolerance (so a clock that
 * steps back is honoured too), both read from the injected clock. Only successes are cached,
 * and only tokens whose `iat`/`nbf` are not in the future. Revocation is not this cache's job:
 * callers check the session of every request, cached or not, and `delete` a token they find
 * revoked.
 *
 * Bounded: `maxEntries` slots in a ring, evicted by CLOCK (second chance): the hand passes over
 * entries hit since it last passed them (clearing their bit) and takes the first one that was
 * not, or that has expired. Every operation is O(1) amortized; a hit is one Map lookup, two
 * comparisons and a bit set.
 */
export class VerifiedTokenCache {
  private readonly index = new Map<string, number>();
  private readonly slots: (Entry | undefined)[];
  /** Slots handed out so far (they fill in order, then are reused through the hand). */
  private filled = 0;
  private hand = 0;

  constructor(private readonly options: VerifiedTokenCacheOptions) {
    if (!(Number.isInteger(options.maxEntries) && options.maxEntries >= 0)) {
      throw new RangeError('maxEntries must be a whole number, 0 or more');
    }
    this.slots = new Array<Entry | undefined>(options.maxEntries).fill(undefined);
  }

  get size(): number {
    return this.index.size;
  }

  /** The claims of a token verified before, or undefined (never cached, evicted, or no longer acceptable at this time). */
  get(token: string): CachedClaims | undefined {
    const slot = this.index.get(token);
    if (slot === undefined) return undefined;
    const entry = this.slots[slot]!;
    if (!this.acceptable(entry, this.nowSec())) {
      this.free(slot);
      return undefined;
    }
    entry.used = true;
    return entry.claims;
  }

  /**
   * Remembers a token that has just passed verification; returns the claims frozen (the object a
   * later hit returns). `nbf` is the token's own, if it has one.
   */
  set(token: string, claims: AccessTokenClaims, nbf?: number): CachedClaims {
    const frozen: CachedClaims = Object.freeze({
      ...claims,
      roles: Object.freeze([...claims.roles]) as string[],
      ...(claims.amr ? { amr: Object.freeze([...claims.amr]) as string[] } : {}),
    });
    if (this.options.maxEntries === 0) return frozen;
    const now = this.nowSec();
    const notBefore = Math.max(claims.iat, typeof nbf === 'number' ? nbf : -Infinity);
    // Not before it is valid without leeway, and not once it has expired.
    if (notBefore > now) return frozen;
    const entry: Entry = { token, claims: frozen, exp: claims.exp, notBefore, used: false };
    if (!this.acceptable(entry, now)) return frozen;
    const existing = this.index.get(token);
    const slot = existing ?? (this.filled < this.slots.length ? this.filled++ : this.evict(now));
    this.slots[slot] = entry;
    this.index.set(token, slot);
    return frozen;
  }

  delete(token: string): void {
    const slot = this.index.get(token);
    if (slot !== undefined) this.free(slot);
  }

  clear(): void {
    this.index.clear();
    this.slots.fill(undefined);
    this.filled = 0;
    this.hand = 0;
  }

  private nowSec(): number {
    return Math.floor(this.options.clock.now() / 1000);
  }

  /** The same time checks verification makes (jose: exp <= now - tolerance is expired; nbf, and our iat, > now + tolerance is refused). */
  private acceptable(entry: Entry, now: number): boolean {
    const tolerance = this.options.clockToleranceSec;
    return entry.exp > now - tolerance && entry.notBefore <= now + tolerance;
  }

  private free(slot: number): void {
    const entry = this.slots[slot];
    if (entry === undefined) return;
    this.index.delete(entry.token);
    this.slots[slot] = undefined;
  }

  /** Frees a slot with the clock hand and returns it; ends within one lap, since each pass clears a bit. */
  private evict(now: number): number {
    for (;;) {
      const slot = this.hand;
      this.hand = slot + 1 === this.slots.length ? 0 : slot + 1;
      const entry = this.slots[slot];
      if (entry !== undefined && entry.used && this.acceptable(entry, now)) {
        entry.used = false;
        continue;
      }
      this.free(slot);
      return slot;
    }
  }
}
