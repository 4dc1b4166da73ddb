import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { buildGateway } from '../helpers/builtGateway.js';
import { TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { createTestServer, LOGIN, uniqueEmail } from '../helpers/testServer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

type Dict = Record<string, unknown>;
const isDict = (value: unknown): value is Dict => typeof value === 'object' && value !== null && !Array.isArray(value);
function dict(value: unknown, what: string): Dict {
  if (!isDict(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

const compose = dict(parse(read('docker-compose.yml')), 'docker-compose.yml');
const services = dict(compose.services, 'services');
const redis = dict(services.redis, 'services.redis');
const gateway = dict(services.gateway, 'services.gateway');

/** `command:` / `test:` as one string, whether written as a list or a string. */
function words(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(' ') : String(value ?? '');
}

/** `environment:` as a map, whether written as a map or a KEY=VALUE list. */
function environment(service: Dict): Record<string, string> {
  const env = service.environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const [key = '', ...rest] = String(entry).split('=');
        return [key, rest.join('=')];
      }),
    );
  }
  return Object.fromEntries(Object.entries(dict(env ?? {}, 'environment')).map(([k, v]) => [k, String(v)]));
}

/** Volume mounts as { source, target, readOnly }, from short or long syntax. */
function mounts(service: Dict): { source: string; target: string; readOnly: boolean }[] {
  const volumes = Array.isArray(service.volumes) ? service.volumes : [];
  return volumes.map((volume) => {
    if (typeof volume === 'string') {
      const [source = '', target = '', mode = ''] = volume.split(':');
      return { source, target, readOnly: mode.split(',').includes('ro') };
    }
    const long = dict(volume, 'volume');
    return { source: String(long.source ?? ''), target: String(long.target ?? ''), readOnly: long.read_only === true };
  });
}

/** Files mounted by `secrets:`: container path → host file. */
function secretFiles(service: Dict): Map<string, string> {
  const declared = dict(compose.secrets ?? {}, 'secrets');
  const files = new Map<string, string>();
  for (const entry of Array.isArray(service.secrets) ? service.secrets : []) {
    const source = typeof entry === 'string' ? entry : String(dict(entry, 'secret').source);
    const target = typeof entry === 'string' ? source : String(dict(entry, 'secret').target ?? source);
    const file = dict(declared[source], `secrets.${source}`).file;
    if (typeof file === 'string') files.set(path.posix.resolve('/run/secrets', target), file);
  }
  return files;
}

describe('docker-compose.yml: redis', () => {
  it('runs Redis 7 with AOF persistence', () => {
    expect(String(redis.image)).toMatch(/^redis:7(?:[.-]|$)/);
    expect(words(redis.command)).toMatch(/--appendonly yes/);
    expect(words(redis.command)).toMatch(/--appendfsync (everysec|always)/);
  });

  it('keeps /data in a named volume declared at top level', () => {
    const data = mounts(redis).find((mount) => mount.target === '/data');
    expect(data).toBeDefined();
    expect(data?.source).toMatch(/^[a-zA-Z0-9][\w.-]*$/); // a name, not a host path
    expect(Object.keys(dict(compose.volumes, 'volumes'))).toContain(data?.source);
  });

  it('has a health check that pings Redis', () => {
    const test = words(dict(redis.healthcheck, 'redis.healthcheck').test);
    expect(test).toContain('redis-cli');
    expect(test).toContain('ping');
  });

  it('is not published on the host', () => {
    expect(redis.ports).toBeUndefined();
  });
});

describe('docker-compose.yml: gateway', () => {
  const env = environment(gateway);

  it('builds from the project root, where the Dockerfile is', () => {
    const build = gateway.build;
    const context = typeof build === 'string' ? build : String(dict(build, 'build').context);
    const dockerfile = isDict(build) && typeof build.dockerfile === 'string' ? build.dockerfile : 'Dockerfile';
    expect(path.resolve(ROOT, context)).toBe(ROOT);
    expect(existsSync(path.join(ROOT, context, dockerfile))).toBe(true);
  });

  it('publishes port 4000', () => {
    expect((gateway.ports as unknown[]).map(String)).toContain('4000:4000');
  });

  it('runs in production against the redis service', () => {
    expect(env.NODE_ENV).toBe('production');
    const url = new URL(env.REDIS_URL ?? '');
    expect(url.protocol).toMatch(/^rediss?:$/);
    expect(url.hostname).toBe('redis');
    expect(Object.keys(services)).toContain(url.hostname);
  });

  it('reads its signing keys from a file mounted read-only, not baked into the image', () => {
    const keys = env.SIGNING_KEYS ?? '';
    expect(path.posix.isAbsolute(keys)).toBe(true);
    const secret = secretFiles(gateway).get(keys);
    const bind = mounts(gateway).find((mount) => mount.target === keys && mount.readOnly);
    const hostFile = secret ?? bind?.source;
    expect(hostFile, `${keys} must be a compose secret or a read-only bind mount`).toBeDefined();
    expect(path.relative(path.join(ROOT, 'secrets'), path.resolve(ROOT, hostFile ?? ''))).not.toMatch(/^\.\./);
  });

  it('keeps the key file out of git and out of the build context', () => {
    expect(read('.gitignore').split('\n')).toContain('secrets/*.json');
    expect(read('.dockerignore').split('\n').map((line) => line.trim())).toContain('secrets');
    expect(existsSync(path.join(ROOT, 'secrets/README.md'))).toBe(true);
  });

  it('has a health check on /healthz and /readyz', () => {
    const test = words(dict(gateway.healthcheck, 'gateway.healthcheck').test);
    expect(test).toContain('/healthz');
    expect(test).toContain('readyz');
    expect(test).not.toMatch(/\bcurl\b|\bwget\b/); // neither is in the slim image
  });

  it('sends mail over SMTP to the relay service (mailpit, a mail catcher), and the settings load as production loads them', () => {
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, withDefaults(v)]));
    const mail = loadConfig(resolved).mail;
    expect(mail.transport).toEqual({ kind: 'smtp', smtp: { url: 'smtp://mailpit:1025', tls: 'off' } });
    const relay = dict(services.mailpit, 'services.mailpit');
    expect(String(relay.image)).toMatch(/^axllent\/mailpit:v\d/);
    // Its web inbox only on this machine; SMTP only on the compose network.
    expect((relay.ports as unknown[]).map(String)).toEqual(['127.0.0.1:8025:8025']);
    for (const link of Object.values(mail.links)) expect(link).toContain('{token}');
  });

  it('starts once Redis is healthy, and restarts', () => {
    const dependsOn = dict(gateway.depends_on, 'gateway.depends_on');
    expect(dict(dependsOn.redis, 'depends_on.redis').condition).toBe('service_healthy');
    expect(gateway.restart).toBe('unless-stopped');
  });
});

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  return lines
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

describe('Dockerfile', () => {
  const all = instructions(read('Dockerfile'));
  const lastFrom = all.map((i) => i.keyword).lastIndexOf('FROM');
  const final = all.slice(lastFrom);
  const of = (keyword: string, list = final) => list.filter((i) => i.keyword === keyword).map((i) => i.args);

  it('builds in stages on node:24-bookworm-slim (an LTS line)', () => {
    const froms = of('FROM', all);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^node:24-bookworm-slim\b/);
  });

  it('installs production dependencies with optional ones (argon2 binary)', () => {
    expect(read('Dockerfile')).not.toContain('--omit=optional');
    expect(of('RUN').join('\n')).toMatch(/npm ci --omit=dev/);
  });

  it('ships dist/ and schema/, and neither secrets nor dev keys', () => {
    const copies = [...of('COPY'), ...of('ADD')];
    expect(copies.some((args) => /\bdist\b/.test(args))).toBe(true);
    expect(copies.some((args) => /\bschema\b/.test(args))).toBe(true);
    for (const args of [...of('COPY', all), ...of('ADD', all)]) {
      expect(args).not.toMatch(/secrets|\.tessera/);
      expect(args.split(/\s+/)[0]).not.toBe('.'); // a whole-context copy would pull them in
    }
  });

  it('runs as a non-root user in production mode', () => {
    const users = of('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(of('ENV').join(' ')).toMatch(/NODE_ENV[= ]production/);
  });

  it('exposes 4000, checks /healthz with node, and starts dist/main.js', () => {
    expect(of('EXPOSE')).toContain('4000');
    const healthcheck = of('HEALTHCHECK').join(' ');
    expect(healthcheck).toContain('http://127.0.0.1:4000/healthz');
    expect(healthcheck).toMatch(/CMD \[?"?node/);
    const cmd = of('CMD').at(-1) ?? '';
    expect(JSON.parse(cmd)).toEqual(['node', 'dist/main.js']);
  });
});

/** `${NAME:-default}` in a compose value, as compose resolves it when NAME is not set. */
const withDefaults = (value: string) => value.replace(/\$\{\w+:-([^}]*)\}/g, '$1');

/** The README's `docker compose exec` lines that run `users add`, split into words. */
function firstUserCommands(): { piped: boolean; words: string[] }[] {
  const readme = read('README.md');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((block) => block.split('\n'))
    .filter((line) => /docker compose exec\b.*\busers add\b/.test(line))
    .map((line) => {
      const [before = '', command = ''] = line.includes('|') ? line.split(/\s*\|\s*/) : ['', line];
      return { piped: before !== '', words: command.trim().split(/\s+/) };
    });
}

/** `docker compose exec [-T] SERVICE PROGRAM ARGS…` → its parts. */
function execParts(words: string[]) {
  expect(words.slice(0, 3)).toEqual(['docker', 'compose', 'exec']);
  const rest = words.slice(3);
  const noTty = rest[0] === '-T';
  const [service = '', ...argv] = noTty ? rest.slice(1) : rest;
  return { noTty, service, argv };
}

describe('docker-compose: the first user', () => {
  const commands = firstUserCommands();
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
  const all = instructions(read('Dockerfile'));
  const final = all.slice(all.map((i) => i.keyword).lastIndexOf('FROM'));

  it('the README gives the command, at a terminal and from a script (-T, the password piped in)', () => {
    expect(commands.map((c) => c.piped).sort()).toEqual([false, true]);
    for (const { piped, words } of commands) {
      const { noTty, service, argv } = execParts(words);
      expect(noTty).toBe(piped); // a pipe needs -T, a terminal prompt must not have it
      expect(Object.keys(services)).toContain(service);
      expect(service).toBe('gateway');
      // `node <the package's bin>`, relative to the image's working directory.
      expect(argv[0]).toBe('node');
      expect(argv[1]).toBe(pkg.bin.tessera);
      expect(argv.slice(2, 4)).toEqual(['users', 'add']);
      expect(argv).toContain('--email');
    }
    // Why it is needed, and why it works: signup is off, Redis is not published, and the
    // gateway's environment names the Redis.
    expect(environment(gateway).SIGNUP_ENABLED).toMatch(/^(\$\{SIGNUP_ENABLED:-false\}|false)$/);
    expect(redis.ports).toBeUndefined();
    expect(environment(gateway).REDIS_URL).toBeDefined();
  });

  it("the image has that file where the command looks: the built CLI in the working directory's dist/", () => {
    const workdir = final.filter((i) => i.keyword === 'WORKDIR').map((i) => i.args).at(-1);
    expect(workdir).toBe('/app');
    const copies = final.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copies).toContainEqual(expect.stringMatching(/^--from=\S+ \/app\/dist \.\/dist\/?$/));
    // dist/cli/tessera.js is compiled from src/cli/tessera.ts.
    expect(pkg.bin.tessera).toBe('dist/cli/tessera.js');
    expect(existsSync(path.join(ROOT, 'src/cli/tessera.ts'))).toBe(true);
  });

  describe('run as the container runs it', () => {
    let build: string;
    beforeAll(async () => {
      build = await buildGateway();
      await chmod(build, 0o755); // readable by the image's user
    }, 120_000);
    afterAll(() => rm(build, { recursive: true, force: true }));

    it("with the gateway service's environment, as the node user (uid 1000): the user is created and can log in", async () => {
      const { argv } = execParts(commands.find((c) => c.piped)!.words);
      const email = uniqueEmail();
      const args = argv.slice(1).map((word) => (word === 'admin@example.com' ? email : word));
      const keyPrefix = uniquePrefix('compose');
      const env: Record<string, string> = {
        ...Object.fromEntries(Object.entries(environment(gateway)).map(([k, v]) => [k, withDefaults(v)])),
        // The compose network's redis is the test's.
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: keyPrefix,
        PATH: process.env.PATH ?? '',
      };
      expect(env.NODE_ENV).toBe('production');
      const asNode = process.getuid?.() === 0 ? { uid: 1000, gid: 1000 } : {};
      const password = 'first admin password';
      const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
        const child = execFile(process.execPath, args, { cwd: build, env, ...asNode, timeout: 20_000 }, (error, out, err) =>
          error ? reject(new Error(`${error.message}\n${err}`)) : resolve({ stdout: out, stderr: err }),
        );
        child.stdin!.end(`${password}\n`);
      });
      expect(stderr).toBe('');
      const id = stdout.trim();
      expect(stdout).toBe(`${id}\n`);

      const server = await createTestServer({ store: 'redis', keyPrefix });
      try {
        const login = await server.graphql(LOGIN, { email, password });
        expect(login.errors).toEqual([]);
        expect(login.data!.login.user).toMatchObject({ id, email, roles: ['user', 'admin'] });
      } finally {
        await server.close();
      }
    }, 60_000);
  });
});
