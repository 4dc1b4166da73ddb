import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/common.js';
import { runCli } from '../../src/cli/run.js';
import { NO_ORIGIN } from '../../src/events/types.js';
import { newId } from '../../src/ids.js';
import type { RedisStore } from '../../src/store/redisStore.js';
import { createRedisStore, deleteKeys, inspector, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

/* `tessera users list|disable|enable|delete|roles` and `tessera sessions list|revoke` (docs/contract.md section 7), on Redis. */

async function tessera(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    cwd: process.cwd(),
    readStdin: async () => '',
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

describe('account administration from the CLI (Redis)', () => {
  const prefix = uniquePrefix('cli-accounts');
  const env = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix };
  const redis = inspector();
  let store: RedisStore;
  const T = Date.now();

  const user = async (email: string, roles = ['user']) => {
    const record = { id: newId(), email, passwordHash: '$argon2id$fake', roles, createdAt: T, emailVerified: false, disabled: false };
    await store.createUser(record, NO_ORIGIN);
    return record;
  };
  const session = async (userId: string, id = newId()) => {
    await store.createSession({
      userId,
      sessionId: id,
      secretHash: 'h',
      now: Date.now(),
      idleTtlMs: 3_600_000,
      absoluteTtlMs: 7_200_000,
      userAgent: 'CLI test',
      ipAddress: '198.51.100.4',
      maxSessions: 10,
      origin: NO_ORIGIN,
      auth: { authTime: Date.now(), amr: ['pwd'], acr: 'aal1' },
    });
    return id;
  };

  beforeAll(async () => {
    store = await createRedisStore(prefix);
  });
  afterAll(async () => {
    await store.close();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });

  it('users list: every user in email order, with an email prefix', async () => {
    const b = await user('bea@cli.example');
    const a = await user('abe@cli.example', ['user', 'admin']);
    await user('zed@other.example');
    const all = await tessera(['users', 'list'], env);
    expect(all.code).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('\t')[1])).toEqual(['abe@cli.example', 'bea@cli.example', 'zed@other.example']);
    expect(lines[0]).toBe(`${a.id}\tabe@cli.example\tuser,admin\tunverified`);
    const some = await tessera(['users', 'list', '--email-prefix', 'B'], env);
    expect(some.stdout).toBe(`${b.id}\tbea@cli.example\tuser\tunverified\n`);
  });

  it('users disable ends every session; enable; roles; delete frees the email', async () => {
    const u = await user('dora@cli.example');
    const s1 = await session(u.id);
    await session(u.id);
    const disabled = await tessera(['users', 'disable', '--email', 'Dora@CLI.example'], env);
    expect(disabled).toMatchObject({ code: 0, stdout: `${u.id}\tdora@cli.example\tuser\tunverified,disabled\n` });
    expect(await store.getSessions([{ userId: u.id, sessionId: s1 }], Date.now())).toEqual([null]);
    expect((await store.getUsers([u.id]))[0]?.disabled).toBe(true);
    expect((await tessera(['users', 'enable', '--email', 'dora@cli.example'], env)).code).toBe(0);
    expect((await store.getUsers([u.id]))[0]?.disabled).toBe(false);
    const roles = await tessera(['users', 'roles', '--email', 'dora@cli.example', '--set', 'user,editor'], env);
    expect(roles.stdout).toContain('\tuser,editor\t');
    expect((await store.getUsers([u.id]))[0]?.roles).toEqual(['user', 'editor']);
    const deleted = await tessera(['users', 'delete', '--email', 'dora@cli.example'], env);
    expect(deleted).toMatchObject({ code: 0, stdout: `deleted ${u.id} dora@cli.example\n` });
    expect(await store.findUserByEmail('dora@cli.example')).toBeNull();
  });

  it('sessions list and revoke (one, then all)', async () => {
    const u = await user('sid@cli.example');
    const first = await session(u.id);
    const second = await session(u.id);
    const list = await tessera(['sessions', 'list', '--email', 'sid@cli.example'], env);
    expect(list.code).toBe(0);
    const ids = list.stdout.trim().split('\n').map((l) => l.split('\t')[0]);
    expect(ids.sort()).toEqual([first, second].sort());
    expect(list.stdout).toContain('\t198.51.100.4\tCLI test\n');
    expect(await tessera(['sessions', 'revoke', '--email', 'sid@cli.example', '--id', first], env)).toMatchObject({ code: 0, stdout: '1 session(s) ended\n' });
    expect(await tessera(['sessions', 'revoke', '--email', 'sid@cli.example', '--id', first], env)).toMatchObject({ code: 1 });
    expect(await tessera(['sessions', 'revoke', '--email', 'sid@cli.example'], env)).toMatchObject({ code: 0, stdout: '1 session(s) ended\n' });
    expect(await store.listSessions(u.id, Date.now())).toEqual([]);
  });

  it('a session id that starts with a dash (one in 64 do) is taken as the value of --id', async () => {
    const u = await user('dash@cli.example');
    const dashed = await session(u.id, `-${newId().slice(1)}`);
    const other = await session(u.id);
    expect(await tessera(['sessions', 'revoke', '--email', 'dash@cli.example', '--id', dashed], env)).toMatchObject({ code: 0, stdout: '1 session(s) ended\n' });
    expect((await store.listSessions(u.id, Date.now())).map((s) => s.id)).toEqual([other]);
  });

  it('errors are one line: an unknown email, missing options, no Redis', async () => {
    const unknown = await tessera(['users', 'disable', '--email', 'nobody@cli.example'], env);
    expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: 'tessera: no user has the email nobody@cli.example\n' });
    expect((await tessera(['users', 'roles', '--email', 'x@cli.example'], env)).code).toBe(2);
    expect((await tessera(['sessions', 'list'], env)).code).toBe(2);
    const noRedis = await tessera(['users', 'list'], {});
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr).toMatch(/^tessera: REDIS_URL is not set[^\n]*\n$/);
  });
});
