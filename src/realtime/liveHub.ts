import type { Clock } from '../clock.js';
import type { SecurityEvent } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { RevocationFeed } from '../revocation/revocationFeed.js';
import type { LiveEventFeed, SessionStore } from '../store/types.js';
import type { EventQueue } from './eventQueue.js';
import type { LiveConnection, LiveIdentity } from './liveConnection.js';
import type { SessionEventModel } from './types.js';

export interface LiveHubDeps {
  store: LiveEventFeed & Pick<SessionStore, 'getSessions'>;
  revocations: RevocationFeed;
  clock: Clock;
  /** CLOCK_TOLERANCE in ms: a connection closes at its token's `exp` plus this. */
  clockToleranceMs: number;
  logger: Logger;
}

/** Close codes (README "Subscriptions"). */
export const CloseCode = {
  /** The token at connection_init or in a renewal is bad, expired or revoked; or the token expired unrenewed. */
  UNAUTHORIZED: 4401,
  /** The session was revoked (after a last SESSION_REVOKED), or a renewal was for another user or session. */
  FORBIDDEN: 4403,
  /** The store cannot be reached to check a token: try again later (RFC 6455 1013). */
  TRY_AGAIN_LATER: 1013,
  /** The gateway is shutting down. */
  GOING_AWAY: 1001,
} as const;

/** ACCESS_TOKEN_EXPIRING goes out this long before `exp`. */
export const EXPIRY_WARNING_MS = 60_000;
/** How often expiries, warnings and unconfirmed sessions are looked at. */
const TICK_MS = 250;
/** While the revocation feed cannot vouch for sessions: how often the store is asked about them. */
const STORE_CHECK_MS = 1_000;
/** Sessions asked about in one store read. */
const STORE_CHECK_BATCH = 500;
/** A revocation the feed pushed waits this long for its session.revoked event (who revoked it) before closing. */
const EVENT_WAIT_MS = 100;
/** How long a session.revoked event is kept for a feed push that may come after it. */
const EVENT_KEEP_MS = 5_000;

/**
 * Every live connection of this instance, by user and by session, and what ends them:
 * - the session events of every instance (the store's LiveEventFeed): SIGNED_IN_ELSEWHERE to the
 *   user's other sessions, PASSWORD_CHANGED to all of them, SESSION_REVOKED then close 4403;
 * - the revocation feed (RevocationFeed.onRevoked, pushed from every instance): a revoked
 *   session's connections get SESSION_REVOKED and are closed with 4403, even if its event never
 *   arrives (the feed is what guarantees the close; the event only says who revoked it);
 * - the clock: ACCESS_TOKEN_EXPIRING 60 s before `exp`, close 4401 at `exp` + CLOCK_TOLERANCE;
 * - sessions the feed cannot vouch for (after start, after a feed outage, while it is down) are
 *   asked of the store every second, in batches; a session the store no longer has is closed
 *   as revoked; a store that does not answer keeps them (nothing can be revoked while it is down)
 *   until their tokens expire or need checking.
 */
export class LiveHub {
  private readonly all = new Set<LiveConnection>();
  private readonly bySession = new Map<string, Set<LiveConnection>>();
  private readonly byUser = new Map<string, Set<LiveConnection>>();
  private readonly waitingForEvent = new Map<string, NodeJS.Timeout>();
  private readonly revokedEvents = new Map<string, { event: SecurityEvent; until: number }>();
  private timer: NodeJS.Timeout | undefined;
  private stopFeed: (() => void) | null = null;
  private stopRevocations: (() => void) | null = null;
  private lastStoreCheck = 0;
  private storeCheckRunning = false;

  constructor(private readonly deps: LiveHubDeps) {}

  get size(): number {
    return this.all.size;
  }

  connections(): IterableIterator<LiveConnection> {
    return this.all.values();
  }

  async start(): Promise<void> {
    this.stopRevocations = this.deps.revocations.onRevoked((ids) => this.revoked(ids));
    this.stopFeed = await this.deps.store.subscribeLiveEvents((events) => this.liveEvents(events));
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.stopFeed?.();
    this.stopRevocations?.();
    for (const timer of this.waitingForEvent.values()) clearTimeout(timer);
    this.waitingForEvent.clear();
  }

  add(connection: LiveConnection): void {
    this.all.add(connection);
  }

  /** The connection is (now) signed in as `identity`: a renewal keeps user and session, so only the token changes. */
  signIn(connection: LiveConnection, identity: LiveIdentity): void {
    const before = connection.identity;
    connection.identity = identity;
    if (before) return;
    index(this.bySession, identity.sessionId, connection);
    index(this.byUser, identity.userId, connection);
  }

  remove(connection: LiveConnection): void {
    this.all.delete(connection);
    const identity = connection.identity;
    if (!identity) return;
    unindex(this.bySession, identity.sessionId, connection);
    unindex(this.byUser, identity.userId, connection);
  }

  /** A new sessionEvents subscription of a connection whose token is already within the warning. */
  subscribed(connection: LiveConnection, queue: EventQueue<SessionEventModel>): void {
    const identity = connection.identity;
    if (identity && this.deps.clock.now() >= identity.expiresAt - EXPIRY_WARNING_MS) queue.push(this.expiring(identity));
  }

  private liveEvents(events: readonly SecurityEvent[]): void {
    for (const event of events) {
      if (event.type === 'session.created' && event.userId) {
        for (const connection of this.byUser.get(event.userId) ?? []) {
          if (connection.identity?.sessionId !== event.sessionId) connection.deliver(sessionEvent('SIGNED_IN_ELSEWHERE', event));
        }
      } else if (event.type === 'password.changed' && event.userId) {
        for (const connection of this.byUser.get(event.userId) ?? []) connection.deliver(sessionEvent('PASSWORD_CHANGED', event));
      } else if (event.type === 'session.revoked' && event.sessionId) {
        this.revokedEvents.set(event.sessionId, { event, until: this.deps.clock.now() + EVENT_KEEP_MS });
        this.endSession(event.sessionId);
      }
    }
  }

  /** Pushed by the revocation feed: close at once if the event is here, else after waiting a little for it. */
  private revoked(ids: readonly string[]): void {
    for (const id of ids) {
      if (!this.bySession.has(id) || this.waitingForEvent.has(id)) continue;
      if (this.revokedEvents.has(id)) {
        this.endSession(id);
        continue;
      }
      const timer = setTimeout(() => this.endSession(id), EVENT_WAIT_MS);
      timer.unref();
      this.waitingForEvent.set(id, timer);
    }
  }

  /** SESSION_REVOKED to every subscription of the session's connections, then close 4403. */
  private endSession(sessionId: string): void {
    const timer = this.waitingForEvent.get(sessionId);
    if (timer) clearTimeout(timer);
    this.waitingForEvent.delete(sessionId);
    const connections = this.bySession.get(sessionId);
    if (!connections) return;
    const known = this.revokedEvents.get(sessionId)?.event;
    const event: SessionEventModel = known
      ? sessionEvent('SESSION_REVOKED', known)
      : { type: 'SESSION_REVOKED', time: this.deps.clock.now(), sessionId, userAgent: null, ipAddress: null };
    for (const connection of [...connections]) void connection.closeAfter(event, CloseCode.FORBIDDEN, 'SESSION_REVOKED');
  }

  private tick(): void {
    const now = this.deps.clock.now();
    const unconfirmed: LiveConnection[] = [];
    for (const connection of this.all) {
      const identity = connection.identity;
      if (!identity || connection.closing) continue;
      if (now >= identity.expiresAt + this.deps.clockToleranceMs) {
        connection.close(CloseCode.UNAUTHORIZED, 'TOKEN_EXPIRED');
        continue;
      }
      if (now >= identity.expiresAt - EXPIRY_WARNING_MS && connection.warnedFor !== identity.expiresAt) {
        connection.warnedFor = identity.expiresAt;
        connection.deliver(this.expiring(identity));
      }
      const status = this.deps.revocations.status(identity.sessionId);
      if (status === 'revoked') this.revoked([identity.sessionId]);
      else if (status === 'unknown') unconfirmed.push(connection);
    }
    for (const [id, kept] of this.revokedEvents) if (kept.until <= now) this.revokedEvents.delete(id);
    if (unconfirmed.length > 0 && !this.storeCheckRunning && now - this.lastStoreCheck >= STORE_CHECK_MS) {
      this.lastStoreCheck = now;
      this.storeCheckRunning = true;
      void this.checkInStore(unconfirmed).finally(() => (this.storeCheckRunning = false));
    }
  }

  /** Asks the store about sessions the feed cannot vouch for; gone ones are closed as revoked. */
  private async checkInStore(connections: LiveConnection[]): Promise<void> {
    const refs = new Map<string, string>();
    for (const c of connections) if (c.identity) refs.set(c.identity.sessionId, c.identity.userId);
    const all = [...refs].map(([sessionId, userId]) => ({ sessionId, userId }));
    for (let i = 0; i < all.length; i += STORE_CHECK_BATCH) {
      const batch = all.slice(i, i + STORE_CHECK_BATCH);
      const ticket = this.deps.revocations.ticket();
      let sessions;
      try {
        sessions = await this.deps.store.getSessions(batch, this.deps.clock.now());
      } catch (error) {
        // Down: nothing can be revoked while it is; the connections stay until their tokens need checking.
        this.deps.logger.debug({ err: error }, 'websocket sessions could not be checked in the store');
        return;
      }
      batch.forEach((ref, j) => {
        if (sessions[j]) this.deps.revocations.confirm(ref.sessionId, ticket);
        else {
          this.deps.revocations.noteRevoked([ref.sessionId]);
          this.endSession(ref.sessionId);
        }
      });
    }
  }

  private expiring(identity: LiveIdentity): SessionEventModel {
    return { type: 'ACCESS_TOKEN_EXPIRING', time: this.deps.clock.now(), sessionId: identity.sessionId, userAgent: null, ipAddress: null };
  }
}

function sessionEvent(type: SessionEventModel['type'], event: SecurityEvent): SessionEventModel {
  return { type, time: event.time, sessionId: event.sessionId, userAgent: event.userAgent, ipAddress: event.ip };
}

function index(map: Map<string, Set<LiveConnection>>, key: string, connection: LiveConnection): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(connection);
}

function unindex(map: Map<string, Set<LiveConnection>>, key: string, connection: LiveConnection): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(connection);
  if (set.size === 0) map.delete(key);
}
