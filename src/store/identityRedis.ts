import type { EventOrigin, SecurityEvent } from '../events/types.js';
import type {
  FlowRecordKind,
  IdentityRecord,
  IdentityStore,
  LinkInput,
  LinkResult,
  UnlinkResult,
} from '../identity/types.js';
import { AUDIT_MAX_ARG, decodeAppended, EVENT_ARGS, EVENTS_LUA, eventArgs, USER_EVENTS_MAX_ARG } from './redisEvents.js';
import type { RedisReply } from './redisRecords.js';
import { type ArgSpec, defineScript, type RedisScript, type ScriptInput } from './redisScript.js';

/**
 * Identities in Redis (sign-in with other providers, docs/contract.md section 9).
 *
 * - The user's identities: a hash `{prefix}{u:<id>}:idp` (identity id → JSON record), in the
 *   user's slot, so the user's own steps (link, unlink, the take-over of a pre-made account)
 *   are one script each, and erasing the user's keys erases them.
 * - The global index `{prefix}idp:<provider>:<subject>` → `<userId> <identityId>`, in its own
 *   slot. Linking claims it first (SET NX, no event), then the user's script writes the record
 *   and its events; unlinking removes the record first, then the index entry if it still names
 *   that identity. An index entry whose record is missing (a step that never ran) is treated as
 *   absent and removed when read, so a crash between the two steps leaves nothing that matters.
 * - Flow records (states, login codes, link tickets): `{prefix}idpflow:<kind>:<hash>` holding
 *   `<expiresAt>|<value>`, with a Redis TTL, taken with GETDEL (single use).
 */

const APPENDING = { ...EVENT_ARGS, ...AUDIT_MAX_ARG, ...USER_EVENTS_MAX_ARG } as const;

/** Claims the index entry for the user: 1 claimed (or already this user's identity), 0 another's. */
const CLAIM_IDENTITY = defineScript({
  name: 'tsClaimIdentity',
  keys: ['indexKey'],
  args: { owner: 'string' },
  lua: `
if redis.call('SET', index_key, owner, 'NX') then return 1 end
if redis.call('GET', index_key) == owner then return 1 end
return 0
`,
});

/** Deletes the index entry if it still holds `owner`. */
const RELEASE_IDENTITY = defineScript({
  name: 'tsReleaseIdentity',
  keys: ['indexKey'],
  args: { owner: 'string' },
  lua: `
if redis.call('GET', index_key) == owner then redis.call('DEL', index_key) return 1 end
return 0
`,
});

/**
 * The user's side of a link: {'exists', record} when the user already has this provider's
 * subject; else, with take_over 1, removes the password (field `h`) and ends every session
 * (published, each with `session.revoked`), writes the record and appends `identity.linked`:
 * {'linked', revoked ids, events}.
 */
const LINK_IDENTITY = defineScript({
  name: 'tsLinkIdentity',
  keys: ['userKey', 'identitiesKey', 'auditKey', 'userEventsKey'],
  args: {
    identityId: 'string',
    provider: 'string',
    subject: 'string',
    record: 'string',
    takeOver: 'number',
    markVerified: 'number',
    cause: 'string',
    sessionKeyPrefix: 'string',
    revocationChannel: 'string',
    ...APPENDING,
  },
  library: EVENTS_LUA,
  lua: `
local all = redis.call('HGETALL', identities_key)
for i = 2, #all, 2 do
  local r = cjson.decode(all[i])
  if r.provider == provider and r.subject == subject then return {'exists', all[i]} end
end
local revoked = {}
if take_over == 1 then
  if redis.call('HEXISTS', user_key, 'h') == 1 then redis.call('HSET', user_key, 'h', '') end
  local list = redis.call('HGET', user_key, 's')
  if list then
    for id in string.gmatch(list, '[^,]+') do
      if redis.call('DEL', session_key_prefix .. id) == 1 then revoked[#revoked + 1] = id end
    end
    redis.call('HDEL', user_key, 's')
  end
  if #revoked > 0 then redis.call('PUBLISH', revocation_channel, table.concat(revoked, ',')) end
  for _, id in ipairs(revoked) do append_event('session.revoked', id, '"cause":"' .. cause .. '"') end
end
if mark_verified == 1 and redis.call('EXISTS', user_key) == 1 then redis.call('HSET', user_key, 'v', '1') end
redis.call('HSET', identities_key, identity_id, record)
append_event('identity.linked', nil, '"provider":' .. cjson.encode(provider) .. ',"identityId":' .. cjson.encode(identity_id))
return {'linked', revoked, appended}
`,
});

/**
 * Removes one identity of the user unless it is the last way to sign in (no password, no other
 * identity): {'unlinked', record, events}, {'last_method'} or {'not_found'}.
 */
const UNLINK_IDENTITY = defineScript({
  name: 'tsUnlinkIdentity',
  keys: ['userKey', 'identitiesKey', 'auditKey', 'userEventsKey'],
  args: { identityId: 'string', ...APPENDING },
  library: EVENTS_LUA,
  lua: `
local record = redis.call('HGET', identities_key, identity_id)
if not record then return {'not_found'} end
local password = redis.call('HGET', user_key, 'h')
if redis.call('HLEN', identities_key) <= 1 and (not password or password == '') then return {'last_method'} end
redis.call('HDEL', identities_key, identity_id)
local r = cjson.decode(record)
append_event('identity.unlinked', nil, '"provider":' .. cjson.encode(r.provider) .. ',"identityId":' .. cjson.encode(identity_id))
return {'unlinked', record, appended}
`,
});

/** Reads and deletes a flow record: its value while `now` is before its expiry, else false. */
const TAKE_FLOW = defineScript({
  name: 'tsTakeFlow',
  keys: ['flowKey'],
  args: { now: 'number' },
  lua: `
local raw = redis.call('GETDEL', flow_key)
if not raw then return false end
local at = string.find(raw, '|', 1, true)
if not at or tonumber(string.sub(raw, 1, at - 1)) <= now then return false end
return string.sub(raw, at + 1)
`,
});

export const IDENTITY_SCRIPTS = [CLAIM_IDENTITY, RELEASE_IDENTITY, LINK_IDENTITY, UNLINK_IDENTITY, TAKE_FLOW] as const;

/** The event keys and arguments of a user's step (RedisStore's `appending`). */
export type AppendingInput = { auditKey: string; userEventsKey: string; auditMax: number; userEventsMax: number } & ReturnType<
  typeof eventArgs
>;

/** What the Redis store lends: its script runner, keys and event plumbing. */
export interface RedisIdentityHost {
  prefix: string;
  script<K extends string, A extends ArgSpec>(script: RedisScript<K, A>, input: ScriptInput<K, A>): Promise<RedisReply>;
  /** A write of the user's that ends sessions: acknowledged by REDIS_MIN_REPLICAS_ACK replicas, as the session writes are. */
  acknowledged<K extends string, A extends ArgSpec>(script: RedisScript<K, A>, userId: string, input: ScriptInput<K, A>): Promise<RedisReply>;
  /** A plain command, its errors translated. */
  command<T>(run: () => Promise<T>): Promise<T>;
  client: {
    get(key: string): Promise<string | null>;
    hget(key: string, field: string): Promise<string | null>;
    hgetall(key: string): Promise<Record<string, string>>;
    del(...keys: string[]): Promise<number>;
    set(key: string, value: string, mode: 'PX', ms: number): Promise<unknown>;
  };
  userKey(userId: string): string;
  /** The user's identities (RedisKeys.identities, one of the user's own keys that deleteUser erases). */
  identitiesKey(userId: string): string;
  sessionPrefix(userId: string): string;
  revocationChannel(): string;
  /** The event keys and arguments of a step of this user's. */
  appending(userId: string, now: number, origin: EventOrigin): AppendingInput;
  auditStreamOf(userId: string): string;
  emit(events: readonly SecurityEvent[], stream: string): void;
}

export class RedisIdentities implements IdentityStore {
  constructor(private readonly host: RedisIdentityHost) {}

  private identitiesKey(userId: string): string {
    return this.host.identitiesKey(userId);
  }

  private indexKey(provider: string, subject: string): string {
    return `${this.host.prefix}idp:${provider}:${subject}`;
  }

  private flowKey(kind: FlowRecordKind, keyHash: string): string {
    return `${this.host.prefix}idpflow:${kind}:${keyHash}`;
  }

  async findIdentity(provider: string, subject: string): Promise<IdentityRecord | null> {
    const indexKey = this.indexKey(provider, subject);
    const owner = await this.host.command(() => this.host.client.get(indexKey));
    if (!owner) return null;
    const [userId, identityId] = owner.split(' ');
    const raw = await this.host.command(() => this.host.client.hget(this.identitiesKey(userId!), identityId!));
    if (raw) return parseRecord(raw);
    // A claim whose user step never ran, or an unlink cut short: the entry means nothing.
    await this.host.script(RELEASE_IDENTITY, { indexKey, owner });
    return null;
  }

  async listIdentities(userId: string): Promise<IdentityRecord[]> {
    const all = await this.host.command(() => this.host.client.hgetall(this.identitiesKey(userId)));
    return Object.values(all)
      .map(parseRecord)
      .sort((a, b) => a.linkedAt - b.linkedAt || a.id.localeCompare(b.id));
  }

  async linkIdentity(input: LinkInput, now: number): Promise<LinkResult> {
    const { identity } = input;
    const indexKey = this.indexKey(identity.provider, identity.subject);
    const owner = `${identity.userId} ${identity.id}`;
    const found = await this.findIdentity(identity.provider, identity.subject);
    if (found) {
      return found.userId === identity.userId ? { status: 'linked', identity: found, revokedSessionIds: [] } : { status: 'taken' };
    }
    // A claim lost here is a concurrent link of the same subject.
    if ((await this.host.script(CLAIM_IDENTITY, { indexKey, owner })) !== 1) return { status: 'taken' };
    let reply: RedisReply[];
    try {
      reply = (await this.host.acknowledged(LINK_IDENTITY, identity.userId, {
        userKey: this.host.userKey(identity.userId),
        identitiesKey: this.identitiesKey(identity.userId),
        identityId: identity.id,
        provider: identity.provider,
        subject: identity.subject,
        record: JSON.stringify(identity),
        takeOver: input.takeOver ? 1 : 0,
        markVerified: input.markEmailVerified ? 1 : 0,
        cause: input.takeOver?.cause ?? '',
        sessionKeyPrefix: this.host.sessionPrefix(identity.userId),
        revocationChannel: this.host.revocationChannel(),
        ...this.host.appending(identity.userId, now, input.origin),
      })) as RedisReply[];
    } catch (error) {
      await this.host.script(RELEASE_IDENTITY, { indexKey, owner }).catch(() => undefined);
      throw error;
    }
    if (String(reply[0]) === 'exists') {
      await this.host.script(RELEASE_IDENTITY, { indexKey, owner });
      return { status: 'linked', identity: parseRecord(String(reply[1])), revokedSessionIds: [] };
    }
    this.host.emit(decodeAppended(reply[2]), this.host.auditStreamOf(identity.userId));
    return { status: 'linked', identity, revokedSessionIds: (reply[1] as RedisReply[]).map(String) };
  }

  async unlinkIdentity(userId: string, identityId: string, now: number, origin: EventOrigin): Promise<UnlinkResult> {
    const reply = (await this.host.script(UNLINK_IDENTITY, {
      userKey: this.host.userKey(userId),
      identitiesKey: this.identitiesKey(userId),
      identityId,
      ...this.host.appending(userId, now, origin),
    })) as RedisReply[];
    const status = String(reply[0]);
    if (status !== 'unlinked') return status === 'last_method' ? 'last_method' : 'not_found';
    const record = parseRecord(String(reply[1]));
    this.host.emit(decodeAppended(reply[2]), this.host.auditStreamOf(userId));
    await this.host.script(RELEASE_IDENTITY, {
      indexKey: this.indexKey(record.provider, record.subject),
      owner: `${userId} ${identityId}`,
    });
    return 'unlinked';
  }

  async deleteIdentities(userId: string): Promise<void> {
    await this.releaseIndex(userId, await this.listIdentities(userId));
    await this.host.command(() => this.host.client.del(this.identitiesKey(userId)));
  }

  /** Removes the index entries of these identities of the user's (deleteUser, after its script erased the records). */
  async releaseIndex(userId: string, identities: readonly IdentityRecord[]): Promise<void> {
    for (const identity of identities) {
      await this.host.script(RELEASE_IDENTITY, {
        indexKey: this.indexKey(identity.provider, identity.subject),
        owner: `${userId} ${identity.id}`,
      });
    }
  }

  async putFlowRecord(kind: FlowRecordKind, keyHash: string, value: string, expiresAt: number, now: number): Promise<void> {
    const ttl = Math.max(1, Math.ceil(expiresAt - now));
    await this.host.command(() => this.host.client.set(this.flowKey(kind, keyHash), `${Math.floor(expiresAt)}|${value}`, 'PX', ttl));
  }

  async takeFlowRecord(kind: FlowRecordKind, keyHash: string, now: number): Promise<string | null> {
    const value = await this.host.script(TAKE_FLOW, { flowKey: this.flowKey(kind, keyHash), now });
    return value === null || value === undefined ? null : String(value);
  }
}

function parseRecord(raw: string): IdentityRecord {
  const r = JSON.parse(raw) as IdentityRecord;
  return { id: r.id, userId: r.userId, provider: r.provider, subject: r.subject, email: r.email ?? null, linkedAt: r.linkedAt };
}
