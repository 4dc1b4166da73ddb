import type { EventOrigin, SecurityEvent } from '../events/types.js';
import type {
  ActivateTotpInput,
  ChallengeRef,
  CompleteMfaResult,
  FactorKind,
  FactorRecord,
  FactorStore,
  FactorUse,
  MfaTicketInput,
  PendingTotp,
} from '../factors/store.js';
import { ID_PATTERN } from '../ids.js';
import { AUDIT_MAX_ARG, EVENT_ARGS, EVENTS_LUA, USER_EVENTS_MAX_ARG, decodeAppended } from './redisEvents.js';
import type { RedisReply } from './redisRecords.js';
import { type ArgSpec, defineScript, type RedisScript, type ScriptInput } from './redisScript.js';
import type { RedisClient } from './redisStore.js';

/**
 * Second factors in Redis (FactorStore). Everything of a user's lives under the user's
 * `{u:<id>}` tag:
 * - `{u:<id>}:factors`, one hash: `f:<factorId>` the factor's fixed part (JSON: kind, name,
 *   createdAt, the TOTP secret or the passkey's credential), `n:<factorId>` its counter (TOTP: the
 *   last accepted step; passkey: the signature counter), `u:<factorId>` when it was last used,
 *   `k:<credentialId>` → factorId (one credential, one factor), `c:<sha256>` a recovery code;
 * - `{u:<id>}:totp:<factorId>`: an enrolment waiting for its first code (TTL);
 * - `{u:<id>}:mfa:<sha256 of the token's secret>`: a sign-in waiting for its second factor
 *   (`a` attempts, `m` the most allowed, `e` its end; TTL);
 * - `{u:<id>}:wac:<purpose>:<challenge>`: a WebAuthn challenge (TTL; spent with GETDEL);
 *   passwordless ones, which have no user yet, at `wac:<purpose>:<challenge>`.
 * One Lua script per change; the changes with an event append it in the same script.
 */

const EVENT_KEYS = ['auditKey', 'userEventsKey'] as const;
const APPENDING_ARGS = { ...EVENT_ARGS, ...AUDIT_MAX_ARG, ...USER_EVENTS_MAX_ARG } as const;

/** Lua: the recovery codes, and a factor use applied only if it still holds. */
const FACTORS_LUA = `
${EVENTS_LUA}
local function clear_recovery_codes(key)
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'c:' then redis.call('HDEL', key, field) end
  end
end
local function add_recovery_codes(key, list)
  for hash in string.gmatch(list, '[^,]+') do redis.call('HSET', key, 'c:' .. hash, '1') end
end
-- kind: totp | passkey | recovery_code. value: the step, the counter, or the code's hash.
local function apply_use(key, kind, factor_id, value, now)
  if kind == 'recovery_code' then return redis.call('HDEL', key, 'c:' .. value) == 1 end
  local fixed = redis.call('HGET', key, 'f:' .. factor_id)
  if not fixed or cjson.decode(fixed).kind ~= kind then return false end
  local last = tonumber(redis.call('HGET', key, 'n:' .. factor_id) or '0')
  local next_value = tonumber(value)
  if kind == 'totp' then
    if next_value <= last then return false end
  elseif not ((next_value == 0 and last == 0) or next_value > last) then
    return false
  end
  redis.call('HSET', key, 'n:' .. factor_id, string.format('%d', next_value), 'u:' .. factor_id, string.format('%d', now))
  return true
end
`;

export const ACTIVATE_TOTP = defineScript({
  name: 'tsActivateTotp',
  keys: ['pendingKey', 'factorsKey', ...EVENT_KEYS],
  args: { factorId: 'string', factorJson: 'string', step: 'number', recoveryCodes: 'string', ...APPENDING_ARGS },
  library: FACTORS_LUA,
  lua: `
if redis.call('EXISTS', pending_key) == 0 then return {0} end
redis.call('DEL', pending_key)
redis.call('HSET', factors_key, 'f:' .. factor_id, factor_json, 'n:' .. factor_id, string.format('%d', step))
clear_recovery_codes(factors_key)
add_recovery_codes(factors_key, recovery_codes)
append_event('mfa.enrolled', nil, '"kind":"totp","factorId":"' .. factor_id .. '"')
return {1, appended}
`,
});

export const ADD_PASSKEY = defineScript({
  name: 'tsAddPasskey',
  keys: ['factorsKey', ...EVENT_KEYS],
  args: { factorId: 'string', credentialId: 'string', factorJson: 'string', counter: 'number', ...APPENDING_ARGS },
  library: FACTORS_LUA,
  lua: `
if redis.call('HSETNX', factors_key, 'k:' .. credential_id, factor_id) == 0 then return {0} end
redis.call('HSET', factors_key, 'f:' .. factor_id, factor_json, 'n:' .. factor_id, string.format('%d', counter))
append_event('mfa.enrolled', nil, '"kind":"passkey","factorId":"' .. factor_id .. '"')
return {1, appended}
`,
});

export const REPLACE_RECOVERY_CODES = defineScript({
  name: 'tsReplaceRecoveryCodes',
  keys: ['factorsKey', ...EVENT_KEYS],
  args: { recoveryCodes: 'string', ...APPENDING_ARGS },
  library: FACTORS_LUA,
  lua: `
clear_recovery_codes(factors_key)
add_recovery_codes(factors_key, recovery_codes)
append_event('mfa.enrolled', nil, '"kind":"recovery_code"')
return {1, appended}
`,
});

export const REMOVE_FACTOR = defineScript({
  name: 'tsRemoveFactor',
  keys: ['factorsKey', ...EVENT_KEYS],
  args: { factorId: 'string', ...APPENDING_ARGS },
  library: FACTORS_LUA,
  lua: `
local fixed = redis.call('HGET', factors_key, 'f:' .. factor_id)
if not fixed then return {0} end
local record = cjson.decode(fixed)
redis.call('HDEL', factors_key, 'f:' .. factor_id, 'n:' .. factor_id, 'u:' .. factor_id)
if type(record.passkey) == 'table' and record.passkey.credentialId then
  redis.call('HDEL', factors_key, 'k:' .. record.passkey.credentialId)
end
local left = 0
for _, field in ipairs(redis.call('HKEYS', factors_key)) do
  if string.sub(field, 1, 2) == 'f:' then left = left + 1 end
end
if left == 0 then clear_recovery_codes(factors_key) end
local kind = 'passkey'
if record.kind == 'totp' then kind = 'totp' end
append_event('mfa.removed', nil, '"kind":"' .. kind .. '","factorId":"' .. factor_id .. '"')
return {1, kind, appended}
`,
});

export const USE_FACTOR = defineScript({
  name: 'tsUseFactor',
  keys: ['factorsKey'],
  args: { useKind: 'string', factorId: 'string', useValue: 'string', now: 'number' },
  library: FACTORS_LUA,
  lua: `
if apply_use(factors_key, use_kind, factor_id, use_value, now) then return 1 end
return 0
`,
});

export const CREATE_MFA_TICKET = defineScript({
  name: 'tsCreateMfaTicket',
  keys: ['ticketKey'],
  args: { maxAttempts: 'number', expiresAt: 'number', ttlMs: 'number' },
  lua: `
redis.call('HSET', ticket_key, 'a', '0', 'm', string.format('%d', max_attempts), 'e', string.format('%d', expires_at))
redis.call('PEXPIRE', ticket_key, string.format('%d', ttl_ms))
return 1
`,
});

export const BEGIN_MFA_ATTEMPT = defineScript({
  name: 'tsBeginMfaAttempt',
  keys: ['ticketKey'],
  args: { now: 'number' },
  lua: `
local e = redis.call('HGET', ticket_key, 'e')
if not e or tonumber(e) <= now then return 0 end
local attempts = redis.call('HINCRBY', ticket_key, 'a', 1)
if attempts > tonumber(redis.call('HGET', ticket_key, 'm') or '0') then
  redis.call('DEL', ticket_key)
  return 0
end
return 1
`,
});

export const COMPLETE_MFA = defineScript({
  name: 'tsCompleteMfa',
  keys: ['ticketKey', 'factorsKey'],
  args: { useKind: 'string', factorId: 'string', useValue: 'string', now: 'number' },
  library: FACTORS_LUA,
  lua: `
local e = redis.call('HGET', ticket_key, 'e')
if not e or tonumber(e) <= now then return 'token_invalid' end
if not apply_use(factors_key, use_kind, factor_id, use_value, now) then return 'code_invalid' end
redis.call('DEL', ticket_key)
return 'ok'
`,
});

export const PUT_CHALLENGE = defineScript({
  name: 'tsPutChallenge',
  keys: ['challengeKey'],
  args: { expiresAt: 'number', ttlMs: 'number' },
  lua: `
redis.call('SET', challenge_key, string.format('%d', expires_at), 'PX', string.format('%d', ttl_ms))
return 1
`,
});

export const FACTOR_SCRIPTS: readonly RedisScript[] = [
  ACTIVATE_TOTP,
  ADD_PASSKEY,
  REPLACE_RECOVERY_CODES,
  REMOVE_FACTOR,
  USE_FACTOR,
  CREATE_MFA_TICKET,
  BEGIN_MFA_ATTEMPT,
  COMPLETE_MFA,
  PUT_CHALLENGE,
];

/** The event keys and arguments of an appending step (RedisStore.appending). */
export interface AppendingArgs {
  auditKey: string;
  userEventsKey: string;
  eventId: string;
  eventTime: number;
  eventUser: string;
  eventIp: string;
  eventUserAgent: string;
  eventDetails: string;
  /** The live session events channel (redisEvents.ts EVENT_ARGS); factor events are not among its types. */
  liveChannel: string;
  auditMax: number;
  userEventsMax: number;
}

/** What RedisFactors borrows from the RedisStore it belongs to. */
export interface RedisFactorsHost {
  client: RedisClient;
  prefix: string;
  script<K extends string, A extends ArgSpec>(script: RedisScript<K, A>, input: ScriptInput<K, A>): Promise<RedisReply>;
  run<T>(operation: () => Promise<T>): Promise<T>;
  /** The event keys and arguments of a step of this user's. */
  appending(userId: string, now: number, origin: EventOrigin): AppendingArgs;
  /** Tells the store's listeners what a step appended. */
  emit(events: readonly SecurityEvent[], userId: string): void;
}

/** The stored fixed part of a factor (what never changes after enrolment). */
type FixedPart = Omit<FactorRecord, 'userId' | 'counter' | 'lastUsedAt'>;

export class RedisFactors implements FactorStore {
  constructor(private readonly host: RedisFactorsHost) {}

  private tag(userId: string): string {
    // An id goes into keys and into the events' JSON as it is: only ids of ours.
    if (!ID_PATTERN.test(userId)) throw new RangeError('not a user id');
    return `${this.host.prefix}{u:${userId}}`;
  }
  factorsKey(userId: string): string {
    return `${this.tag(userId)}:factors`;
  }
  private pendingKey(userId: string, factorId: string): string {
    return `${this.tag(userId)}:totp:${checkedId(factorId)}`;
  }
  private ticketKey(userId: string, tokenHash: string): string {
    return `${this.tag(userId)}:mfa:${tokenHash}`;
  }
  private challengeKey(ref: ChallengeRef): string {
    const base = ref.userId === null ? this.host.prefix : `${this.tag(ref.userId)}:`;
    return `${base}wac:${ref.purpose}:${ref.challenge}`;
  }

  private appending(userId: string, now: number, origin: EventOrigin): AppendingArgs {
    return this.host.appending(userId, now, origin);
  }

  async listFactors(userId: string): Promise<FactorRecord[]> {
    const key = this.factorsKey(userId);
    const fields = await this.host.run(() => this.host.client.hgetall(key));
    const factors: FactorRecord[] = [];
    for (const [field, json] of Object.entries(fields)) {
      if (!field.startsWith('f:')) continue;
      const id = field.slice(2);
      const fixed = JSON.parse(json) as FixedPart;
      const used = fields[`u:${id}`];
      factors.push({
        ...fixed,
        id,
        userId,
        counter: Number(fields[`n:${id}`] ?? 0),
        lastUsedAt: used === undefined ? null : Number(used),
      });
    }
    return factors;
  }

  async countRecoveryCodes(userId: string): Promise<number> {
    const key = this.factorsKey(userId);
    const fields = await this.host.run(() => this.host.client.hkeys(key));
    return fields.filter((f) => f.startsWith('c:')).length;
  }

  async putPendingTotp(pending: PendingTotp, ttlMs: number): Promise<void> {
    const key = this.pendingKey(pending.userId, pending.factorId);
    await this.host.run(() => this.host.client.set(key, JSON.stringify({ secret: pending.secret, createdAt: pending.createdAt }), 'PX', ttlMs));
  }

  async getPendingTotp(userId: string, factorId: string, _now: number): Promise<PendingTotp | null> {
    const key = this.pendingKey(userId, factorId);
    const raw = await this.host.run(() => this.host.client.get(key));
    if (raw === null) return null;
    const { secret, createdAt } = JSON.parse(raw) as { secret: string; createdAt: number };
    return { userId, factorId, secret, createdAt };
  }

  async activateTotp(input: ActivateTotpInput): Promise<FactorRecord | null> {
    const pending = await this.getPendingTotp(input.userId, input.factorId, input.now);
    if (!pending) return null;
    const fixed: FixedPart = { id: input.factorId, kind: 'totp', name: null, createdAt: input.now, secret: pending.secret };
    const [done, appended] = (await this.host.script(ACTIVATE_TOTP, {
      pendingKey: this.pendingKey(input.userId, input.factorId),
      factorsKey: this.factorsKey(input.userId),
      factorId: input.factorId,
      factorJson: JSON.stringify(fixed),
      step: input.step,
      recoveryCodes: checkedHashes(input.recoveryCodeHashes),
      ...this.appending(input.userId, input.now, input.origin),
    })) as RedisReply[];
    if (Number(done) !== 1) return null;
    this.host.emit(decodeAppended(appended), input.userId);
    return { ...fixed, userId: input.userId, counter: input.step, lastUsedAt: null };
  }

  async addPasskey(factor: FactorRecord, origin: EventOrigin): Promise<'added' | 'duplicate'> {
    const { userId, counter, lastUsedAt: _unused, ...fixed } = factor;
    const [done, appended] = (await this.host.script(ADD_PASSKEY, {
      factorsKey: this.factorsKey(userId),
      factorId: checkedId(factor.id),
      credentialId: checkedBase64url(factor.passkey?.credentialId ?? ''),
      factorJson: JSON.stringify(fixed),
      counter,
      ...this.appending(userId, factor.createdAt, origin),
    })) as RedisReply[];
    if (Number(done) !== 1) return 'duplicate';
    this.host.emit(decodeAppended(appended), userId);
    return 'added';
  }

  async replaceRecoveryCodes(userId: string, hashes: readonly string[], now: number, origin: EventOrigin): Promise<void> {
    const [, appended] = (await this.host.script(REPLACE_RECOVERY_CODES, {
      factorsKey: this.factorsKey(userId),
      recoveryCodes: checkedHashes(hashes),
      ...this.appending(userId, now, origin),
    })) as RedisReply[];
    this.host.emit(decodeAppended(appended), userId);
  }

  async removeFactor(userId: string, factorId: string, now: number, origin: EventOrigin): Promise<FactorKind | null> {
    if (!ID_PATTERN.test(factorId)) return null;
    const [done, kind, appended] = (await this.host.script(REMOVE_FACTOR, {
      factorsKey: this.factorsKey(userId),
      factorId,
      ...this.appending(userId, now, origin),
    })) as RedisReply[];
    if (Number(done) !== 1) return null;
    this.host.emit(decodeAppended(appended), userId);
    return String(kind) as FactorKind;
  }

  private useArgs(use: FactorUse): { useKind: string; factorId: string; useValue: string } {
    if (use.kind === 'recovery_code') return { useKind: use.kind, factorId: '', useValue: checkedHashes([use.codeHash]) };
    const value = use.kind === 'totp' ? use.step : use.counter;
    return { useKind: use.kind, factorId: checkedId(use.factorId), useValue: String(Math.floor(value)) };
  }

  async useFactor(userId: string, use: FactorUse, now: number): Promise<boolean> {
    const reply = await this.host.script(USE_FACTOR, { factorsKey: this.factorsKey(userId), ...this.useArgs(use), now });
    return Number(reply) === 1;
  }

  async createMfaTicket(input: MfaTicketInput): Promise<void> {
    await this.host.script(CREATE_MFA_TICKET, {
      ticketKey: this.ticketKey(input.userId, checkedHashes([input.tokenHash])),
      maxAttempts: input.maxAttempts,
      expiresAt: input.now + input.ttlMs,
      ttlMs: input.ttlMs,
    });
  }

  async beginMfaAttempt(userId: string, tokenHash: string, now: number): Promise<boolean> {
    const reply = await this.host.script(BEGIN_MFA_ATTEMPT, { ticketKey: this.ticketKey(userId, checkedHashes([tokenHash])), now });
    return Number(reply) === 1;
  }

  async completeMfa(userId: string, tokenHash: string, use: FactorUse, now: number): Promise<CompleteMfaResult> {
    const reply = await this.host.script(COMPLETE_MFA, {
      ticketKey: this.ticketKey(userId, checkedHashes([tokenHash])),
      factorsKey: this.factorsKey(userId),
      ...this.useArgs(use),
      now,
    });
    const status = String(reply);
    return status === 'ok' || status === 'code_invalid' ? status : 'token_invalid';
  }

  async putChallenge(ref: ChallengeRef, now: number, ttlMs: number): Promise<void> {
    await this.host.script(PUT_CHALLENGE, { challengeKey: this.challengeKey(checkedChallenge(ref)), expiresAt: now + ttlMs, ttlMs });
  }

  async takeChallenge(ref: ChallengeRef, now: number): Promise<boolean> {
    const key = this.challengeKey(checkedChallenge(ref));
    const stored = await this.host.run(() => this.host.client.getdel(key));
    return stored !== null && Number(stored) > now;
  }
}

function checkedId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new RangeError('not a factor id');
  return id;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** SHA-256 hashes in hex, comma-separated (nothing else goes into the script's list). */
function checkedHashes(hashes: readonly string[]): string {
  for (const hash of hashes) if (!HEX_HASH.test(hash)) throw new RangeError('not a SHA-256 hex hash');
  return hashes.join(',');
}

const BASE64URL = /^[A-Za-z0-9_-]{1,1400}$/;

function checkedBase64url(value: string): string {
  if (!BASE64URL.test(value)) throw new RangeError('not base64url');
  return value;
}

const PURPOSE = /^[a-z]+(:[A-Za-z0-9_-]{1,64})?$/;

function checkedChallenge(ref: ChallengeRef): ChallengeRef {
  if (!PURPOSE.test(ref.purpose)) throw new RangeError('not a challenge purpose');
  checkedBase64url(ref.challenge);
  return ref;
}
