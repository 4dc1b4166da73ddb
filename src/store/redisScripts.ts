import { SESSION_RECORD_VERSION } from './redisRecords.js';

/**
 * Lua scripts of the Redis store. Each touches the keys of one user only, which share the
 * hash tag `{u:<userId>}`, so every script stays inside one Redis Cluster slot.
 *
 * A session is one string (the record of redisRecords.ts, packed and unpacked here with Redis's
 * `struct` library) whose TTL is its idle expiry. The user's session index is the field `s` of
 * the user's hash: the ids of the user's sessions, comma-separated, oldest first. Sessions that
 * ended drop out of it when the user logs in, lists or revokes; a rotation never touches it.
 * A script reads and decodes everything it needs before its first write: Redis does not roll a
 * script back, so one that fails (an unreadable record) must fail having changed nothing. The
 * revoking scripts do not fail on an unreadable record: they end it like a live one.
 * Numbers go out through string.format('%d') so no millisecond value is printed as a float.
 *
 * Every script that writes takes, as its last argument, a deadline in Redis's own clock (ms):
 * a command that waited past the caller's timeout (a hung or paused server) must not write when
 * it finally runs, since the caller has already answered SERVICE_UNAVAILABLE. It then fails
 * with TESSERA_DEADLINE and changes nothing.
 */

const deadline = `
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > tonumber(ARGV[#ARGV]) then
  return redis.error_reply('TESSERA_DEADLINE the command ran after its caller gave up')
end
`;

/** The session record (layout in redisRecords.ts) and the user's session index. */
const sessions = `
local RECORD = '>Bi6i6i6i6I4Bc0Bc0Bc0Hc0Bc0'
local function unpack_session(raw)
  local ok, v, c, l, x, a, g, h, p, e, ua, ip, after = pcall(struct.unpack, RECORD, raw)
  if not ok or v ~= ${SESSION_RECORD_VERSION} or after ~= #raw + 1 then
    error({err = 'TESSERA_RECORD a session record this version cannot read'})
  end
  return {c = c, l = l, x = x, a = a, g = g, h = h, p = p, e = e, ua = ua, ip = ip}
end
local function is_live(s, now) return s.x > now and s.a > now end
-- For the revoking scripts: a record they cannot read is ended like a live one (ending a session
-- is always safe; a record of another version must not block a logout).
local function live_or_unreadable(raw, now)
  local ok, s = pcall(unpack_session, raw)
  return not ok or is_live(s, now)
end
local function pack_session(s)
  return struct.pack(RECORD, ${SESSION_RECORD_VERSION}, s.c, s.l, s.x, s.a, s.g,
    #s.h, s.h, #s.p, s.p, #s.e, s.e, #s.ua, s.ua, #s.ip, s.ip)
end
-- Writes the record with its TTL (the idle expiry) and returns it packed.
local function store_session(key, s, now)
  local packed = pack_session(s)
  redis.call('SET', key, packed, 'PX', string.format('%d', s.x - now))
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
 * KEYS: session, user. ARGV: now, idleMs, absoluteMs, secretHash, userAgent, ip, sessionId,
 * sessionKeyPrefix, maxSessions, revocationChannel. Drops ended sessions from the index, ends the
 * oldest ones (and publishes their ids) while the user has maxSessions, adds this one.
 * Returns the idle expiry.
 */
export const CREATE_SESSION = `${sessions}${deadline}
local now = tonumber(ARGV[1])
local a = now + tonumber(ARGV[3])
local x = math.min(now + tonumber(ARGV[2]), a)
local ids = {}
for _, id in ipairs(index_ids(KEYS[2])) do
  if id ~= ARGV[7] and redis.call('EXISTS', ARGV[8] .. id) == 1 then ids[#ids + 1] = id end
end
local evicted = {}
local room = tonumber(ARGV[9]) - 1
while #ids > room do
  local id = table.remove(ids, 1)
  redis.call('DEL', ARGV[8] .. id)
  evicted[#evicted + 1] = id
end
store_session(KEYS[1], {c = now, l = now, x = x, a = a, g = 0, h = ARGV[4], p = '', e = '', ua = ARGV[5], ip = ARGV[6]}, now)
ids[#ids + 1] = ARGV[7]
write_index(KEYS[2], ids)
if #evicted > 0 then redis.call('PUBLISH', ARGV[10], table.concat(evicted, ',')) end
return string.format('%d', x)
`;

/**
 * The check and the rotation in one atomic step. A replay revokes the session and publishes
 * its id on the revocation channel in the same step.
 * KEYS: session, user (whose record comes back with a rotation or grace answer, so a refresh
 * needs no second round trip). ARGV: now, generation, secretHash, nextSecretHash,
 * sealedSuccessor, idleMs, graceMs, sessionId, revocationChannel.
 * Returns {status[, session record, user's e, h, r, c]}.
 */
export const ROTATE_SESSION = `${sessions}${deadline}
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if not raw then return {'invalid'} end
local s = unpack_session(raw)
if now >= s.x or now >= s.a then
  redis.call('DEL', KEYS[1])
  unindex(KEYS[2], ARGV[8])
  return {'expired'}
end
local gen = tonumber(ARGV[2])
if gen == s.g then
  if ARGV[3] ~= s.h then return {'invalid'} end
  s.g = s.g + 1
  s.p = s.h
  s.h = ARGV[4]
  s.e = ARGV[5]
  s.l = now
  s.x = math.min(now + tonumber(ARGV[6]), s.a)
  local packed = store_session(KEYS[1], s, now)
  local u = redis.call('HMGET', KEYS[2], 'e', 'h', 'r', 'c')
  return {'rotated', packed, u[1], u[2], u[3], u[4]}
end
if gen == s.g - 1 then
  if ARGV[3] ~= s.p then return {'invalid'} end
  local grace = tonumber(ARGV[7])
  if grace > 0 and now - s.l <= grace then
    local u = redis.call('HMGET', KEYS[2], 'e', 'h', 'r', 'c')
    return {'grace', raw, u[1], u[2], u[3], u[4]}
  end
end
-- An older generation is a replay whatever secret it carries: a token reaches this script only
-- with a valid HMAC tag (refreshTokens.ts), so it was issued by us for this session.
if gen < s.g then
  redis.call('DEL', KEYS[1])
  unindex(KEYS[2], ARGV[8])
  redis.call('PUBLISH', ARGV[9], ARGV[8])
  return {'reused'}
end
return {'invalid'}
`;

/**
 * KEYS: user. ARGV: now, sessionKeyPrefix. Returns {id, record, ...} of the live sessions and
 * drops the ones that ended from the index.
 */
export const LIST_SESSIONS = `${sessions}${deadline}
local now = tonumber(ARGV[1])
local ids = index_ids(KEYS[1])
local kept, out = {}, {}
for _, id in ipairs(ids) do
  local raw = redis.call('GET', ARGV[2] .. id)
  if raw then
    kept[#kept + 1] = id
    if is_live(unpack_session(raw), now) then
      out[#out + 1] = id
      out[#out + 1] = raw
    end
  end
end
if #kept < #ids then write_index(KEYS[1], kept) end
return out
`;

/**
 * KEYS: session, user. ARGV: now, sessionId, revocationChannel.
 * Returns 1 when a live session was revoked (and its id published).
 */
export const REVOKE_SESSION = `${sessions}${deadline}
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local live = raw and live_or_unreadable(raw, now)
unindex(KEYS[2], ARGV[2])
if not raw then return 0 end
redis.call('DEL', KEYS[1])
if live then
  redis.call('PUBLISH', ARGV[3], ARGV[2])
  return 1
end
return 0
`;

/**
 * Revokes a session for the holder of its live refresh token or of its immediate predecessor.
 * KEYS: session, user. ARGV: now, sessionId, generation, secretHash, revocationChannel.
 * Returns 1 when it revoked (and published) the session.
 */
export const REVOKE_SESSION_WITH_TOKEN = `${sessions}${deadline}
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local s = unpack_session(raw)
if not is_live(s, now) then return 0 end
local gen = tonumber(ARGV[3])
local holder = (gen == s.g and ARGV[4] == s.h) or (gen == s.g - 1 and ARGV[4] == s.p)
if not holder then return 0 end
redis.call('DEL', KEYS[1])
unindex(KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[2])
return 1
`;

/** KEYS: user. ARGV: now, sessionKeyPrefix, revocationChannel. Returns (and publishes) the ids of the live sessions it revoked. */
export const REVOKE_ALL_SESSIONS = `${sessions}${deadline}
local now = tonumber(ARGV[1])
local found, out = {}, {}
for _, id in ipairs(index_ids(KEYS[1])) do
  local raw = redis.call('GET', ARGV[2] .. id)
  if raw then
    found[#found + 1] = ARGV[2] .. id
    if live_or_unreadable(raw, now) then out[#out + 1] = id end
  end
end
for _, key in ipairs(found) do redis.call('DEL', key) end
redis.call('HDEL', KEYS[1], 's')
if #out > 0 then redis.call('PUBLISH', ARGV[3], table.concat(out, ',')) end
return out
`;

/**
 * A fixed window that starts at the first increment, timed by the caller's clock.
 * KEYS: counter. ARGV: now, windowMs, by. Returns {count, msLeft}.
 */
export const INCREMENT_COUNTER = `${deadline}
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'n', 'end')
local n = tonumber(f[1]) or 0
local e = tonumber(f[2]) or 0
if e <= now then
  n = 0
  e = now + tonumber(ARGV[2])
end
n = math.max(0, n + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'n', string.format('%d', n), 'end', string.format('%d', e))
redis.call('PEXPIRE', KEYS[1], string.format('%d', e - now))
return {n, e - now}
`;

/** KEYS: user. ARGV: email, passwordHash, rolesJson, createdAt. Writes a new user's record. */
export const WRITE_USER = `${deadline}
redis.call('HSET', KEYS[1], 'e', ARGV[1], 'h', ARGV[2], 'r', ARGV[3], 'c', ARGV[4])
return 1
`;

/** KEYS: email. ARGV: userId. Points the email at the user unless another account has it; 1 when claimed. */
export const CLAIM_EMAIL = `${deadline}
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return 0
`;
