import type { AccessTokenClaims } from '../tokens/types.js';
import { EventQueue } from './eventQueue.js';
import type { LiveChannel, SessionEventModel } from './types.js';

/** The socket as the hub sees it: closing is idempotent (the first code wins). */
export interface LiveSocket {
  close(code: number, reason: string): void;
}

/** Who a connection is signed in as, and until when its token holds. */
export interface LiveIdentity {
  userId: string;
  sessionId: string;
  /** The access token's `exp`, in epoch ms. */
  expiresAt: number;
  /** `Bearer <token>`: per-operation contexts are built from it, as an HTTP request's are. */
  authorization: string;
  /** The token's verified claims (the access-token cache's own object). */
  claims: AccessTokenClaims;
}

/** How long a final event may take to reach the socket before the connection is closed anyway. */
const FLUSH_TIMEOUT_MS = 300;

/**
 * One GraphQL WebSocket connection: who it is signed in as (null: anonymous, or not yet
 * initialised), its `sessionEvents` subscriptions, and how it ends. Kept small: an idle
 * authenticated connection is a socket, this object and its token string.
 */
export class LiveConnection implements LiveChannel {
  identity: LiveIdentity | null = null;
  /** The `exp` (ms) an ACCESS_TOKEN_EXPIRING was sent for (once per token). */
  warnedFor = 0;
  /** Queries and subscriptions being set up or run (not counting the long-lived ones' waiting). */
  inFlight = 0;
  closing = false;
  /** A last event is on its way (closeAfter): nothing else is sent, and it is not sent twice. */
  private ending = false;
  private queues: Set<EventQueue<SessionEventModel>> | null = null;

  constructor(
    private readonly socket: LiveSocket,
    /** The hub's hook: a new subscription may need an ACCESS_TOKEN_EXPIRING at once. */
    private readonly onSubscribed: (connection: LiveConnection, queue: EventQueue<SessionEventModel>) => void,
  ) {}

  /** The claims of the connection's current token: after a renewal, the new one's. */
  currentClaims(): AccessTokenClaims | null {
    return this.identity?.claims ?? null;
  }

  get subscriptions(): number {
    return this.queues?.size ?? 0;
  }

  sessionEvents(): EventQueue<SessionEventModel> {
    const queues = (this.queues ??= new Set());
    const queue: EventQueue<SessionEventModel> = new EventQueue(() => queues.delete(queue));
    queues.add(queue);
    this.onSubscribed(this, queue);
    return queue;
  }

  deliver(event: SessionEventModel): void {
    if (this.closing || this.ending || !this.queues) return;
    for (const queue of this.queues) queue.push(event);
  }

  /** The socket closed: every subscription ends (their readers stop waiting). */
  ended(): void {
    this.closing = true;
    for (const queue of [...(this.queues ?? [])]) queue.end();
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.socket.close(code, reason);
  }

  /** Delivers a last event to every subscription, lets it reach the socket, then closes. */
  async closeAfter(event: SessionEventModel, code: number, reason: string): Promise<void> {
    if (this.closing || this.ending) return;
    this.ending = true;
    const queues = [...(this.queues ?? [])];
    for (const queue of queues) queue.push(event);
    if (queues.length > 0) await withTimeout(Promise.all(queues.map((queue) => queue.flushed())), FLUSH_TIMEOUT_MS);
    this.close(code, reason);
  }
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
