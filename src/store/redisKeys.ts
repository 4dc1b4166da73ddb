/**
 * Where each record lives. A user's record (whose field `s` is the user's session index) and
 * sessions share the hash tag `{u:<userId>}`, so the scripts that touch them stay in one Redis
 * Cluster slot.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

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
  email(email: string): string {
    return `${this.prefix}email:${email}`;
  }
  /** Pub/sub channel (keyPrefix options do not apply to channels, so it is spelled out here). */
  revocationChannel(): string {
    return `${this.prefix}revocations`;
  }
  counter(name: string): string {
    return `${this.prefix}count:${name}`;
  }
}
