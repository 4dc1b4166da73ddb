import { afterAll, describe, expect, it } from 'vitest';
import { decodeRecord, decodeSession, luaRecordCodec, SESSION_RECORD, SESSION_RECORD_V1, structFormat } from '../../src/store/redisRecords.js';
import { defineScript, luaName } from '../../src/store/redisScript.js';
import { inspector } from '../helpers/redis.js';

const redis = inspector();
afterAll(() => redis.disconnect());

/** EVAL with the reply's strings as Buffers (packed records are binary). */
const evalBuffer = (lua: string, numberOfKeys: number, ...args: (string | number | Buffer)[]) =>
  redis.callBuffer('EVAL', lua, numberOfKeys, ...args);

/** Runs a defined script as the store would (KEYS then ARGV from named values, the deadline last). */
async function run(script: ReturnType<typeof defineScript>, input: Record<string, string | number | Buffer>, deadline = Date.now() + 60_000) {
  const argv = script.argv(input as never, deadline);
  return evalBuffer(script.lua, script.numberOfKeys, ...argv);
}

describe('defineScript: keys and arguments declared once, by name', () => {
  const echo = defineScript({
    name: 'tsEcho',
    keys: ['firstKey', 'secondKey'],
    args: { now: 'number', sessionId: 'string', maxSessions: 'number' },
    lua: `return {first_key, second_key, now + 1, session_id, max_sessions * 2}`,
  });

  it('builds KEYS and ARGV in the declared order from an object, whatever its own order, the deadline last', () => {
    expect(echo.numberOfKeys).toBe(2);
    const argv = echo.argv({ maxSessions: 3, sessionId: 's-1', secondKey: 'k2', now: 10, firstKey: 'k1' }, 99);
    expect(argv).toEqual(['k1', 'k2', 10, 's-1', 3, 99]);
  });

  it('the Lua side reads each by its name (snake_case), numbers as numbers', async () => {
    const reply = (await run(echo, { firstKey: 'k1', secondKey: 'k2', now: 41, sessionId: 's-1', maxSessions: 3 })) as unknown[];
    expect(reply.map((v) => (Buffer.isBuffer(v) ? v.toString() : v))).toEqual(['k1', 'k2', 42, 's-1', 6]);
  });

  it('a script run after its deadline writes nothing and says TESSERA_DEADLINE', async () => {
    const write = defineScript({ name: 'tsWrite', keys: ['key'], args: { value: 'string' }, lua: `redis.call('SET', key, value) return 1` });
    const key = `tessera-script-test-${Date.now()}-${Math.random()}`;
    await expect(run(write, { key, value: 'late' }, Date.now() - 1_000)).rejects.toThrow(/TESSERA_DEADLINE/);
    expect(await redis.exists(key)).toBe(0);
    await run(write, { key, value: 'in time' });
    expect(await redis.get(key)).toBe('in time');
    await redis.del(key);
  });

  it('refuses names Lua cannot hold, or the same name twice', () => {
    expect(luaName('revocationChannel')).toBe('revocation_channel');
    expect(() => luaName('end')).toThrow(/Lua name/);
    expect(() => luaName('deadline')).toThrow(/Lua name/);
    expect(() => luaName('bad-name')).toThrow(/Lua name/);
    expect(() => defineScript({ name: 'tsTwice', keys: ['userId'], args: { userId: 'string' }, lua: 'return 1' })).toThrow(/twice/);
  });
});

describe('the session record: one field list, both sides derived from it', () => {
  it('keeps the layout stored sessions have (a change needs a new version)', () => {
    expect(SESSION_RECORD.version).toBe(2);
    expect(structFormat(SESSION_RECORD)).toBe('>Bi6i6i6i6I4Bc0Bc0Bc0Hc0Bc0i6Bc0Bc0');
    expect(structFormat(SESSION_RECORD_V1)).toBe('>Bi6i6i6i6I4Bc0Bc0Bc0Hc0Bc0');
  });

  const values = {
    createdAt: 1_767_225_600_000,
    lastRefreshedAt: 1_767_225_700_000,
    expiresAt: 1_769_817_700_000,
    absoluteExpiresAt: 1_774_999_999_999,
    generation: 7,
    secretHash: 'h'.repeat(32),
    previousSecretHash: 'p'.repeat(17),
    sealedSuccessor: 'e'.repeat(60),
    userAgent: 'u'.repeat(300),
    ipAddress: '203.0.113.9',
    authTime: 1_767_225_650_000,
    amr: 'pwd,otp,mfa',
    acr: 'aal2',
  };
  const luaTable = `{${Object.entries(values)
    .map(([name, value]) => `${name} = ${typeof value === 'number' ? value : `'${value}'`}`)
    .join(', ')}}`;

  it('what the Lua side packs, the TypeScript side decodes field for field', async () => {
    const packed = (await evalBuffer(`${luaRecordCodec('session', SESSION_RECORD)}\nreturn pack_session(${luaTable})`, 0)) as Buffer;
    const decoded = decodeRecord(SESSION_RECORD, packed);
    for (const [name, value] of Object.entries(values)) {
      const got = decoded[name as keyof typeof decoded];
      expect(Buffer.isBuffer(got) ? got.toString() : got, name).toEqual(value);
    }
    expect(decodeSession('user-1', 'session-1', packed).session).toMatchObject({
      id: 'session-1',
      userId: 'user-1',
      createdAt: values.createdAt,
      expiresAt: values.expiresAt,
      generation: 7,
      ipAddress: values.ipAddress,
    });
  });

  it('and the Lua side unpacks what it packed; a record of another version is refused on both sides', async () => {
    const roundTrip = `${luaRecordCodec('session', SESSION_RECORD)}
local s = unpack_session(pack_session(${luaTable}))
return {s.createdAt, s.generation, s.sealedSuccessor, s.ipAddress}`;
    const reply = ((await evalBuffer(roundTrip, 0)) as unknown[]).map((v) => (Buffer.isBuffer(v) ? v.toString() : v));
    expect(reply).toEqual([values.createdAt, 7, values.sealedSuccessor, values.ipAddress]);

    const packed = (await evalBuffer(`${luaRecordCodec('session', SESSION_RECORD)}\nreturn pack_session(${luaTable})`, 0)) as Buffer;
    const other = Buffer.from(packed);
    other[0] = 3;
    expect(() => decodeRecord(SESSION_RECORD, other)).toThrow(/version 3/);
    await expect(
      evalBuffer(`${luaRecordCodec('session', SESSION_RECORD)}\nreturn unpack_session(ARGV[1])`, 0, other),
    ).rejects.toThrow(/TESSERA_RECORD/);
    expect(() => decodeRecord(SESSION_RECORD, packed.subarray(0, packed.length - 1))).toThrow();
  });

  it('a version 1 record (before auth_time, amr, acr) is read on both sides as a password sign-in at its creation', async () => {
    const v1Table = `{${Object.entries(values)
      .filter(([name]) => SESSION_RECORD_V1.fields.some(([field]) => field === name))
      .map(([name, value]) => `${name} = ${typeof value === 'number' ? value : `'${value}'`}`)
      .join(', ')}}`;
    const v1 = (await evalBuffer(`${luaRecordCodec('old', SESSION_RECORD_V1)}\nreturn pack_old(${v1Table})`, 0)) as Buffer;
    expect(v1[0]).toBe(1);
    expect(decodeSession('user-1', 'session-1', v1).session).toMatchObject({
      createdAt: values.createdAt,
      generation: 7,
      authTime: values.createdAt,
      amr: ['pwd'],
      acr: 'aal1',
    });
    const upgraded = `${luaRecordCodec('session', SESSION_RECORD)}
local s = unpack_session(ARGV[1])
local again = unpack_session(pack_session(s))
return {s.authTime, s.amr, s.acr, s.generation, string.byte(pack_session(s), 1), again.ipAddress}`;
    const reply = ((await evalBuffer(upgraded, 0, v1)) as unknown[]).map((v) => (Buffer.isBuffer(v) ? v.toString() : v));
    expect(reply).toEqual([values.createdAt, 'pwd', 'aal1', 7, 2, values.ipAddress]);
  });
});
