import { luaRecordCodec, SESSION_RECORD, USER_FIELDS } from './redisRecords.js';
import { defineScript } from './redisScript.js';

/**
 * Lua scripts of the Redis store, one per atomic step, each with its keys and named arguments
 * declared once (redisScript.ts). Each touches the keys of one user only, which share the hash
 * tag `{u:<userId>}`, so every script stays inside one Redis Cluster slot.
 *
 * A session is one string (SESSION_RECORD of redisRecords.ts, packed and unpacked by functions
 * generated from that definition, with Redis's `struct` library) whose TTL is its idle expiry.
 * The user's session index is the field `s` of the user's hash: the ids of the user's sessions,
 * comma-separated, oldest first. Sessions that ended drop out of it when the user logs in, lists
 * or revokes; a rotation never touches it.
 * A script reads and decodes everything it needs before its first write: Redis does not roll a
 * script back, so one that fails (an unreadable record) must fail having changed nothing. The
 * revoking scripts do not fail on an unreadable record: they end it like a live one.
 * Numbers go out through string.format('%d') so no millisecond value is printed as a float.
 * Every script carries the caller's deadline (redisScript.ts): past it, it writes nothing.
 */

/** The user's fields a refresh hands back with the session, in USER_FIELDS order. */
const HMGET_USER = `redis.call('HMGET', user_key, ${USER_FIELDS.map((field) => `'${field}'`).join(', ')})`;

/** The session record and the user's session index. */
const sessions = `${luaRecordCodec('session', SESSION_RECORD)}
local function is_live(s, now) return s.expiresAt > now and s.absoluteExpiresAt > now end
-- For the revoking scripts: a record they cannot read is ended like a live one (ending a session
-- is always safe; a record of another version must not block a logout).
local function live_or_unreadable(raw, now)
  local ok, s = pcall(unpack_session, raw)
  return not ok or is_live(s, now)
end
-- Writes the record with its TTL (the idle expiry) and returns it packed.
local function store_session(key, s, now)
  local packed = pack_session(s)
  redis.call('SET', key, packed, 'PX', string.format('%d', s.expiresAt - now))
  return packed
end
local function index_ids(user)
  local ids = {}
  local list = redis.call('HGET', user, 's')
  if list then for id in string.gmatch(list, '[^,]+') do ids[#ids + 1] = id end end
  return ids
end
local function write_index(user, ids)
  if #ids == 0 then redis.call('HDEL', user, 's') else redis.call('HSET', user, 's', table.concat(ids, ',')) end
end
local function unindex(user, id)
  local ids = index_ids(user)
  for i, v in ipairs(ids) do
    if v == id then
      table.remove(ids, i)
      write_index(user, ids)
      return
    end
  end
end
`;

/**
 * Drops ended sessions from the index, ends the oldest ones (and publishes their ids) while the
 * user has maxSessions, adds this one. Returns the idle expiry.
 */
export const CREATE_SESSION = defineScript({
  name: 'tsCreateSession',
  keys: ['sessionKey', 'userKey'],
  args: {
    now: 'number',
    idleMs: 'number',
    absoluteMs: 'number',
    secretHash: 'string',
    userAgent: 'string',
    ip: 'string',
    sessionId: 'string',
    sessionKeyPrefix: 'string',
    maxSessions: 'number',
    revocationChannel: 'string',
  },
  library: sessions,
  lua: `
local absolute = now + absolute_ms
local expires = math.min(now + idle_ms, absolute)
local ids = {}
for _, id in ipairs(index_ids(user_key)) do
  if id ~= session_id and redis.call('EXISTS', session_key_prefix .. id) == 1 then ids[#ids + 1] = id end
end
local evicted = {}
local room = max_sessions - 1
while #ids > room do
  local id = table.remove(ids, 1)
  redis.call('DEL', session_key_prefix .. id)
  evicted[#evicted + 1] = id
end
store_session(session_key, {
  createdAt = now, lastRefreshedAt = now, expiresAt = expires, absoluteExpiresAt = absolute, generation = 0,
  secretHash = secret_hash, previousSecretHash = '', sealedSuccessor = '', userAgent = user_agent, ipAddress = ip,
}, now)
ids[#ids + 1] = session_id
write_index(user_key, ids)
if #evicted > 0 then redis.call('PUBLISH', revocation_channel, table.concat(evicted, ',')) end
return string.format('%d', expires)
`,
});

/**
 * The check and the rotation in one atomic step. A replay revokes the session and publishes
 * its id on the revocation channel in the same step. The user's record comes back with a
 * rotation or grace answer, so a refresh needs no second round trip.
 * Returns {status[, session record, the user's USER_FIELDS]}.
 */
export const ROTATE_SESSION = defineScript({
  name: 'tsRotateSession',
  keys: ['sessionKey', 'userKey'],
  args: {
    now: 'number',
    generation: 'number',
    secretHash: 'string',
    nextSecretHash: 'string',
    sealedSuccessor: 'string',
    idleMs: 'number',
    graceMs: 'number',
    sessionId: 'string',
    revocationChannel: 'string',
  },
  library: sessions,
  buffers: true,
  lua: `
local raw = redis.call('GET', session_key)
if not raw then return {'invalid'} end
local s = unpack_session(raw)
if now >= s.expiresAt or now >= s.absoluteExpiresAt then
  redis.call('DEL', session_key)
  unindex(user_key, session_id)
  return {'expired'}
end
if generation == s.generation then
  if secret_hash ~= s.secretHash then return {'invalid'} end
  s.generation = s.generation + 1
  s.previousSecretHash = s.secretHash
  s.secretHash = next_secret_hash
  s.sealedSuccessor = sealed_successor
  s.lastRefreshedAt = now
  s.expiresAt = math.min(now + idle_ms, s.absoluteExpiresAt)
  local packed = store_session(session_key, s, now)
  local u = ${HMGET_USER}
  return {'rotated', packed, unpack(u)}
end
if generation == s.generation - 1 then
  if secret_hash ~= s.previousSecretHash then return {'invalid'} end
  if grace_ms > 0 and now - s.lastRefreshedAt <= grace_ms then
    local u = ${HMGET_USER}
    return {'grace', raw, unpack(u)}
  end
end
-- An older generation is a replay whatever secret it carries: a token reaches this script only
-- with a valid HMAC tag (refreshTokens.ts), so it was issued by us for this session.
if generation < s.generation then
  redis.call('DEL', session_key)
  unindex(user_key, session_id)
  redis.call('PUBLISH', revocation_channel, session_id)
  return {'reused'}
end
return {'invalid'}
`,
});

/** Returns {id, record, ...} of the live sessions and drops the ones that ended from the index. */
export const LIST_SESSIONS = defineScript({
  name: 'tsListSessions',
  keys: ['userKey'],
  args: { now: 'number', sessionKeyPrefix: 'string' },
  library: sessions,
  buffers: true,
  lua: `
local ids = index_ids(user_key)
local kept, out = {}, {}
for _, id in ipairs(ids) do
  local raw = redis.call('GET', session_key_prefix .. id)
  if raw then
    kept[#kept + 1] = id
    if is_live(unpack_session(raw), now) then
      out[#out + 1] = id
      out[#out + 1] = raw
    end
  end
end
if #kept < #ids then write_index(user_key, kept) end
return out
`,
});

/** Returns 1 when a live session was revoked (and its id published). */
export const REVOKE_SESSION = defineScript({
  name: 'tsRevokeSession',
  keys: ['sessionKey', 'userKey'],
  args: { now: 'number', sessionId: 'string', revocationChannel: 'string' },
  library: sessions,
  lua: `
local raw = redis.call('GET', session_key)
local live = raw and live_or_unreadable(raw, now)
unindex(user_key, session_id)
if not raw then return 0 end
redis.call('DEL', session_key)
if live then
  redis.call('PUBLISH', revocation_channel, session_id)
  return 1
end
return 0
`,
});

/**
 * Revokes a session for the holder of its live refresh token or of its immediate predecessor.
 * Returns 1 when it revoked (and published) the session.
 */
export const REVOKE_SESSION_WITH_TOKEN = defineScript({
  name: 'tsRevokeWithToken',
  keys: ['sessionKey', 'userKey'],
  args: { now: 'number', sessionId: 'string', generation: 'number', secretHash: 'string', revocationChannel: 'string' },
  library: sessions,
  lua: `
local raw = redis.call('GET', session_key)
if not raw then return 0 end
local s = unpack_session(raw)
if not is_live(s, now) then return 0 end
local holder = (generation == s.generation and secret_hash == s.secretHash)
  or (generation == s.generation - 1 and secret_hash == s.previousSecretHash)
if not holder then return 0 end
redis.call('DEL', session_key)
unindex(user_key, session_id)
redis.call('PUBLISH', revocation_channel, session_id)
return 1
`,
});

/** Returns (and publishes) the ids of the live sessions it revoked. */
export const REVOKE_ALL_SESSIONS = defineScript({
  name: 'tsRevokeAll',
  keys: ['userKey'],
  args: { now: 'number', sessionKeyPrefix: 'string', revocationChannel: 'string' },
  library: sessions,
  lua: `
local found, out = {}, {}
for _, id in ipairs(index_ids(user_key)) do
  local raw = redis.call('GET', session_key_prefix .. id)
  if raw then
    found[#found + 1] = session_key_prefix .. id
    if live_or_unreadable(raw, now) then out[#out + 1] = id end
  end
end
for _, key in ipairs(found) do redis.call('DEL', key) end
redis.call('HDEL', user_key, 's')
if #out > 0 then redis.call('PUBLISH', revocation_channel, table.concat(out, ',')) end
return out
`,
});

/** A fixed window that starts at the first increment, timed by the caller's clock. Returns {count, msLeft}. */
export const INCREMENT_COUNTER = defineScript({
  name: 'tsCount',
  keys: ['counterKey'],
  args: { now: 'number', windowMs: 'number', by: 'number' },
  lua: `
local f = redis.call('HMGET', counter_key, 'n', 'end')
local n = tonumber(f[1]) or 0
local e = tonumber(f[2]) or 0
if e <= now then
  n = 0
  e = now + window_ms
end
n = math.max(0, n + by)
redis.call('HSET', counter_key, 'n', string.format('%d', n), 'end', string.format('%d', e))
redis.call('PEXPIRE', counter_key, string.format('%d', e - now))
return {n, e - now}
`,
});

/** Writes a new user's record (its USER_FIELDS, from the arguments of the same names). */
export const WRITE_USER = defineScript({
  name: 'tsWriteUser',
  keys: ['userKey'],
  args: { e: 'string', h: 'string', r: 'string', c: 'string' },
  lua: `
redis.call('HSET', user_key, ${USER_FIELDS.map((field) => `'${field}', ${field}`).join(', ')})
return 1
`,
});

/** Points the email at the user unless another account has it; 1 when claimed. */
export const CLAIM_EMAIL = defineScript({
  name: 'tsClaimEmail',
  keys: ['emailKey'],
  args: { userId: 'string' },
  lua: `
if redis.call('SET', email_key, user_id, 'NX') then return 1 end
return 0
`,
});

/** Every script, for the store to define on its client. */
export const SCRIPTS = [
  CREATE_SESSION,
  ROTATE_SESSION,
  LIST_SESSIONS,
  REVOKE_SESSION,
  REVOKE_SESSION_WITH_TOKEN,
  REVOKE_ALL_SESSIONS,
  INCREMENT_COUNTER,
  WRITE_USER,
  CLAIM_EMAIL,
] as const;
