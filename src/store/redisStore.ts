import type { Cluster, Redis } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import { newEventStepId } from '../events/eventIds.js';
import { type EventSource, readNewestFirst } from '../events/eventPages.js';
import {
  type AuditQuery,
  type ClaimRequest,
  type Delivery,
  type EventInput,
  type EventListener,
  type EventOrigin,
  type EventPage,
  type EventPageRequest,
  REVOKE_CAUSES,
  type RevokeCause,
  type SecurityEvent,
  USER_EVENTS_MAX,
} from '../events/types.js';
import type { FlowRecordKind, IdentityRecord, LinkInput, LinkResult, UnlinkResult } from '../identity/types.js';
import { IDENTITY_SCRIPTS, RedisIdentities } from './identityRedis.js';
import { decodeAppended, decodeEntries, decodeEvent, decodeUserEvents, eventArgs, originDetails } from './redisEvents.js';
import { RedisKeys } from './redisKeys.js';
import { BOUNDED_REDIS_OPTIONS, dropConnection, isCommandTimeout } from './redisConnection.js';
import { translateRedisError } from './redisErrors.js';
import {
  type RedisReply,
  USER_FIELDS,
  decodeSession,
  packAmr,
  packIp,
  packOpaque,
  userFromFields,
  userToFields,
} from './redisRecords.js';
import { packUserAgent } from './userAgentCodec.js';
import type { ArgSpec, RedisScript, ScriptArg, ScriptInput } from './redisScript.js';
import * as scripts from './redisScripts.js';
import { RedisLiveEventSubscriber } from './redisLiveEventSubscriber.js';
import { RedisRevocationSubscriber } from './redisRevocationSubscriber.js';
import type { ChangedUser, DeletedUser, IssueMailTokenInput, MailTokenProof, UserPage } from '../accounts/store.js';
import type { MailTokenKind } from '../tokens/mailTokens.js';
import type {
  CreateSessionInput,
  LiveEventListener,
  ReauthenticateInput,
  RefreshProof,
  RotateInput,
  RevokeAudit,
  RotateResult,
  SessionRecord,
  SessionRef,
  Store,
  UserRecord,
} from './types.js';
import type { FactorStore } from '../factors/store.js';
import { FACTOR_SCRIPTS, RedisFactors } from './factorsRedis.js';

export type RedisClient = Redis | Cluster;

/** The per-key reads, on a client (a promise) or in a pipeline (queued). */
interface KeyCommands {
  hmget(key: string, ...fields: string[]): unknown;
  getBuffer(key: string): unknown;
}

/** A script that starts later than this after it was sent writes nothing: 200 ms before the caller gives up. */
const SCRIPT_DEADLINE_MS = (BOUNDED_REDIS_OPTIONS.commandTimeout ?? 1_000) - 200;

/** How long a write waits for replicas to confirm it (WAIT), when it must (below the command timeout). */
const REPLICA_ACK_TIMEOUT_MS = 300;

/** Looked up when an email is unknown, so that path costs what a known email costs. */
const UNKNOWN_USER_ID = 'unknown-user';

export interface RedisStoreOptions {
  client: RedisClient;
  /** A new connection for pub/sub (a subscribed connection can do nothing else). */
  createSubscriber: () => RedisClient;
  keyPrefix: string;
  /**
   * Acknowledge a session write (create, rotate, revoke) only once this many replicas have it:
   * each such script is followed, on the same connection to the same node, by `WAIT`; fewer
   * confirmations in time answer StoreUnavailableError, so a failover cannot lose a rotation the
   * client was given. 0 (the default): don't wait.
   */
  minReplicasAck?: number;
  /** How long WAIT may take (default 300 ms; keep it below the command timeout). */
  replicaAckTimeoutMs?: number;
  /** AUDIT_STREAM_MAX: each audit stream is trimmed to about this many entries (default 100 000). */
  auditStreamMax?: number;
  /** Events kept in each user's own list (default USER_EVENTS_MAX). */
  userEventsMax?: number;
}

/** AUDIT_STREAM_MAX's default (docs/contract.md section 10). */
export const DEFAULT_AUDIT_STREAM_MAX = 100_000;

type ScriptCall = (...args: ScriptArg[]) => Promise<RedisReply>;

/** The production store: sessions, users, counters and the revocation feed in Redis. */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly keys: RedisKeys;
  private readonly client: RedisClient;
  private readonly subscribers: { close(): Promise<void> }[] = [];
  private readonly isCluster: boolean;
  private readonly minReplicasAck: number;
  private readonly replicaAckTimeoutMs: number;
  private readonly auditMax: number;
  private readonly userEventsMax: number;
  private readonly listeners = new Set<EventListener>();
  private readonly factors: RedisFactors;

  // Second factors (src/factors/store.ts): delegated to factorsRedis.ts.
  listFactors: FactorStore['listFactors'] = (...a) => this.factors.listFactors(...a);
  countRecoveryCodes: FactorStore['countRecoveryCodes'] = (...a) => this.factors.countRecoveryCodes(...a);
  putPendingTotp: FactorStore['putPendingTotp'] = (...a) => this.factors.putPendingTotp(...a);
  getPendingTotp: FactorStore['getPendingTotp'] = (...a) => this.factors.getPendingTotp(...a);
  activateTotp: FactorStore['activateTotp'] = (...a) => this.factors.activateTotp(...a);
  addPasskey: FactorStore['addPasskey'] = (...a) => this.factors.addPasskey(...a);
  replaceRecoveryCodes: FactorStore['replaceRecoveryCodes'] = (...a) => this.factors.replaceRecoveryCodes(...a);
  removeFactor: FactorStore['removeFactor'] = (...a) => this.factors.removeFactor(...a);
  useFactor: FactorStore['useFactor'] = (...a) => this.factors.useFactor(...a);
  createMfaTicket: FactorStore['createMfaTicket'] = (...a) => this.factors.createMfaTicket(...a);
  beginMfaAttempt: FactorStore['beginMfaAttempt'] = (...a) => this.factors.beginMfaAttempt(...a);
  completeMfa: FactorStore['completeMfa'] = (...a) => this.factors.completeMfa(...a);
  putChallenge: FactorStore['putChallenge'] = (...a) => this.factors.putChallenge(...a);
  takeChallenge: FactorStore['takeChallenge'] = (...a) => this.factors.takeChallenge(...a);
  /** Sign-in with other providers (identityRedis.ts). */
  private readonly identities: RedisIdentities;

  constructor(private readonly options: RedisStoreOptions) {
    this.client = options.client;
    this.isCluster = (options.client as { isCluster?: boolean }).isCluster === true;
    this.minReplicasAck = Math.max(0, Math.floor(options.minReplicasAck ?? 0));
    this.replicaAckTimeoutMs = Math.max(1, Math.floor(options.replicaAckTimeoutMs ?? REPLICA_ACK_TIMEOUT_MS));
    this.auditMax = Math.max(1, Math.floor(options.auditStreamMax ?? DEFAULT_AUDIT_STREAM_MAX));
    this.userEventsMax = Math.max(1, Math.floor(options.userEventsMax ?? USER_EVENTS_MAX));
    this.keys = new RedisKeys(options.keyPrefix, this.isCluster);
    for (const { name, numberOfKeys, lua } of [...scripts.SCRIPTS, ...FACTOR_SCRIPTS, ...IDENTITY_SCRIPTS]) {
      this.client.defineCommand(name, { numberOfKeys, lua });
    }
    this.factors = new RedisFactors({
      client: this.client,
      prefix: options.keyPrefix,
      script: (script, input) => this.script(script, input),
      run: (operation) => this.run(operation),
      appending: (userId, now, origin) => this.appending(userId, now, origin),
      emit: (events, userId) => this.emit(events, this.keys.auditStreamFor(this.keys.user(userId))),
    });
    this.identities = new RedisIdentities({
      prefix: options.keyPrefix,
      script: (script, input) => this.script(script, input),
      acknowledged: (script, userId, input) => this.acknowledged(script, userId, input),
      command: (operation) => this.run(operation),
      client: this.client,
      userKey: (userId) => this.keys.user(userId),
      identitiesKey: (userId) => this.keys.identities(userId),
      sessionPrefix: (userId) => this.keys.sessionPrefix(userId),
      revocationChannel: () => this.keys.revocationChannel(),
      appending: (userId, now, origin) => this.appending(userId, now, origin),
      auditStreamOf: (userId) => this.keys.auditStreamFor(this.keys.user(userId)),
      emit: (events, stream) => this.emit(events, stream),
    });
    this.client.on('ready', () => void this.learnClockOffset());
    if (this.client.status === 'ready') void this.learnClockOffset();
  }

  /** Redis's clock minus ours, so deadlines can be given in Redis's clock. */
  private clockOffsetMs = 0;

  private async learnClockOffset(): Promise<void> {
    try {
      const before = Date.now();
      const [seconds, micros] = await this.client.time();
      const after = Date.now();
      this.clockOffsetMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (before + after) / 2;
    } catch {
      // Keep the last offset; the next 'ready' tries again.
    }
  }

  /** When a script must no longer write, in Redis's clock: a little before our command timeout. */
  private deadline(): number {
    return Math.floor(Date.now() + this.clockOffsetMs + SCRIPT_DEADLINE_MS);
  }

  private async run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (isCommandTimeout(error)) dropConnection(this.client);
      throw translateRedisError(error);
    }
  }

  /** Runs a script with its named keys and arguments (and the deadline); binary replies as Buffers. */
  private script<K extends string, A extends ArgSpec>(script: RedisScript<K, A>, input: ScriptInput<K, A>): Promise<RedisReply> {
    const call = (this.client as unknown as Record<string, ScriptCall>)[script.buffers ? `${script.name}Buffer` : script.name]!;
    return this.run(() => call.apply(this.client, script.argv(input, this.deadline())));
  }

  /**
   * A session write that is acknowledged only once `minReplicasAck` replicas have it (plain
   * `script` when that is 0). The script first; once it has answered, a write to a marker key of
   * the same user and WAIT, in one pipeline, so on the connection to the master of the user's
   * slot (an ioredis Cluster sends a pipeline to the node of its first key). It is the connection
   * the script went over: the pipeline is written in the microtasks that follow the script's
   * reply, before any I/O could close that connection or open another.
   * The marker always replicates, so WAIT also covers an answer that wrote nothing now but reports
   * an earlier write, perhaps made over another connection and never confirmed (a retried rotation
   * answered from the grace window, a revoke that finds the session already gone).
   * A script the master refused (NOREPLICAS under `min-replicas-to-write`) waits for nothing, so a
   * master without replicas does not hold the connection for the WAIT timeout on every write.
   */
  private async acknowledged<K extends string, A extends ArgSpec>(
    script: RedisScript<K, A>,
    userId: string,
    input: ScriptInput<K, A>,
  ): Promise<RedisReply> {
    const reply = await this.script(script, input);
    if (this.minReplicasAck === 0) return reply;
    return this.run(async () => {
      const p = this.client.pipeline();
      p.set(this.keys.ackMarker(userId), '1', 'PX', 60_000);
      p.wait(this.minReplicasAck, this.replicaAckTimeoutMs);
      const [marker, wait] = (await p.exec()) ?? [];
      for (const [error] of [marker ?? [null], wait ?? [null]]) {
        // Not confirmed, whatever the reason (NOREPLICAS, UNBLOCKED by a role change …).
        if (error) throw isCommandTimeout(error) ? error : new StoreUnavailableError(error);
      }
      const replicas = Number(wait?.[1]);
      if (!(replicas >= this.minReplicasAck)) {
        throw new StoreUnavailableError(
          new Error(`${replicas} of ${this.minReplicasAck} replicas confirmed the write within ${this.replicaAckTimeoutMs} ms`),
        );
      }
      return reply;
    });
  }

  /**
   * One command per key, in one round trip where it can. A Cluster pipeline must stay on one
   * node, and these keys (of different users) may not: there each goes on its own, all at once.
   */
  private async perKey<T>(keys: readonly string[], send: (target: KeyCommands, key: string) => unknown): Promise<T[]> {
    if (!this.isCluster) {
      return (await this.pipeline((p) => {
        for (const key of keys) send(p, key);
      })) as T[];
    }
    return Promise.all(keys.map((key) => this.run(() => send(this.client, key) as Promise<T>)));
  }

  /** Runs a pipeline and returns its results, failing as a whole if any command failed. */
  private async pipeline(build: (p: ReturnType<RedisClient['pipeline']>) => void): Promise<unknown[]> {
    return this.run(async () => {
      const p = this.client.pipeline();
      build(p);
      const results = (await p.exec()) ?? [];
      return results.map(([error, value]) => {
        if (error) throw error;
        return value;
      });
    });
  }

  async ping(): Promise<void> {
    await this.run(() => this.client.ping());
  }

  async close(): Promise<void> {
    await Promise.all(this.subscribers.map((s) => s.close()));
    await this.client.quit().catch(() => this.client.disconnect());
  }

  // Users

  /**
   * The record first (under a new id nobody refers to yet), then the email claim: whatever fails
   * or arrives late, an email never points at a missing record. Both carry the script deadline.
   */
  async createUser(user: UserRecord, origin: EventOrigin): Promise<'created' | 'email_taken'> {
    const userKey = this.keys.user(user.id);
    const userEventsKey = this.keys.userEvents(user.id);
    const event = eventArgs(newEventStepId(user.createdAt), user.createdAt, user.id, origin);
    await this.script(scripts.WRITE_USER, { userKey, userEventsKey, ...userToFields(user), ...event, userEventsMax: this.userEventsMax });
    const emailKey = this.keys.email(user.email);
    const auditKey = this.keys.auditStreamFor(emailKey);
    const [claimed, appended] = (await this.script(scripts.CLAIM_EMAIL, {
      emailKey,
      auditKey,
      userId: user.id,
      ...event,
      auditMax: this.auditMax,
    })) as RedisReply[];
    if (claimed === 1) {
      this.emit(decodeAppended(appended), auditKey);
      await this.indexEmail(user.email, user.id);
      return 'created';
    }
    await this.client.del(userKey, userEventsKey).catch(() => undefined);
    return 'email_taken';
  }

  /** The admin listing's index entry (usersByEmail): an entry without a record is skipped when read. */
  private async indexEmail(email: string, userId: string): Promise<void> {
    await this.run(() => this.client.zadd(this.keys.usersByEmail(), 0, `${email}\u0000${userId}`));
  }

  private async unindexEmail(email: string, userId: string): Promise<void> {
    await this.run(() => this.client.zrem(this.keys.usersByEmail(), `${email}\u0000${userId}`));
  }

  /**
   * The user's own keys in one script (DELETE_USER: sessions revoked and published, events), then,
   * in their own slots, the email's claim (only while it still points at this user) and the
   * admin index entry.
   */
  async deleteUser(userId: string, now: number, origin: EventOrigin): Promise<DeletedUser | null> {
    const userKey = this.keys.user(userId);
    // The provider+subject index lives in other slots: read now, released once the records are gone.
    const identities = await this.identities.listIdentities(userId);
    const reply = (await this.acknowledged(scripts.DELETE_USER, userId, {
      userKey,
      now,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
      revocationChannel: this.keys.revocationChannel(),
      ownedKeys: this.keys.userOwnedKeys(userId).join('\n'),
      ...this.appending(userId, now, origin),
    })) as RedisReply[];
    if (reply[0] !== 1) return null;
    const email = String(reply[1]);
    this.emit(decodeAppended(reply[3]), this.keys.auditStreamFor(userKey));
    await this.script(scripts.RELEASE_EMAIL, { emailKey: this.keys.email(email), userId });
    await this.unindexEmail(email, userId);
    await this.identities.releaseIndex(userId, identities);
    return { email, revokedSessionIds: (reply[2] as RedisReply[]).map(String) };
  }

  // Accounts (src/accounts/store.ts)

  async issueMailToken(input: IssueMailTokenInput): Promise<boolean> {
    const userKey = this.keys.user(input.userId);
    const [issued, appended] = (await this.script(scripts.ISSUE_MAIL_TOKEN, {
      tokenKey: this.keys.mailToken(input.userId, input.kind),
      userKey,
      now: input.now,
      secretHash: input.secretHash,
      ttlMs: input.ttlMs,
      email: input.email,
      eventType: input.kind === 'reset' ? 'password.reset_requested' : '',
      ...this.appending(input.userId, input.now, input.origin),
    })) as RedisReply[];
    this.emit(decodeAppended(appended), this.keys.auditStreamFor(userKey));
    return issued === 1;
  }

  /** A step on the user's slot that returns {1, …, events} or {0}; the events are at `eventsAt`. */
  private async userStep(userId: string, reply: RedisReply[], eventsAt: number): Promise<RedisReply[] | null> {
    if (reply[0] !== 1) return null;
    this.emit(decodeAppended(reply[eventsAt]), this.keys.auditStreamFor(this.keys.user(userId)));
    return reply;
  }

  private async requireUser(userId: string): Promise<UserRecord> {
    const [user] = await this.getUsers([userId]);
    if (!user) throw new StoreUnavailableError(new Error('a user changed in this step is gone'));
    return user;
  }

  private mailProof(proof: MailTokenProof, kind: MailTokenKind) {
    return {
      tokenKey: this.keys.mailToken(proof.userId, kind),
      userKey: this.keys.user(proof.userId),
      now: proof.now,
      secretHash: proof.secretHash,
      ...this.appending(proof.userId, proof.now, proof.origin),
    };
  }

  async resetPassword(proof: MailTokenProof, passwordHash: string): Promise<ChangedUser | null> {
    const reply = await this.userStep(
      proof.userId,
      (await this.acknowledged(scripts.RESET_PASSWORD, proof.userId, {
        ...this.mailProof(proof, 'reset'),
        passwordHash,
        sessionKeyPrefix: this.keys.sessionPrefix(proof.userId),
        revocationChannel: this.keys.revocationChannel(),
      })) as RedisReply[],
      2,
    );
    if (!reply) return null;
    return { user: await this.requireUser(proof.userId), revokedSessionIds: (reply[1] as RedisReply[]).map(String) };
  }

  async verifyEmail(proof: MailTokenProof): Promise<UserRecord | null> {
    const reply = await this.userStep(proof.userId, (await this.script(scripts.VERIFY_EMAIL, this.mailProof(proof, 'verify'))) as RedisReply[], 1);
    return reply ? this.requireUser(proof.userId) : null;
  }

  /**
   * Three slots on a Cluster, so three steps, each safe alone: the new address is claimed for the
   * user first (SET NX: another account may have it by now), then the token is spent and the
   * record changed in the user's slot (or the claim given back), then the old address released
   * and the admin index updated.
   */
  async changeEmail(proof: MailTokenProof): Promise<{ user: UserRecord; previousEmail: string } | 'invalid' | 'taken'> {
    const tokenKey = this.keys.mailToken(proof.userId, 'change');
    const newEmail = await this.script(scripts.PEEK_MAIL_TOKEN, { tokenKey, now: proof.now, secretHash: proof.secretHash });
    if (typeof newEmail !== 'string' && !Buffer.isBuffer(newEmail)) return 'invalid';
    const email = String(newEmail);
    const emailKey = this.keys.email(email);
    const claimed = await this.run(() => this.client.set(emailKey, proof.userId, 'NX'));
    if (claimed !== 'OK' && (await this.run(() => this.client.get(emailKey))) !== proof.userId) return 'taken';
    const reply = await this.userStep(
      proof.userId,
      (await this.script(scripts.CHANGE_EMAIL, { ...this.mailProof(proof, 'change'), newEmail: email })) as RedisReply[],
      2,
    );
    if (!reply) {
      await this.script(scripts.RELEASE_EMAIL, { emailKey, userId: proof.userId });
      return 'invalid';
    }
    const previousEmail = String(reply[1]);
    await this.script(scripts.RELEASE_EMAIL, { emailKey: this.keys.email(previousEmail), userId: proof.userId });
    await this.unindexEmail(previousEmail, proof.userId);
    await this.indexEmail(email, proof.userId);
    return { user: await this.requireUser(proof.userId), previousEmail };
  }

  async changePassword(userId: string, passwordHash: string, keepSessionId: string | null, now: number, origin: EventOrigin): Promise<ChangedUser | null> {
    const reply = await this.userStep(
      userId,
      (await this.acknowledged(scripts.CHANGE_PASSWORD, userId, {
        userKey: this.keys.user(userId),
        now,
        passwordHash,
        keepSessionId: keepSessionId ?? '',
        sessionKeyPrefix: this.keys.sessionPrefix(userId),
        revocationChannel: this.keys.revocationChannel(),
        ...this.appending(userId, now, origin),
      })) as RedisReply[],
      2,
    );
    if (!reply) return null;
    return { user: await this.requireUser(userId), revokedSessionIds: (reply[1] as RedisReply[]).map(String) };
  }

  async setUserDisabled(userId: string, disabled: boolean, now: number, origin: EventOrigin): Promise<ChangedUser | null> {
    const reply = await this.userStep(
      userId,
      (await this.acknowledged(scripts.SET_DISABLED, userId, {
        userKey: this.keys.user(userId),
        now,
        disabled: disabled ? 1 : 0,
        sessionKeyPrefix: this.keys.sessionPrefix(userId),
        revocationChannel: this.keys.revocationChannel(),
        ...this.appending(userId, now, origin),
      })) as RedisReply[],
      2,
    );
    if (!reply) return null;
    return { user: await this.requireUser(userId), revokedSessionIds: (reply[1] as RedisReply[]).map(String) };
  }

  async setUserRoles(userId: string, roles: readonly string[], now: number, origin: EventOrigin): Promise<UserRecord | null> {
    const reply = await this.userStep(
      userId,
      (await this.script(scripts.SET_ROLES, {
        userKey: this.keys.user(userId),
        now,
        roles: JSON.stringify(roles),
        rolesDetail: roles.join(' '),
        ...this.appending(userId, now, origin),
      })) as RedisReply[],
      1,
    );
    return reply ? this.requireUser(userId) : null;
  }

  /** ZRANGEBYLEX on the index: O(log n + page), never a scan. */
  async listUsers(query: { first: number; after: string | null; emailPrefix: string | null }): Promise<UserPage> {
    const after = query.after === null ? null : Buffer.from(query.after, 'base64url');
    const prefix = query.emailPrefix ?? '';
    const start = after ? Buffer.concat([Buffer.from('('), after]) : prefix ? `[${prefix}` : '-';
    const end = prefix ? Buffer.concat([Buffer.from(`(${prefix}`), Buffer.of(0xff)]) : '+';
    const members = await this.run(() =>
      this.client.zrangebylexBuffer(this.keys.usersByEmail(), start, end, 'LIMIT', 0, query.first + 1),
    );
    const page = members.slice(0, query.first);
    const ids = page.map((member) => member.subarray(member.indexOf(0) + 1).toString('utf8'));
    const users = (await this.getUsers(ids)).filter((user): user is UserRecord => user !== null);
    const last = page.at(-1);
    return { users, endCursor: last ? last.toString('base64url') : null, hasNextPage: members.length > query.first };
  }

  async findUserByEmail(email: string): Promise<UserRecord | null> {
    const id = await this.run(() => this.client.get(this.keys.email(email)));
    // An unknown email costs the same two round trips as a known one.
    const [user] = await this.getUsers([id ?? UNKNOWN_USER_ID]);
    return id === null ? null : (user ?? null);
  }

  async getUsers(ids: readonly string[]): Promise<(UserRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.perKey<(string | null)[]>(
      ids.map((id) => this.keys.user(id)),
      (target, key) => target.hmget(key, ...USER_FIELDS),
    );
    return rows.map((row, i) => userFromFields(ids[i]!, row));
  }

  // Sessions

  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    const { userId, sessionId, now } = input;
    if (sessionId.includes(',')) throw new RangeError('a session id may not contain a comma (the index separator)');
    const userKey = this.keys.user(userId);
    const [expires, appended] = (await this.acknowledged(scripts.CREATE_SESSION, userId, {
      sessionKey: this.keys.session(userId, sessionId),
      userKey,
      now,
      idleMs: input.idleTtlMs,
      absoluteMs: input.absoluteTtlMs,
      secretHash: packOpaque(input.secretHash),
      userAgent: packUserAgent(input.userAgent),
      ip: packIp(input.ipAddress),
      sessionId,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
      maxSessions: input.maxSessions,
      revocationChannel: this.keys.revocationChannel(),
      authTime: input.auth.authTime,
      amr: packAmr(input.auth.amr),
      acr: input.auth.acr,
      ...this.appending(userId, now, input.origin),
    })) as RedisReply[];
    this.emit(decodeAppended(appended), this.keys.auditStreamFor(userKey));
    return {
      id: sessionId,
      userId,
      createdAt: now,
      lastRefreshedAt: now,
      expiresAt: Number(expires),
      absoluteExpiresAt: now + input.absoluteTtlMs,
      userAgent: input.userAgent,
      ipAddress: input.ipAddress,
      generation: 0,
      authTime: input.auth.authTime,
      amr: [...input.auth.amr],
      acr: input.auth.acr,
    };
  }

  async reauthenticateSession(input: ReauthenticateInput): Promise<SessionRecord | null> {
    const reply = (await this.acknowledged(scripts.REAUTHENTICATE_SESSION, input.userId, {
      sessionKey: this.keys.session(input.userId, input.sessionId),
      now: input.now,
      authTime: input.auth.authTime,
      amr: packAmr(input.auth.amr),
      acr: input.auth.acr,
      nextSecretHash: packOpaque(input.nextSecretHash),
    })) as Buffer[];
    return reply.length === 0 ? null : decodeSession(input.userId, input.sessionId, reply[0]!).session;
  }

  async rotateSession(input: RotateInput): Promise<RotateResult> {
    const { userId, sessionId } = input;
    const userKey = this.keys.user(userId);
    const reply = (await this.acknowledged(scripts.ROTATE_SESSION, userId, {
      sessionKey: this.keys.session(userId, sessionId),
      userKey,
      now: input.now,
      generation: input.generation,
      secretHash: packOpaque(input.secretHash),
      nextSecretHash: packOpaque(input.nextSecretHash),
      sealedSuccessor: packOpaque(input.sealedSuccessor),
      idleMs: input.idleTtlMs,
      graceMs: input.graceMs,
      sessionId,
      revocationChannel: this.keys.revocationChannel(),
      ...this.appending(userId, input.now, input.origin),
    })) as Buffer[];
    const status = String(reply[0]);
    if (status === 'rotated' || status === 'grace') {
      const stored = decodeSession(userId, sessionId, reply[1]!);
      const user = userFromFields(userId, reply.slice(2, 2 + USER_FIELDS.length));
      if (status === 'rotated') return { status, session: stored.session, user };
      return { status, session: stored.session, sealedSuccessor: stored.sealedSuccessor!, user };
    }
    if (status === 'reused') {
      this.emit(decodeAppended(reply[1]), this.keys.auditStreamFor(userKey));
      return { status };
    }
    if (status === 'expired') return { status };
    return { status: 'invalid' };
  }

  async getSessions(refs: readonly SessionRef[], now: number): Promise<(SessionRecord | null)[]> {
    if (refs.length === 0) return [];
    const records = await this.perKey<Buffer | null>(
      refs.map((ref) => this.keys.session(ref.userId, ref.sessionId)),
      (target, key) => target.getBuffer(key),
    );
    return records.map((record, i) => {
      if (record === null) return null;
      const ref = refs[i]!;
      const { session } = decodeSession(ref.userId, ref.sessionId, record);
      return session.expiresAt > now && session.absoluteExpiresAt > now ? session : null;
    });
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const flat = (await this.script(scripts.LIST_SESSIONS, {
      userKey: this.keys.user(userId),
      now,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
    })) as Buffer[];
    const sessions: SessionRecord[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      sessions.push(decodeSession(userId, flat[i]!.toString(), flat[i + 1]!).session);
    }
    return sessions;
  }

  async revokeSession(ref: SessionRef, now: number, audit: RevokeAudit): Promise<boolean> {
    const userKey = this.keys.user(ref.userId);
    const [revoked, appended] = (await this.acknowledged(scripts.REVOKE_SESSION, ref.userId, {
      sessionKey: this.keys.session(ref.userId, ref.sessionId),
      userKey,
      now,
      sessionId: ref.sessionId,
      revocationChannel: this.keys.revocationChannel(),
      cause: checkedCause(audit.cause),
      ...this.appending(ref.userId, now, audit.origin),
    })) as RedisReply[];
    this.emit(decodeAppended(appended), this.keys.auditStreamFor(userKey));
    return revoked === 1;
  }

  async revokeSessionWithToken(proof: RefreshProof, now: number, origin: EventOrigin): Promise<boolean> {
    const userKey = this.keys.user(proof.userId);
    const [revoked, appended] = (await this.acknowledged(scripts.REVOKE_SESSION_WITH_TOKEN, proof.userId, {
      sessionKey: this.keys.session(proof.userId, proof.sessionId),
      userKey,
      now,
      sessionId: proof.sessionId,
      generation: proof.generation,
      secretHash: packOpaque(proof.secretHash),
      revocationChannel: this.keys.revocationChannel(),
      ...this.appending(proof.userId, now, origin),
    })) as RedisReply[];
    this.emit(decodeAppended(appended), this.keys.auditStreamFor(userKey));
    return revoked === 1;
  }

  async revokeAllSessions(userId: string, now: number, audit: RevokeAudit): Promise<string[]> {
    const userKey = this.keys.user(userId);
    const [ids, appended] = (await this.acknowledged(scripts.REVOKE_ALL_SESSIONS, userId, {
      userKey,
      now,
      sessionKeyPrefix: this.keys.sessionPrefix(userId),
      revocationChannel: this.keys.revocationChannel(),
      cause: checkedCause(audit.cause),
      ...this.appending(userId, now, audit.origin),
    })) as RedisReply[];
    this.emit(decodeAppended(appended), this.keys.auditStreamFor(userKey));
    return (ids as RedisReply[]).map(String);
  }

  // Identities (sign-in with other providers)

  findIdentity(provider: string, subject: string): Promise<IdentityRecord | null> {
    return this.identities.findIdentity(provider, subject);
  }
  listIdentities(userId: string): Promise<IdentityRecord[]> {
    return this.identities.listIdentities(userId);
  }
  linkIdentity(input: LinkInput, now: number): Promise<LinkResult> {
    return this.identities.linkIdentity(input, now);
  }
  unlinkIdentity(userId: string, identityId: string, now: number, origin: EventOrigin): Promise<UnlinkResult> {
    return this.identities.unlinkIdentity(userId, identityId, now, origin);
  }
  deleteIdentities(userId: string): Promise<void> {
    return this.identities.deleteIdentities(userId);
  }
  putFlowRecord(kind: FlowRecordKind, keyHash: string, value: string, expiresAt: number, now: number): Promise<void> {
    return this.identities.putFlowRecord(kind, keyHash, value, expiresAt, now);
  }
  takeFlowRecord(kind: FlowRecordKind, keyHash: string, now: number): Promise<string | null> {
    return this.identities.takeFlowRecord(kind, keyHash, now);
  }

  // Security events

  /** The event keys and arguments of a step of this user's (its slot's audit stream, its own list). */
  private appending(userId: string, now: number, origin: EventOrigin) {
    return {
      auditKey: this.keys.auditStreamFor(this.keys.user(userId)),
      userEventsKey: this.keys.userEvents(userId),
      ...eventArgs(newEventStepId(now), now, userId, origin, this.keys.liveEventsChannel()),
      auditMax: this.auditMax,
      userEventsMax: this.userEventsMax,
    };
  }

  /** Listeners must not throw: the change is stored, and its caller must hear so. */
  private emit(events: readonly SecurityEvent[], stream: string): void {
    if (events.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(events, stream);
      } catch {
        // A failing listener (the audit log) cannot undo or fail a stored change.
      }
    }
  }

  onEvents(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async appendEvent(input: EventInput): Promise<SecurityEvent> {
    const stepId = newEventStepId(input.time);
    // A user's event goes to the user's slot; one without a user to the slot of its own id (spread).
    const auditKey = this.keys.auditStreamFor(input.userId ? this.keys.user(input.userId) : stepId);
    const appended = await this.script(scripts.APPEND_EVENT, {
      auditKey,
      userEventsKey: input.userId ? this.keys.userEvents(input.userId) : auditKey,
      eventType: input.type,
      sessionId: input.sessionId ?? '',
      ...eventArgs(stepId, input.time, input.userId, input.origin, this.keys.liveEventsChannel()),
      eventDetails: JSON.stringify({ ...input.details, ...originDetails(input.origin) }),
      auditMax: this.auditMax,
      userEventsMax: this.userEventsMax,
    });
    const events = decodeAppended(appended);
    this.emit(events, auditKey);
    return events[0]!;
  }

  /** One stream, read newest first with XREVRANGE. */
  private streamSource(key: string, name: string): EventSource {
    return {
      name,
      read: async (bound, count) => {
        const end = bound === null ? '+' : bound.inclusive ? bound.id : `(${bound.id}`;
        const reply = await this.run(() => this.client.xrevrange(key, end, '-', 'COUNT', count));
        return decodeEntries(reply as RedisReply, name);
      },
    };
  }

  /** A user's own list, read newest first by its numbers (READ_USER_EVENTS). */
  private userSource(userId: string): EventSource {
    return {
      name: '',
      read: async (bound, count) => {
        const reply = await this.script(scripts.READ_USER_EVENTS, {
          userEventsKey: this.keys.userEvents(userId),
          below: bound === null ? 0 : Number(bound.id.split('-')[0]),
          inclusive: bound?.inclusive ? 1 : 0,
          count,
        });
        return decodeUserEvents(reply);
      },
    };
  }

  async userEvents(userId: string, page: EventPageRequest): Promise<EventPage> {
    return readNewestFirst([this.userSource(userId)], page);
  }

  async auditEvents(query: AuditQuery): Promise<EventPage> {
    const { type } = query;
    const filter = type === undefined ? undefined : (event: SecurityEvent) => event.type === type;
    const options = { first: query.first, after: query.after, ...(filter ? { filter } : {}) };
    if (query.userId !== undefined) return readNewestFirst([this.userSource(query.userId)], options);
    const streams = await this.deliveryStreams();
    return readNewestFirst(
      streams.map((key) => this.streamSource(key, this.isCluster ? key.slice(this.keys.prefix.length) : '')),
      options,
    );
  }

  /** The single audit stream; on a Cluster every per-slot stream, found by SCAN on each master. */
  async deliveryStreams(): Promise<string[]> {
    if (!this.isCluster) return [this.keys.auditStream()];
    const masters = (this.client as Cluster).nodes('master');
    const found = new Set<string>();
    await Promise.all(
      masters.map((node) =>
        this.run(async () => {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', this.keys.auditStreamPattern(), 'COUNT', 1000, 'TYPE', 'stream');
            for (const key of keys) if (this.keys.isAuditStream(key)) found.add(key);
            cursor = next;
          } while (cursor !== '0');
        }),
      ),
    );
    return [...found].sort();
  }

  async claimDeliveries(stream: string, request: ClaimRequest): Promise<Delivery[]> {
    const reply = (await this.script(scripts.CLAIM_DELIVERIES, {
      streamKey: stream,
      group: request.group,
      consumer: request.consumer,
      count: request.count,
      minIdleMs: request.backoff.minIdleMs,
      baseDelayMs: request.backoff.baseDelayMs,
      maxDelayMs: request.backoff.maxDelayMs,
      jitter: request.jitter,
    })) as RedisReply[];
    const deliveries: Delivery[] = [];
    for (const row of reply) {
      if (!Array.isArray(row) || !Array.isArray(row[2])) continue;
      const event = decodeEvent(row[2]);
      if (event) deliveries.push({ stream, entryId: String(row[1]), attempt: Number(row[0]), event });
    }
    return deliveries;
  }

  async acknowledgeDeliveries(group: string, deliveries: readonly Delivery[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const d of deliveries) byStream.set(d.stream, [...(byStream.get(d.stream) ?? []), d.entryId]);
    await Promise.all([...byStream].map(([stream, ids]) => this.run(() => this.client.xack(stream, group, ...ids))));
  }

  // Revocation feed

  async subscribe(handlers: { onRevoked(ids: string[]): void; onHealth(healthy: boolean): void }): Promise<void> {
    const subscriber = new RedisRevocationSubscriber(
      this.options.createSubscriber(),
      this.keys.revocationChannel(),
      handlers,
    );
    this.subscribers.push(subscriber);
    await subscriber.start();
  }

  // Live session events

  async subscribeLiveEvents(listener: LiveEventListener): Promise<() => void> {
    const subscriber = new RedisLiveEventSubscriber(this.options.createSubscriber(), this.keys.liveEventsChannel(), listener);
    this.subscribers.push(subscriber);
    await subscriber.start();
    return () => {
      this.subscribers.splice(this.subscribers.indexOf(subscriber) >>> 0, 1);
      void subscriber.close();
    };
  }

  // Counters

  async increment(name: string, windowMs: number, now: number, by = 1): Promise<{ count: number; resetInMs: number }> {
    const [count, left] = (await this.script(scripts.INCREMENT_COUNTER, {
      counterKey: this.keys.counter(name),
      now,
      windowMs,
      by,
    })) as number[];
    return { count: Number(count), resetInMs: Number(left) };
  }

  async peek(name: string, now: number): Promise<{ count: number; resetInMs: number }> {
    const [n, end] = await this.run(() => this.client.hmget(this.keys.counter(name), 'n', 'end'));
    const endsAt = Number(end ?? 0);
    if (endsAt <= now) return { count: 0, resetInMs: 0 };
    return { count: Number(n ?? 0), resetInMs: endsAt - now };
  }

  async reset(name: string): Promise<void> {
    await this.run(() => this.client.del(this.keys.counter(name)));
  }
}

/** A cause goes into the event's JSON as it is: only the contract's words. */
function checkedCause(cause: RevokeCause): RevokeCause {
  if (!REVOKE_CAUSES.includes(cause)) throw new RangeError(`not a revocation cause: ${JSON.stringify(cause)}`);
  return cause;
}
