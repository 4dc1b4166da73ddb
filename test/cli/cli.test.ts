import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/common.js';
import { runCli, USAGE } from '../../src/cli/run.js';
import { readFirstLineOf } from '../../src/cli/stdin.js';
import { RedisStore } from '../../src/store/redisStore.js';
import { systemClock } from '../../src/clock.js';
import { newId } from '../../src/ids.js';
import { AccessTokenService } from '../../src/tokens/accessTokens.js';
import { generateSigningJwk, keySetJson, parseKeySet } from '../../src/tokens/keys.js';
import { RefreshTokenCodec } from '../../src/tokens/refreshTokens.js';
import { hashParameters, PasswordHasher } from '../../src/users/passwords.js';
import { createRedisStore, deleteKeys, inspector, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  stdinReads: number;
}

async function tessera(
  argv: string[],
  options: { env?: Record<string, string | undefined>; stdin?: string; cwd?: string } = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  let stdinReads = 0;
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    readStdin: async () => {
      stdinReads += 1;
      return options.stdin ?? '';
    },
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr, stdinReads };
}

/** One line on stderr, `tessera: …`. */
function expectOneErrorLine(run: Run, code = 1): string {
  expect(run.code).toBe(code);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^tessera: [^\n]+\n$/);
  return run.stderr;
}

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-cli-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('usage', () => {
  it('--help, -h, help and no arguments print the usage on stdout', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help'], ['keys', 'rotate', '--help']]) {
      const run = await tessera(argv);
      expect(run).toMatchObject({ code: 0, stdout: USAGE, stderr: '' });
    }
    expect(USAGE).toContain('users add --email E [--roles a,b]');
    expect(USAGE).toContain('keys generate [--alg EdDSA|ES256]');
    expect(USAGE).toContain('keys rotate --file F');
  });

  it('an unknown command prints the usage on stderr and exits 2', async () => {
    for (const argv of [['frobnicate'], ['keys'], ['keys', 'delete'], ['users', 'remove']]) {
      const run = await tessera(argv);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^tessera: unknown command /);
      expect(run.stderr).toContain(USAGE);
    }
  });

  it('an unknown option or a stray argument is one line and exit 2', async () => {
    expect(expectOneErrorLine(await tessera(['keys', 'generate', '--bits', '4096']), 2)).toContain('--bits');
    expect(expectOneErrorLine(await tessera(['keys', 'generate', 'extra']), 2)).toContain('extra');
    expect(expectOneErrorLine(await tessera(['keys', 'generate', '--alg']), 2)).toContain('--alg');
  });
});

describe('keys generate', () => {
  it('prints a JWK Set with one new EdDSA private key by default', async () => {
    const run = await tessera(['keys', 'generate']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const parsed = JSON.parse(run.stdout) as { keys: Record<string, unknown>[] };
    expect(parsed.keys).toHaveLength(1);
    expect(parsed.keys[0]).toMatchObject({ alg: 'EdDSA', kty: 'OKP', crv: 'Ed25519', use: 'sig' });
    expect(parsed.keys[0]?.d).toEqual(expect.any(String));
    const keySet = await parseKeySet(run.stdout, 'stdout');
    expect(keySet.keys).toHaveLength(1);
    expect(keySet.active.alg).toBe('EdDSA');
    expect(keySet.active.kid).toBe(parsed.keys[0]?.kid);
  });

  it('--alg ES256 gives a P-256 key', async () => {
    const run = await tessera(['keys', 'generate', '--alg', 'ES256']);
    expect(run.code).toBe(0);
    const keySet = await parseKeySet(run.stdout, 'stdout');
    expect(keySet.keys).toHaveLength(1);
    expect(keySet.active.alg).toBe('ES256');
    expect(keySet.active.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
  });

  it('each run makes a different key', async () => {
    const [a, b] = await Promise.all([tessera(['keys', 'generate']), tessera(['keys', 'generate'])]);
    expect(JSON.parse(a!.stdout).keys[0].kid).not.toBe(JSON.parse(b!.stdout).keys[0].kid);
  });

  it('refuses another algorithm', async () => {
    expect(expectOneErrorLine(await tessera(['keys', 'generate', '--alg', 'RS256']), 2)).toContain('EdDSA or ES256');
  });
});

describe('keys rotate', () => {
  async function keyFile(dir: string, name = 'signing-keys.json', mode = 0o600): Promise<{ path: string; kid: string }> {
    const jwk = await generateSigningJwk('EdDSA');
    const path = join(dir, name);
    await writeFile(path, keySetJson([jwk]), { mode });
    await chmod(path, mode); // whatever the umask
    return { path, kid: jwk.kid };
  }

  it('puts a new active key first, keeps the old one second, prints the new kid, and leaves the file 0600 as it was', async () => {
    const dir = await tempDir();
    const { path, kid: oldKid } = await keyFile(dir);
    const run = await tessera(['keys', 'rotate', '--file', path]);
    expect(run.code).toBe(0);
    const newKid = run.stdout.trim();
    expect(run.stdout).toBe(`${newKid}\n`);
    expect(newKid).not.toBe(oldKid);
    expect(run.stderr).toContain(newKid);
    expect(run.stderr).toBe(
      `${path}: new active EdDSA key ${newKid}, 1 older key(s) kept; restart every gateway that uses this file\n`,
    );

    const keySet = await parseKeySet(await readFile(path, 'utf8'), path);
    expect(keySet.keys.map((key) => key.kid)).toEqual([newKid, oldKid]);
    expect(keySet.active.alg).toBe('EdDSA');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    // No temporary file is left behind.
    expect(await readdir(dir)).toEqual(['signing-keys.json']);

    // Again, with ES256 and a path relative to the working directory: three keys, newest first.
    const again = await tessera(['keys', 'rotate', '--file', 'signing-keys.json', '--alg', 'ES256'], { cwd: dir });
    expect(again.code).toBe(0);
    const third = await parseKeySet(await readFile(path, 'utf8'), path);
    expect(third.keys.map((key) => key.kid)).toEqual([again.stdout.trim(), newKid, oldKid]);
    expect(third.active.alg).toBe('ES256');
    expect(again.stderr).toContain(`new active ES256 key ${again.stdout.trim()}, 2 older key(s) kept;`);
  });

  it("keeps the file's owner, group and mode: a key file of another user (the image's node, uid 1000), 0600 or 0640", async () => {
    // As root (the tests run as root in CI): the file belongs to someone else, as a key file
    // mounted into the Docker image must belong to its `node` user. Otherwise: to this user.
    const owner = process.getuid?.() === 0 ? { uid: 1000, gid: 1000 } : { uid: process.getuid!(), gid: process.getgid!() };
    for (const mode of [0o600, 0o640]) {
      const dir = await tempDir();
      const { path, kid } = await keyFile(dir, 'signing-keys.json', mode);
      await chown(path, owner.uid, owner.gid);
      const run = await tessera(['keys', 'rotate', '--file', path]);
      expect(run.code).toBe(0);
      const after = await stat(path);
      expect({ uid: after.uid, gid: after.gid, mode: after.mode & 0o7777 }).toEqual({ ...owner, mode });
      expect((await parseKeySet(await readFile(path, 'utf8'), path)).keys.map((k) => k.kid)).toEqual([run.stdout.trim(), kid]);
      // keys activate rewrites the file the same way.
      const activated = await tessera(['keys', 'activate', '--file', path, '--kid', kid]);
      expect(activated.code).toBe(0);
      const again = await stat(path);
      expect({ uid: again.uid, gid: again.gid, mode: again.mode & 0o7777 }).toEqual({ ...owner, mode });
      expect(await readdir(dir)).toEqual(['signing-keys.json']);
    }
  });

  it('through a symlink, replaces the file it points to and keeps the link', async () => {
    const dir = await tempDir();
    const { path, kid } = await keyFile(dir, 'real.json');
    const link = join(dir, 'link.json');
    await symlink(path, link);
    const run = await tessera(['keys', 'rotate', '--file', link]);
    expect(run.code).toBe(0);
    expect((await parseKeySet(await readFile(path, 'utf8'), path)).keys.map((k) => k.kid)).toEqual([
      run.stdout.trim(),
      kid,
    ]);
    expect((await stat(link)).isFile()).toBe(true);
  });

  it('a missing file, a bad file or no --file is one line, and the file is left as it was', async () => {
    const dir = await tempDir();
    const missing = expectOneErrorLine(await tessera(['keys', 'rotate', '--file', join(dir, 'nope.json')]));
    expect(missing).toContain('nope.json');
    expect(missing).toContain('no such file');

    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"keys": [{"kid": "x"');
    expect(expectOneErrorLine(await tessera(['keys', 'rotate', '--file', bad]))).toBe(
      `tessera: SIGNING_KEYS: ${bad}: not valid JSON\n`,
    );
    expect(await readFile(bad, 'utf8')).toBe('{"keys": [{"kid": "x"');

    const notASet = join(dir, 'public.json');
    const jwk = await generateSigningJwk();
    await writeFile(notASet, JSON.stringify({ keys: [{ ...jwk, d: undefined }] }));
    expect(expectOneErrorLine(await tessera(['keys', 'rotate', '--file', notASet]))).toContain('private key');

    expect(expectOneErrorLine(await tessera(['keys', 'rotate']), 2)).toContain('--file');
    expect(await readdir(dir)).toEqual(['bad.json', 'public.json']);
  });
});

describe('a staged rotation: keys rotate --stage, then keys activate', () => {
  const ISSUER = 'https://tessera.test';
  const services = async (path: string) => {
    const keys = await parseKeySet(await readFile(path, 'utf8'), path);
    const options = { keys, issuer: ISSUER, audience: 'tessera', clientId: 'tessera', ttlMs: 60_000, clockToleranceSec: 5, clock: systemClock };
    return { keys, access: new AccessTokenService(options), refresh: new RefreshTokenCodec(keys.refreshTagKeys) };
  };
  const token = { userId: newId(), sessionId: newId(), roles: ['user'] };

  it('stages a key that verifies but does not sign; activate makes it sign; instances on either file accept each other', async () => {
    const dir = await tempDir();
    const path = join(dir, 'signing-keys.json');
    const old = await generateSigningJwk('EdDSA');
    await writeFile(path, keySetJson([old]), { mode: 0o600 });
    const before = await services(path);

    const staged = await tessera(['keys', 'rotate', '--file', path, '--stage']);
    expect(staged.code).toBe(0);
    const kid = staged.stdout.trim();
    expect(staged.stderr).toBe(
      `${path}: staged EdDSA key ${kid} (verifies, does not sign yet), 1 older key(s) kept; restart every gateway that uses this file, then run: tessera keys activate --file ${path} --kid ${kid}\n`,
    );
    const afterStage = await services(path);
    // Still signing with the old key; the new one is in the JWKS.
    expect(afterStage.keys.active.kid).toBe(old.kid);
    expect(afterStage.access.jwks().keys.map((k) => k.kid)).toEqual([old.kid, kid]);

    const activated = await tessera(['keys', 'activate', '--file', path, '--kid', kid]);
    expect(activated.code).toBe(0);
    expect(activated.stderr).toBe(`${path}: ${kid} is now the active key (${old.kid} still verifies); restart every gateway that uses this file\n`);
    const afterActivate = await services(path);
    expect(afterActivate.keys.keys.map((k) => k.kid)).toEqual([kid, old.kid]);
    // Kept as it was.
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    // Mid-rollout: an instance on the staged file and one on the activated file take each
    // other's access and refresh tokens. (An instance on the original file would not take the
    // new key's: that is why the key is staged first.)
    const fromNew = await afterActivate.access.issue(token);
    const fromStaged = await afterStage.access.issue(token);
    expect((await afterStage.access.verify(fromNew.token)).ok).toBe(true);
    expect((await afterActivate.access.verify(fromStaged.token)).ok).toBe(true);
    expect((await before.access.verify(fromNew.token)).ok).toBe(false);
    const parts = { userId: token.userId, sessionId: token.sessionId, generation: 1, secret: afterActivate.refresh.newSecret() };
    expect(afterStage.refresh.decode(afterActivate.refresh.encode(parts))).toEqual(parts);
    expect(afterActivate.refresh.decode(afterStage.refresh.encode(parts))).toEqual(parts);
  });

  it('activate: an unknown kid or a missing --kid is one line and the file is left as it was; the active kid again changes nothing', async () => {
    const dir = await tempDir();
    const path = join(dir, 'signing-keys.json');
    const jwk = await generateSigningJwk('EdDSA');
    await writeFile(path, keySetJson([jwk]));
    const before = await readFile(path, 'utf8');
    expect(expectOneErrorLine(await tessera(['keys', 'activate', '--file', path, '--kid', 'nope']))).toBe(`tessera: ${path} has no key "nope"\n`);
    expect(expectOneErrorLine(await tessera(['keys', 'activate', '--file', path]), 2)).toContain('--kid');
    expect(await readFile(path, 'utf8')).toBe(before);
    const again = await tessera(['keys', 'activate', '--file', path, '--kid', jwk.kid]);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe(`${path}: ${jwk.kid} was already the active key\n`);
    expect((await parseKeySet(await readFile(path, 'utf8'), path)).keys.map((k) => k.kid)).toEqual([jwk.kid]);
  });
});

describe('users add (Redis)', () => {
  const prefix = uniquePrefix('cli');
  const env = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix };
  const redis = inspector();
  let store: RedisStore;

  beforeAll(async () => {
    store = await createRedisStore(prefix);
  });

  afterAll(async () => {
    await store.close();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });

  it('creates the user with an argon2id hash of the first stdin line and the default role, and prints its id', async () => {
    const run = await tessera(['users', 'add', '--email', '  Ada@Example.COM '], {
      env,
      stdin: 'correct horse battery\nsecond line ignored\n',
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    expect(run.stdout).toBe(`${id}\n`);
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);

    const user = await store.findUserByEmail('ada@example.com');
    expect(user).toMatchObject({ id, email: 'ada@example.com', roles: ['user'] });
    expect(hashParameters(user!.passwordHash!)?.algorithm).toBe('argon2id');
    const hasher = await PasswordHasher.create();
    expect(await hasher.verify(user!.passwordHash!, 'correct horse battery')).toBe(true);
    expect(Math.abs(user!.createdAt - Date.now())).toBeLessThan(60_000);
  });

  it('takes --roles, and a password ending in \\r\\n', async () => {
    const run = await tessera(['users', 'add', '--email', 'grace@example.com', '--roles', 'user, admin,admin'], {
      env,
      stdin: 'p4ssw0rd longer\r\n',
    });
    expect(run.code).toBe(0);
    const user = await store.findUserByEmail('grace@example.com');
    expect(user).toMatchObject({ id: run.stdout.trim(), roles: ['user', 'admin'] });
    expect(await (await PasswordHasher.create()).verify(user!.passwordHash, 'p4ssw0rd longer')).toBe(true);
  });

  it('a second add of the same email (in any case) fails and changes nothing', async () => {
    const first = await tessera(['users', 'add', '--email', 'linus@example.com'], { env, stdin: 'first password' });
    expect(first.code).toBe(0);
    const second = await tessera(['users', 'add', '--email', 'LINUS@example.com'], { env, stdin: 'other password' });
    expect(expectOneErrorLine(second)).toBe('tessera: a user with the email linus@example.com already exists\n');
    expect((await store.findUserByEmail('linus@example.com'))?.id).toBe(first.stdout.trim());
  });

  it('refuses a short, an empty or a too long password, without writing anything', async () => {
    const short = await tessera(['users', 'add', '--email', 'short@example.com'], { env, stdin: 'seven77\n' });
    expect(expectOneErrorLine(short)).toContain('at least 8 bytes');
    const empty = await tessera(['users', 'add', '--email', 'short@example.com'], { env, stdin: '\nsecond line\n' });
    expect(expectOneErrorLine(empty)).toContain('no password');
    const none = await tessera(['users', 'add', '--email', 'short@example.com'], { env, stdin: '' });
    expect(expectOneErrorLine(none)).toContain('no password');
    const long = await tessera(['users', 'add', '--email', 'short@example.com'], { env, stdin: 'x'.repeat(1025) });
    expect(expectOneErrorLine(long)).toContain('at most 1024 bytes');
    expect(await store.findUserByEmail('short@example.com')).toBeNull();
  });

  it('refuses a bad email or bad roles before reading the password', async () => {
    const email = await tessera(['users', 'add', '--email', 'not-an-email'], { env, stdin: 'password123' });
    expect(expectOneErrorLine(email)).toContain('not a valid email address');
    expect(email.stdinReads).toBe(0);
    const roles = await tessera(['users', 'add', '--email', 'r@example.com', '--roles', 'user,has space'], {
      env,
      stdin: 'password123',
    });
    expect(expectOneErrorLine(roles, 2)).toContain('"has space"');
    expect(roles.stdinReads).toBe(0);
    expect(expectOneErrorLine(await tessera(['users', 'add'], { env, stdin: 'password123' }), 2)).toContain('--email');
  });

  it('without REDIS_URL, refuses with one line naming REDIS_URL, before reading the password', async () => {
    const run = await tessera(['users', 'add', '--email', 'nobody@example.com'], { env: {}, stdin: 'password123' });
    expect(expectOneErrorLine(run)).toContain('REDIS_URL');
    expect(run.stdinReads).toBe(0);
  });

  it('prints a ConfigError as it is', async () => {
    const run = await tessera(['users', 'add', '--email', 'c@example.com'], {
      env: { REDIS_URL: 'http://127.0.0.1:6379' },
      stdin: 'password123',
    });
    expect(expectOneErrorLine(run)).toBe('tessera: REDIS_URL must start with redis:// or rediss://\n');
  });

  it('a Redis that cannot be reached is one line that does not show the URL', async () => {
    const run = await tessera(['users', 'add', '--email', 'down@example.com'], {
      env: { REDIS_URL: 'redis://:s3cret@127.0.0.1:1', REDIS_KEY_PREFIX: prefix },
      stdin: 'password123',
    });
    const line = expectOneErrorLine(run);
    expect(line).toContain('cannot connect to Redis (REDIS_URL)');
    expect(line).not.toContain('s3cret');
  });
});

describe('reading standard input', () => {
  it('stops at the first line end, and reads to the end when there is none', async () => {
    const stream = new PassThrough();
    const read = readFirstLineOf(stream);
    stream.write('pass');
    stream.write('word\nmore');
    expect(await read).toMatch(/^password\n/);

    const ended = new PassThrough();
    ended.end('no newline');
    expect(await readFirstLineOf(ended)).toBe('no newline');
  });

  it('keeps multi-byte characters split across chunks whole', async () => {
    const stream = new PassThrough();
    const bytes = Buffer.from('pässwörd\n', 'utf8');
    const read = readFirstLineOf(stream);
    stream.write(bytes.subarray(0, 2));
    stream.end(bytes.subarray(2));
    expect(await read).toBe('pässwörd\n');
  });
});
