import { auditTagForSlot, slotOf } from './redisEvents.js';

/** The kinds of mail token a user may hold, one key each (mailToken). */
export const MAIL_TOKEN_KEY_KINDS = ['reset', 'verify', 'change'] as const;

/**
 * Where each record lives. A user's record (whose field `s` is the user's session index) and
 * sessions share the hash tag `{u:<userId>}`, so the scripts that touch them stay in one Redis
 * Cluster slot.
 */
export class RedisKeys {
  /** `cluster`: one audit stream per slot (redisEvents.ts) instead of one. */
  constructor(
    readonly prefix: string,
    private readonly cluster = false,
  ) {}

  user(userId: string): string {
    return `${this.prefix}{u:${userId}}:user`;
  }
  /**
   * The session key is this plus the session id (scripts build it). `r` (the session record):
   * the first layout kept a hash at `:s:<id>`, which this one must not read as a record.
   */
  sessionPrefix(userId: string): string {
    return `${this.prefix}{u:${userId}}:r:`;
  }
  session(userId: string, sessionId: string): string {
    return this.sessionPrefix(userId) + sessionId;
  }
  /** Written before WAIT, so WAIT covers this user's slot even when the script itself wrote nothing. */
  ackMarker(userId: string): string {
    return `${this.prefix}{u:${userId}}:ack`;
  }
  /**
   * The newest mail token of a kind (`reset`, `verify`, `change`) for the user: a hash of its
   * hash and what it is for, with the token's TTL. One key per kind: a new token supersedes.
   */
  mailToken(userId: string, kind: string): string {
    return `${this.prefix}{u:${userId}}:mt:${kind}`;
  }
  /**
   * Every key of the user's own that `deleteUser` removes (besides the sessions, found through
   * the user's session index): all under the user's `{u:<id>}` tag, so one script in one slot
   * erases them. A capability that keeps records of a user (factors, identities) adds its keys
   * here; its keys must carry the same tag.
   */
  /** The user's second factors and recovery codes (one hash: factorsRedis.ts). */
  factors(userId: string): string {
    return `${this.prefix}{u:${userId}}:factors`;
  }
  userOwnedKeys(userId: string): string[] {
    return [
      this.user(userId),
      this.ackMarker(userId),
      this.userEvents(userId),
      ...MAIL_TOKEN_KEY_KINDS.map((kind) => this.mailToken(userId, kind)),
      // Second factors (factorsRedis.ts): the factors and recovery codes. Its other keys (a TOTP
      // enrolment, an MFA ticket, a WebAuthn challenge) expire by themselves within 15 minutes,
      // and none of them works without the user's record.
      this.factors(userId),
      this.identities(userId),
    ];
  }
  /** The user's identities at other providers (identityRedis.ts): identity id → record. */
  identities(userId: string): string {
    return `${this.prefix}{u:${userId}}:idp`;
  }
  /**
   * Admin listing: a sorted set (all scores 0) of `<email>\u0000<user id>`, read in email order
   * with ZRANGEBYLEX, so a page costs O(log n + page) and never a KEYS or SCAN.
   */
  usersByEmail(): string {
    return `${this.prefix}users:by-email`;
  }
  email(email: string): string {
    return `${this.prefix}email:${email}`;
  }
  /** Pub/sub channel (keyPrefix options do not apply to channels, so it is spelled out here). */
  revocationChannel(): string {
    return `${this.prefix}revocations`;
  }
  /** Pub/sub channel of live session events (redisEvents.ts LIVE_EVENT_TYPES), for src/realtime. */
  liveEventsChannel(): string {
    return `${this.prefix}session-events`;
  }
  counter(name: string): string {
    return `${this.prefix}count:${name}`;
  }
  /** The user's own security events (`securityEvents`), in the user's slot. */
  userEvents(userId: string): string {
    return `${this.prefix}{u:${userId}}:events`;
  }
  /**
   * The audit stream a script touching `key` appends to: `{prefix}audit`, or on a Cluster the
   * stream of the key's slot, `{prefix}audit:{<tag>}`.
   */
  auditStreamFor(key: string): string {
    return this.cluster ? `${this.prefix}audit:{${auditTagForSlot(slotOf(key))}}` : `${this.prefix}audit`;
  }
  /** The single audit stream (one server or Sentinel). */
  auditStream(): string {
    return `${this.prefix}audit`;
  }
  /** SCAN pattern of the per-slot audit streams (glob characters of the prefix escaped). */
  auditStreamPattern(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}audit:{*}`;
  }
  /** Whether a key SCAN found is one of this prefix's per-slot audit streams. */
  isAuditStream(key: string): boolean {
    return key.startsWith(`${this.prefix}audit:{`) && /^audit:\{[0-9a-z]+\}$/.test(key.slice(this.prefix.length));
  }
}
