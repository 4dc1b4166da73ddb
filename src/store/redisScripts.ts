import { AUDIT_MAX_ARG, EVENT_ARGS, EVENTS_LUA, USER_EVENTS_MAX_ARG } from './redisEvents.js';
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
 *
 * A script whose change has a security event appends it itself (redisEvents.ts: to the audit
 * stream of the slot and the user's own list, both declared as keys), so an event is stored
 * exactly when its change is, and returns what it appended for the gateway's audit log.
 */

/** The keys and arguments of a script that appends events to both streams. */
const EVENT_KEYS = ['auditKey', 'userEventsKey'] as const;
const APPENDING_ARGS = { ...EVENT_ARGS, ...AUDIT_MAX_ARG, ...USER_EVENTS_MAX_ARG } as const;

/** The user's fields a refresh hands back with the session, in USER_FIELDS order. */
const HMGET_USER = `redis.call('HMGET', user_key, ${USER_FIELDS.map((field) => `'${field}'`).join(', ')})`;

/** The session record and the user's session index (and the events library). */
const sessions = `${luaRecordCodec('session', SESSION_RECORD)}
${EVENTS_LUA}
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
-- Ends every session of the user but keep_id ('' for none): deleted, published, each with its
-- session.revoked of the cause. Returns the ids of the live ones it ended.
local function end_sessions(user, prefix, channel, cause, keep_id)
  local found, out, kept = {}, {}, {}
  for _, id in ipairs(index_ids(user)) do
    if id == keep_id then
      kept[#kept + 1] = id
    else
      local raw = redis.call('GET', prefix .. id)
      if raw then
        found[#found + 1] = prefix .. id
        if live_or_unreadable(raw, now) then out[#out + 1] = id end
      end
    end
  end
  for _, key in ipairs(found) do redis.call('DEL', key) end
  write_index(user, kept)
  if #out > 0 then redis.call('PUBLISH', channel, table.concat(out, ',')) end
  for _, id in ipairs(out) do append_event('session.revoked', id, '"cause":"' .. cause .. '"') end
  return out
end
-- A mail token of the user that is live at now and whose hash matches: its stored fields, else nil.
local function live_mail_token(key, hash)
  local t = redis.call('HMGET', key, 'h', 'x', 'e')
  if not t[1] or t[1] ~= hash or (tonumber(t[2]) or 0) <= now then return nil end
  return {hash = t[1], expires = tonumber(t[2]), email = t[3] or ''}
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
 * user has maxSessions, adds this one. Events: `session.created`, and `session.revoked` (cause
 * `evicted`) for each session it ended. Returns {idle expiry, events}.
 */
export const CREATE_SESSION = defineScript({
  name: 'tsCreateSession',
  keys: ['sessionKey', 'userKey', ...EVENT_KEYS],
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
    authTime: 'number',
    amr: 'string',
    acr: 'string',
    ...APPENDING_ARGS,
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
  authTime = auth_time, amr = amr, acr = acr,
}, now)
ids[#ids + 1] = session_id
write_index(user_key, ids)
if #evicted > 0 then redis.call('PUBLISH', revocation_channel, table.concat(evicted, ',')) end
append_event('session.created', session_id, nil)
for _, id in ipairs(evicted) do append_event('session.revoked', id, '"cause":"evicted"') end
return {string.format('%d', expires), appended}
`,
});

/**
 * The check and the rotation in one atomic step. A replay revokes the session and publishes
 * its id on the revocation channel in the same step. The user's record comes back with a
 * rotation or grace answer, so a refresh needs no second round trip. A replay's events
 * (`session.reuse_detected`, `session.revoked` cause `reuse`) are appended in the same step.
 * Returns {status[, session record, the user's USER_FIELDS]} or {'reused', events}.
 */
export const ROTATE_SESSION = defineScript({
  name: 'tsRotateSession',
  keys: ['sessionKey', 'userKey', ...EVENT_KEYS],
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
    ...APPENDING_ARGS,
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
  append_event('session.reuse_detected', session_id, string.format('"generation":%d,"currentGeneration":%d', generation, s.generation))
  append_event('session.revoked', session_id, '"cause":"reuse"')
  return {'reused', appended}
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

/** Returns {1, events} when a live session was revoked (its id published, `session.revoked` appended), else {0}. */
export const REVOKE_SESSION = defineScript({
  name: 'tsRevokeSession',
  keys: ['sessionKey', 'userKey', ...EVENT_KEYS],
  args: { now: 'number', sessionId: 'string', revocationChannel: 'string', cause: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
local raw = redis.call('GET', session_key)
local live = raw and live_or_unreadable(raw, now)
unindex(user_key, session_id)
if not raw then return {0} end
redis.call('DEL', session_key)
if live then
  redis.call('PUBLISH', revocation_channel, session_id)
  append_event('session.revoked', session_id, '"cause":"' .. cause .. '"')
  return {1, appended}
end
return {0}
`,
});

/**
 * Revokes a session for the holder of its live refresh token or of its immediate predecessor.
 * Returns {1, events} when it revoked (and published) the session (`session.revoked`, cause
 * `logout`), else {0}.
 */
export const REVOKE_SESSION_WITH_TOKEN = defineScript({
  name: 'tsRevokeWithToken',
  keys: ['sessionKey', 'userKey', ...EVENT_KEYS],
  args: {
    now: 'number',
    sessionId: 'string',
    generation: 'number',
    secretHash: 'string',
    revocationChannel: 'string',
    ...APPENDING_ARGS,
  },
  library: sessions,
  lua: `
local raw = redis.call('GET', session_key)
if not raw then return {0} end
local s = unpack_session(raw)
if not is_live(s, now) then return {0} end
local holder = (generation == s.generation and secret_hash == s.secretHash)
  or (generation == s.generation - 1 and secret_hash == s.previousSecretHash)
if not holder then return {0} end
redis.call('DEL', session_key)
unindex(user_key, session_id)
redis.call('PUBLISH', revocation_channel, session_id)
append_event('session.revoked', session_id, '"cause":"logout"')
return {1, appended}
`,
});

/** Returns {ids, events}: the live sessions it revoked (published, each with its `session.revoked`). */
export const REVOKE_ALL_SESSIONS = defineScript({
  name: 'tsRevokeAll',
  keys: ['userKey', ...EVENT_KEYS],
  args: { now: 'number', sessionKeyPrefix: 'string', revocationChannel: 'string', cause: 'string', ...APPENDING_ARGS },
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
for _, id in ipairs(out) do append_event('session.revoked', id, '"cause":"' .. cause .. '"') end
return {out, appended}
`,
});

/**
 * A re-authentication in a live session: its auth_time, amr and acr renewed, and a new live
 * refresh secret at the same generation (so the one presented before is merely invalid, never a
 * replay), the predecessor's grace answer dropped. The expiry and the TTL are unchanged.
 * Returns {record} or {} when the session is not live.
 */
export const REAUTHENTICATE_SESSION = defineScript({
  name: 'tsReauthenticate',
  keys: ['sessionKey'],
  args: { now: 'number', authTime: 'number', amr: 'string', acr: 'string', nextSecretHash: 'string' },
  library: sessions,
  buffers: true,
  lua: `
local raw = redis.call('GET', session_key)
if not raw then return {} end
local s = unpack_session(raw)
if not is_live(s, now) then return {} end
s.authTime = auth_time
s.amr = amr
s.acr = acr
s.secretHash = next_secret_hash
s.previousSecretHash = ''
s.sealedSuccessor = ''
return {store_session(session_key, s, now)}
`,
});

/**
 * Erases a user: every session (the live ones revoked and published, each with its
 * `session.revoked` cause `deleted`) and every key of the user's own (userOwnedKeys: the record,
 * mail tokens, the user's event list, what factors and identities keep), then `user.deleted` in the
 * audit stream only (the user's own list is gone). The email's claim and the admin index are
 * other slots: the store releases them next. Returns {0} for an unknown user, else
 * {1, email, revoked ids, events}.
 */
export const DELETE_USER = defineScript({
  name: 'tsDeleteUser',
  keys: ['userKey', ...EVENT_KEYS],
  args: { now: 'number', sessionKeyPrefix: 'string', revocationChannel: 'string', ownedKeys: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
local email = redis.call('HGET', user_key, 'e')
if not email then return {0} end
local found, out = {}, {}
for _, id in ipairs(index_ids(user_key)) do
  local raw = redis.call('GET', session_key_prefix .. id)
  if raw then
    found[#found + 1] = session_key_prefix .. id
    if live_or_unreadable(raw, now) then out[#out + 1] = id end
  end
end
for _, key in ipairs(found) do redis.call('DEL', key) end
for key in string.gmatch(owned_keys, '[^\\n]+') do redis.call('DEL', key) end
if #out > 0 then redis.call('PUBLISH', revocation_channel, table.concat(out, ',')) end
for _, id in ipairs(out) do
  local f = event_fields('session.revoked', id, '"cause":"deleted"')
  xadd_event(audit_key, audit_max, f)
  appended[#appended + 1] = f
end
local f = event_fields('user.deleted', '', nil)
xadd_event(audit_key, audit_max, f)
appended[#appended + 1] = f
return {1, email, out, appended}
`,
});

/**
 * A new mail token of a kind for the user (a hash of its hash, its expiry, the address it was sent
 * to), replacing any before (only the newest works), with the TTL. A reset token records
 * `password.reset_requested`. Returns {0} for an unknown user (nothing written), else {1, events}.
 */
export const ISSUE_MAIL_TOKEN = defineScript({
  name: 'tsIssueMailToken',
  keys: ['tokenKey', 'userKey', ...EVENT_KEYS],
  args: { now: 'number', secretHash: 'string', ttlMs: 'number', email: 'string', eventType: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
if redis.call('EXISTS', user_key) == 0 then return {0} end
redis.call('DEL', token_key)
redis.call('HSET', token_key, 'h', secret_hash, 'x', string.format('%d', now + ttl_ms), 'e', email)
redis.call('PEXPIRE', token_key, string.format('%d', ttl_ms))
if event_type ~= '' then append_event(event_type, '', nil) end
return {1, appended}
`,
});

/**
 * resetPassword's step: the reset token (live, matching, sent to the account's current address)
 * spent; the new password hash set and the email marked verified (the mail reached it); every
 * session ended (`session.revoked` cause `password_reset`, published); `password.changed`
 * (and `email.verified` when it was not). Returns {0} when the token does not work (nothing
 * changed), else {1, ended ids, events}.
 */
export const RESET_PASSWORD = defineScript({
  name: 'tsResetPassword',
  keys: ['tokenKey', 'userKey', ...EVENT_KEYS],
  args: { now: 'number', secretHash: 'string', passwordHash: 'string', sessionKeyPrefix: 'string', revocationChannel: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
local token = live_mail_token(token_key, secret_hash)
if not token then return {0} end
local u = redis.call('HMGET', user_key, 'e', 'v')
if not u[1] or u[1] ~= token.email then return {0} end
redis.call('DEL', token_key)
redis.call('HSET', user_key, 'h', password_hash, 'v', '1')
local out = end_sessions(user_key, session_key_prefix, revocation_channel, 'password_reset', '')
append_event('password.changed', '', '"method":"reset"')
if u[2] ~= '1' then append_event('email.verified', '', '"method":"reset"') end
return {1, out, appended}
`,
});

/**
 * verifyEmail's step: the verification token (live, matching, for the account's current address)
 * spent, the email marked verified, `email.verified`. Returns {0} or {1, events}.
 */
export const VERIFY_EMAIL = defineScript({
  name: 'tsVerifyEmail',
  keys: ['tokenKey', 'userKey', ...EVENT_KEYS],
  args: { now: 'number', secretHash: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
local token = live_mail_token(token_key, secret_hash)
if not token then return {0} end
local current = redis.call('HGET', user_key, 'e')
if not current or current ~= token.email then return {0} end
redis.call('DEL', token_key)
redis.call('HSET', user_key, 'v', '1')
append_event('email.verified', '', '"method":"link"')
return {1, appended}
`,
});

/** The address an email-change token (live and matching) is for; false otherwise. Changes nothing. */
export const PEEK_MAIL_TOKEN = defineScript({
  name: 'tsPeekMailToken',
  keys: ['tokenKey'],
  args: { now: 'number', secretHash: 'string' },
  library: sessions,
  lua: `
local token = live_mail_token(token_key, secret_hash)
if not token then return false end
return token.email
`,
});

/**
 * confirmEmailChange's step, once the new address is claimed for the user: the token (live,
 * matching, for exactly that address) spent, the email changed and verified, `email.changed`.
 * Returns {0} or {1, old email, events}.
 */
export const CHANGE_EMAIL = defineScript({
  name: 'tsChangeEmail',
  keys: ['tokenKey', 'userKey', ...EVENT_KEYS],
  args: { now: 'number', secretHash: 'string', newEmail: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
local token = live_mail_token(token_key, secret_hash)
if not token or token.email ~= new_email then return {0} end
local old = redis.call('HGET', user_key, 'e')
if not old then return {0} end
redis.call('DEL', token_key)
redis.call('HSET', user_key, 'e', new_email, 'v', '1')
append_event('email.changed', '', nil)
return {1, old, appended}
`,
});

/**
 * changePassword's step: the new hash set, every session but the caller's ended (cause `all`),
 * `password.changed`. Returns {0} for an unknown user, else {1, ended ids, events}.
 */
export const CHANGE_PASSWORD = defineScript({
  name: 'tsChangePassword',
  keys: ['userKey', ...EVENT_KEYS],
  args: { now: 'number', passwordHash: 'string', keepSessionId: 'string', sessionKeyPrefix: 'string', revocationChannel: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
if redis.call('EXISTS', user_key) == 0 then return {0} end
redis.call('HSET', user_key, 'h', password_hash)
local out = end_sessions(user_key, session_key_prefix, revocation_channel, 'all', keep_session_id)
append_event('password.changed', '', '"method":"change"')
return {1, out, appended}
`,
});

/**
 * disableUser / enableUser: the flag set; disabling ends every session (cause `disabled`).
 * `user.disabled` / `user.enabled` (only when it changed). Returns {0} for an unknown user,
 * else {1, ended ids, events}.
 */
export const SET_DISABLED = defineScript({
  name: 'tsSetDisabled',
  keys: ['userKey', ...EVENT_KEYS],
  args: { now: 'number', disabled: 'number', sessionKeyPrefix: 'string', revocationChannel: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
if redis.call('EXISTS', user_key) == 0 then return {0} end
local was = redis.call('HGET', user_key, 'd') == '1'
local out = {}
if disabled == 1 then
  redis.call('HSET', user_key, 'd', '1')
  out = end_sessions(user_key, session_key_prefix, revocation_channel, 'disabled', '')
  if not was then append_event('user.disabled', '', nil) end
else
  redis.call('HSET', user_key, 'd', '0')
  if was then append_event('user.enabled', '', nil) end
end
return {1, out, appended}
`,
});

/** setUserRoles: the roles (JSON) set, `user.roles_changed` with the new roles. Returns {0} or {1, events}. */
export const SET_ROLES = defineScript({
  name: 'tsSetRoles',
  keys: ['userKey', ...EVENT_KEYS],
  args: { now: 'number', roles: 'string', rolesDetail: 'string', ...APPENDING_ARGS },
  library: sessions,
  lua: `
if redis.call('EXISTS', user_key) == 0 then return {0} end
redis.call('HSET', user_key, 'r', roles)
append_event('user.roles_changed', '', '"roles":' .. cjson.encode(roles_detail))
return {1, appended}
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

/**
 * Writes a new user's record (its USER_FIELDS, from the arguments of the same names) and its
 * `user.signed_up` in the user's own list. The user exists once CLAIM_EMAIL points the email
 * at it, and that step appends the event to the audit stream; a record whose claim fails is
 * deleted with its stream.
 */
export const WRITE_USER = defineScript({
  name: 'tsWriteUser',
  keys: ['userKey', 'userEventsKey'],
  args: { e: 'string', h: 'string', r: 'string', c: 'string', v: 'string', d: 'string', ...EVENT_ARGS, ...USER_EVENTS_MAX_ARG },
  library: EVENTS_LUA,
  lua: `
redis.call('HSET', user_key, ${USER_FIELDS.map((field) => `'${field}', ${field}`).join(', ')})
push_user_event(user_events_key, user_events_max, event_fields('user.signed_up', '', nil))
return 1
`,
});

/**
 * Points the email at the user unless another account has it; {1, events} when claimed (with
 * `user.signed_up` appended to the audit stream of the email's slot: the same event, the same
 * id, as WRITE_USER put in the user's list), else {0}.
 */
export const CLAIM_EMAIL = defineScript({
  name: 'tsClaimEmail',
  keys: ['emailKey', 'auditKey'],
  args: { userId: 'string', ...EVENT_ARGS, ...AUDIT_MAX_ARG },
  library: EVENTS_LUA,
  lua: `
if redis.call('SET', email_key, user_id, 'NX') then
  local f = event_fields('user.signed_up', '', nil)
  xadd_event(audit_key, audit_max, f)
  appended[1] = f
  return {1, appended}
end
return {0}
`,
});

/** Frees an email's claim if it still points at the user (a deleted account, a changed address). Returns 1 when freed. */
export const RELEASE_EMAIL = defineScript({
  name: 'tsReleaseEmail',
  keys: ['emailKey'],
  args: { userId: 'string' },
  lua: `
if redis.call('GET', email_key) == user_id then
  redis.call('DEL', email_key)
  return 1
end
return 0
`,
});

/**
 * A page of a user's own list: up to `count` events older than the one numbered `below` (or
 * that one too, `inclusive` 1); `below` 0: from the newest.
 */
export const READ_USER_EVENTS = defineScript({
  name: 'tsUserEvents',
  keys: ['userEventsKey'],
  args: { below: 'number', inclusive: 'number', count: 'number' },
  lua: `
local start = 0
if below > 0 then
  local head = redis.call('LINDEX', user_events_key, 0)
  if not head then return {} end
  local seq = tonumber(string.match(head, '^(%d+)|')) or 0
  start = math.max(0, seq - below + 1 - inclusive)
end
return redis.call('LRANGE', user_events_key, start, start + count - 1)
`,
});

/** An event that records no change of its own (a failed login): to the audit stream and, with a user, the user's. */
export const APPEND_EVENT = defineScript({
  name: 'tsAppendEvent',
  keys: [...EVENT_KEYS],
  args: { eventType: 'string', sessionId: 'string', ...APPENDING_ARGS },
  library: EVENTS_LUA,
  lua: `
append_event(event_type, session_id, nil)
return appended
`,
});

/**
 * Claims entries of an audit stream for webhook delivery by `consumer`: first entries pending
 * in the group (any consumer's, a stopped instance's too) whose last attempt began at least
 * their backoff ago (webhookBackoff: base · 2^(attempts-1), capped, times the jitter, at least
 * min_idle_ms so an attempt still in flight is not taken over), then entries never delivered.
 * XCLAIM rechecks the idle time, so two instances never both take one entry. Creates the group
 * (from the stream's start, MKSTREAM) when it is missing. Returns {{attempt, id, fields}, …}.
 */
export const CLAIM_DELIVERIES = defineScript({
  name: 'tsClaimDeliveries',
  keys: ['streamKey'],
  args: {
    group: 'string',
    consumer: 'string',
    count: 'number',
    minIdleMs: 'number',
    baseDelayMs: 'number',
    maxDelayMs: 'number',
    jitter: 'number',
  },
  lua: `
local out = {}
local pending = redis.pcall('XPENDING', stream_key, group, 'IDLE', string.format('%d', min_idle_ms), '-', '+', string.format('%d', count * 4))
if type(pending) == 'table' and pending.err then
  if not string.find(pending.err, 'NOGROUP') then return redis.error_reply(pending.err) end
  redis.call('XGROUP', 'CREATE', stream_key, group, '0', 'MKSTREAM')
  pending = {}
end
for _, p in ipairs(pending) do
  if #out >= count then break end
  local attempts = tonumber(p[4])
  local delay = math.max(min_idle_ms, math.floor(math.min(max_delay_ms, base_delay_ms * 2 ^ math.max(0, attempts - 1)) * jitter))
  if tonumber(p[3]) >= delay then
    local claimed = redis.call('XCLAIM', stream_key, group, consumer, string.format('%d', delay), p[1])
    if claimed[1] then out[#out + 1] = {attempts + 1, claimed[1][1], claimed[1][2]} end
  end
end
if #out < count then
  local fresh = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', string.format('%d', count - #out), 'STREAMS', stream_key, '>')
  if fresh then
    for _, e in ipairs(fresh[1][2]) do out[#out + 1] = {1, e[1], e[2]} end
  end
end
return out
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
  REAUTHENTICATE_SESSION,
  DELETE_USER,
  ISSUE_MAIL_TOKEN,
  RESET_PASSWORD,
  VERIFY_EMAIL,
  PEEK_MAIL_TOKEN,
  CHANGE_EMAIL,
  CHANGE_PASSWORD,
  SET_DISABLED,
  SET_ROLES,
  INCREMENT_COUNTER,
  WRITE_USER,
  CLAIM_EMAIL,
  RELEASE_EMAIL,
  APPEND_EVENT,
  READ_USER_EVENTS,
  CLAIM_DELIVERIES,
] as const;
