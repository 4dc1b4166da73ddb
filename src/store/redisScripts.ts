/**
 * Lua scripts of the Redis store. Each touches the keys of one user only, which share the
 * hash tag `{u:<userId>}`, so every script stays inside one Redis Cluster slot.
 *
 * Session hash fields: c created, l last refresh, x idle expiry, a absolute end (all epoch ms),
 * g generation of the live refresh token, h hash of its secret, p hash of its predecessor's
 * secret, r when the predecessor was rotated, e the live secret sealed under the predecessor's,
 * ua user agent, ip address ('' for none).
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

const extendIndexTtl = `
local function extend_index_ttl(index, expires_at, now)
  local want = expires_at - now
  local have = redis.call('PTTL', index)
  if have < want then redis.call('PEXPIRE', index, string.format('%d', want)) end
end
`;

/** KEYS: session, index. ARGV: now, idleMs, absoluteMs, secretHash, userAgent, ip, sessionId. */
export const CREATE_SESSION = `${extendIndexTtl}${deadline}
local now = tonumber(ARGV[1])
local a = now + tonumber(ARGV[3])
local x = math.min(now + tonumber(ARGV[2]), a)
local xs = string.format('%d', x)
redis.call('HSET', KEYS[1], 'c', ARGV[1], 'l', ARGV[1], 'x', xs, 'a', string.format('%d', a),
  'g', '0', 'h', ARGV[4], 'ua', ARGV[5], 'ip', ARGV[6])
redis.call('PEXPIRE', KEYS[1], string.format('%d', x - now))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZADD', KEYS[2], xs, ARGV[7])
extend_index_ttl(KEYS[2], x, now)
return xs
`;

/**
 * The check and the rotation in one atomic step. A replay revokes the session and publishes
 * its id on the revocation channel in the same step.
 * KEYS: session, index, user (whose record comes back with a rotation or grace answer, so a
 * refresh needs no second round trip). ARGV: now, generation, secretHash, nextSecretHash, sealedSuccessor,
 * idleMs, graceMs, sessionId, revocationChannel.
 * Returns {status, created, last, expires, absoluteEnd, ua, ip, generation[, sealed]}.
 */
export const ROTATE_SESSION = `${extendIndexTtl}${deadline}
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'g', 'h', 'p', 'r', 'x', 'a', 'e', 'c', 'l', 'ua', 'ip')
if not f[1] then return {'invalid'} end
local g = tonumber(f[1])
local x = tonumber(f[5])
local a = tonumber(f[6])
if now >= x or now >= a then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[8])
  return {'expired'}
end
local gen = tonumber(ARGV[2])
if gen == g then
  if ARGV[3] ~= f[2] then return {'invalid'} end
  local nx = math.min(now + tonumber(ARGV[6]), a)
  local ns = string.format('%d', now)
  local nxs = string.format('%d', nx)
  local ng = string.format('%d', g + 1)
  redis.call('HSET', KEYS[1], 'g', ng, 'h', ARGV[4], 'p', ARGV[3], 'r', ns, 'e', ARGV[5], 'l', ns, 'x', nxs)
  redis.call('PEXPIRE', KEYS[1], string.format('%d', nx - now))
  redis.call('ZADD', KEYS[2], nxs, ARGV[8])
  extend_index_ttl(KEYS[2], nx, now)
  local u = redis.call('HMGET', KEYS[3], 'e', 'h', 'r', 'c')
  return {'rotated', f[8], ns, nxs, f[6], f[10], f[11], ng, u[1], u[2], u[3], u[4]}
end
if gen == g - 1 then
  if ARGV[3] ~= f[3] then return {'invalid'} end
  local grace = tonumber(ARGV[7])
  if grace > 0 and now - tonumber(f[4]) <= grace then
    local u = redis.call('HMGET', KEYS[3], 'e', 'h', 'r', 'c')
    return {'grace', f[8], f[9], f[5], f[6], f[10], f[11], f[1], f[7], u[1], u[2], u[3], u[4]}
  end
end
if gen < g then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[8])
  redis.call('PUBLISH', ARGV[9], ARGV[8])
  return {'reused'}
end
return {'invalid'}
`;

/** KEYS: index. ARGV: now, sessionKeyPrefix. Returns {id, c, l, x, a, ua, ip, g, ...} of live sessions. */
export const LIST_SESSIONS = `${deadline}
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[2] .. id, 'c', 'l', 'x', 'a', 'ua', 'ip', 'g')
  if f[1] and tonumber(f[3]) > now and tonumber(f[4]) > now then
    table.insert(out, id)
    for i = 1, 7 do table.insert(out, f[i]) end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`;

/**
 * KEYS: session, index. ARGV: now, sessionId, revocationChannel.
 * Returns 1 when a live session was revoked (and its id published).
 */
export const REVOKE_SESSION = `${deadline}
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'x', 'a')
redis.call('ZREM', KEYS[2], ARGV[2])
if not f[1] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(f[1]) > now and tonumber(f[2]) > now then
  redis.call('PUBLISH', ARGV[3], ARGV[2])
  return 1
end
return 0
`;

/**
 * Revokes a session for the holder of its live refresh token or of its immediate predecessor.
 * KEYS: session, index. ARGV: now, sessionId, generation, secretHash, revocationChannel.
 * Returns 1 when it revoked (and published) the session.
 */
export const REVOKE_SESSION_WITH_TOKEN = `${deadline}
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'g', 'h', 'p', 'x', 'a')
if not f[1] or tonumber(f[4]) <= now or tonumber(f[5]) <= now then return 0 end
local g = tonumber(f[1])
local gen = tonumber(ARGV[3])
local holder = (gen == g and ARGV[4] == f[2]) or (gen == g - 1 and ARGV[4] == f[3])
if not holder then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[2])
return 1
`;

/** KEYS: index. ARGV: now, sessionKeyPrefix, revocationChannel. Returns (and publishes) the ids of the live sessions it revoked. */
export const REVOKE_ALL_SESSIONS = `${deadline}
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local f = redis.call('HMGET', key, 'x', 'a')
  if f[1] then
    redis.call('DEL', key)
    if tonumber(f[1]) > now and tonumber(f[2]) > now then table.insert(out, id) end
  end
end
redis.call('DEL', KEYS[1])
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
