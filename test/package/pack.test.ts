import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npm, stageRepository } from '../helpers/builtGateway.js';
import { freePort } from '../helpers/ports.js';
import { deleteKeys, inspector, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { bearer, LOGIN } from '../helpers/testServer.js';

/*
 * The packages as a user gets them: `npm pack` of each (in a copy of the whole working tree, so
 * the tests, bench, examples and a planted .tessera/ are there to be left out), the tarballs
 * installed from the files into fresh projects with nothing else (their dependencies from the
 * registry), then used: the gateway's `tessera` bin against the real Redis, the gateway started
 * from the installed package in front of one tiny subgraph, and that subgraph, in a project that
 * has only @tessera-gateway/subgraph, verifying the gateway's real x-tessera-context tokens.
 */

const INSTALL_TIMEOUT = 600_000;
const ISSUER = 'http://tessera.test';
const PASSWORD = 'correct horse battery';

/** npm's own environment variables (set when the suite runs under `npm test`) would leak into the projects' installs. */
const cleanEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

interface Packed {
  name: string;
  filename: string;
  files: { path: string }[];
}

const temp: string[] = [];
const children: ChildProcess[] = [];
const keyPrefix = uniquePrefix('pack');
let gatewayPack: Packed;
let subgraphPack: Packed;
let clientPack: Packed;
/** A project with both tarballs installed; another with the subgraph's alone; another with the client's alone. */
let app: string;
let subgraphOnly: string;
let clientOnly: string;

async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tessera-${label}-`));
  temp.push(dir);
  return dir;
}

async function pack(stage: string, out: string, workspace?: string): Promise<Packed> {
  const args = ['pack', '--json', '--pack-destination', out, ...(workspace ? ['--workspace', workspace] : [])];
  const [packed] = JSON.parse(await npm(stage, args, cleanEnv)) as Packed[];
  return packed!;
}

async function newProject(label: string, tarballs: string[]): Promise<string> {
  const dir = await tempDir(label);
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: `tessera-${label}`, private: true, type: 'module' }, null, 2)}\n`);
  await npm(dir, ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], cleanEnv);
  return dir;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in a project, feeding `stdin`; never rejects. */
function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string>; stdin?: string }): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { cwd: options.cwd, env: { ...cleanEnv, ...options.env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.stdin ?? '');
  });
}

/** A long-running process; its output collected. */
function start(args: string[], options: { cwd: string; env: Record<string, string> }) {
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: { PATH: process.env.PATH ?? '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return { child, stdout: () => stdout, stderr: () => stderr, output: () => stdout + stderr };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return (await response.json()) as { data?: any; errors?: { message: string; extensions: Record<string, unknown> }[] };
}

beforeAll(async () => {
  const stage = await stageRepository({ all: true });
  temp.push(stage);
  // What a developer's checkout also has: dev keys and secrets, which must never be packed.
  for (const dir of [stage, join(stage, 'packages', 'subgraph'), join(stage, 'packages', 'client')]) {
    await mkdir(join(dir, '.tessera'), { recursive: true });
    await writeFile(join(dir, '.tessera', 'signing-keys.json'), '{"keys":[]}\n');
  }
  const out = await tempDir('tarballs');
  gatewayPack = await pack(stage, out);
  subgraphPack = await pack(stage, out, 'packages/subgraph');
  clientPack = await pack(stage, out, 'packages/client');
  const gatewayTarball = join(out, gatewayPack.filename);
  const subgraphTarball = join(out, subgraphPack.filename);
  [app, subgraphOnly, clientOnly] = await Promise.all([
    newProject('app', [gatewayTarball, subgraphTarball]),
    newProject('subgraph-only', [subgraphTarball]),
    newProject('client-only', [join(out, clientPack.filename)]),
  ]);
}, INSTALL_TIMEOUT);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  const redis = inspector();
  await deleteKeys(redis, keyPrefix);
  redis.disconnect();
  await Promise.all(temp.map((dir) => rm(dir, { recursive: true, force: true })));
});

const paths = (packed: Packed) => packed.files.map((file) => file.path).sort();

describe('the tarballs', () => {
  it('are named under the @tessera-gateway scope', () => {
    expect(gatewayPack.name).toBe('@tessera-gateway/gateway');
    expect(subgraphPack.name).toBe('@tessera-gateway/subgraph');
    expect(clientPack.name).toBe('@tessera-gateway/client');
  });

  it('the client package holds its compiled code (the main entry, /apollo and /ws), README, LICENSE and package.json, and nothing else', () => {
    const files = paths(clientPack);
    for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/apollo.js', 'dist/apollo.d.ts', 'dist/ws.js', 'dist/ws.d.ts']) expect(files).toContain(needed);
    expect(files.filter((path) => !/^(package\.json|README\.md|LICENSE|dist\/[^/]+\.(js|d\.ts))$/.test(path))).toEqual([]);
  });

  it('the client package has no runtime dependencies; @apollo/client and graphql-ws are optional peers the main entry never loads', async () => {
    const manifest = JSON.parse(await readFile(join(clientOnly, 'node_modules', '@tessera-gateway', 'client', 'package.json'), 'utf8'));
    expect(manifest.dependencies).toBeUndefined();
    expect(Object.keys(manifest.peerDependencies)).toEqual(['@apollo/client', 'graphql-ws']);
    expect(manifest.peerDependenciesMeta).toEqual({ '@apollo/client': { optional: true }, 'graphql-ws': { optional: true } });
    expect((await readdir(join(clientOnly, 'node_modules'))).filter((name) => !name.startsWith('.')).sort()).toEqual(['@tessera-gateway']);
    await writeFile(
      join(clientOnly, 'use.mjs'),
      [
        "import { createAuthClient, decodeAccessToken, MemoryStorage } from '@tessera-gateway/client';",
        "const client = createAuthClient({ url: 'http://127.0.0.1:9/graphql', transport: 'cookie', storage: new MemoryStorage(), locks: null, channel: null });",
        "const apollo = await import('@tessera-gateway/client/apollo').then(() => 'loaded', (error) => error.code);",
        // /ws imports only graphql-ws's types: it loads without graphql-ws (the app passes createClient).
        "const ws = await import('@tessera-gateway/client/ws').then((m) => typeof m.createSubscriptionClient, (error) => error.code);",
        "console.log(JSON.stringify({ session: client.session, token: await client.getAccessToken(), garbage: decodeAccessToken('not.a.jwt'), apollo, ws }));",
      ].join('\n'),
    );
    const result = await run(process.execPath, ['use.mjs'], { cwd: clientOnly });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ session: null, token: null, garbage: null, apollo: 'ERR_MODULE_NOT_FOUND', ws: 'function' });
  });

  it("the gateway holds its compiled code, GraphiQL's files, the SDL, README, LICENSE and package.json, and nothing else", () => {
    const files = paths(gatewayPack);
    for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/main.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/tessera.js', 'dist/subgraph/index.js', 'dist/subgraph/index.d.ts', 'schema/auth.graphql', 'schema/federation/auth-entity.graphql', 'dist/mail/templates/password_reset.txt', 'dist/mail/templates/password_reset.html']) {
      expect(files).toContain(needed);
    }
    // GraphiQL (/graphiql outside production) from the package's own files: no CDN.
    for (const needed of ['graphiql.min.js', 'graphiql.min.css', 'react.production.min.js', 'react-dom.production.min.js']) {
      expect(files).toContain(`dist/graphiql/${needed}`);
    }
    const strays = files.filter((path) => !/^(package\.json|README\.md|LICENSE|dist\/.+\.(js|d\.ts)|dist\/graphiql\/[^/]+\.css|dist\/mail\/templates\/[a-z_]+\.(txt|html)|schema\/.+\.graphql)$/.test(path));
    expect(strays).toEqual([]);
    // The built-in mail templates, every one (src/mail/templates.ts reads them beside itself).
    const templates = readdirSync(new URL('../../src/mail/templates/', import.meta.url)).map((file) => `dist/mail/templates/${file}`);
    expect(templates.length).toBe(12);
    for (const template of templates) expect(files).toContain(template);
    // No sources, tests, bench, examples, workspace packages, keys or secrets (dist/ is the compiled src/ alone).
    expect(files.filter((path) => /^(src|test|bench|examples|packages|secrets|\.tessera)\/|\.tessera\/|\.map$/.test(path))).toEqual([]);
    expect(files.filter((path) => path.startsWith('dist/') && !/\.d\.ts$/.test(path) && path.endsWith('.ts'))).toEqual([]);
  });

  it('the subgraph package holds its compiled code, README, LICENSE and package.json, and nothing else', () => {
    const files = paths(subgraphPack);
    for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) expect(files).toContain(needed);
    expect(files.filter((path) => !/^(package\.json|README\.md|LICENSE|dist\/[^/]+\.(js|d\.ts))$/.test(path))).toEqual([]);
  });

  it('the subgraph package depends on jose alone: a project with only it installed has nothing else', async () => {
    const manifest = JSON.parse(await readFile(join(subgraphOnly, 'node_modules', '@tessera-gateway', 'subgraph', 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies)).toEqual(['jose']);
    expect(manifest.peerDependencies).toBeUndefined();
    expect((await readdir(join(subgraphOnly, 'node_modules'))).filter((name) => !name.startsWith('.')).sort()).toEqual(['@tessera-gateway', 'jose']);
    expect(await readdir(join(subgraphOnly, 'node_modules', '@tessera-gateway'))).toEqual(['subgraph']);
  });

  it('the gateway package depends on the subgraph package of the same version, and re-exports it at /subgraph', async () => {
    const manifest = JSON.parse(await readFile(join(app, 'node_modules', '@tessera-gateway', 'gateway', 'package.json'), 'utf8'));
    expect(manifest.dependencies['@tessera-gateway/subgraph']).toBe(manifest.version);
    await writeFile(
      join(app, 'reexport.mjs'),
      [
        "import * as viaGateway from '@tessera-gateway/gateway/subgraph';",
        "import * as direct from '@tessera-gateway/subgraph';",
        "import { createApp, loadConfig } from '@tessera-gateway/gateway';",
        'console.log(JSON.stringify({ same: viaGateway.createContextVerifier === direct.createContextVerifier, names: Object.keys(viaGateway).sort(), app: typeof createApp, config: typeof loadConfig }));',
      ].join('\n'),
    );
    const result = await run(process.execPath, ['reexport.mjs'], { cwd: app });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ same: true, names: ['CONTEXT_HEADER', 'CONTEXT_TOKEN_TYP', 'ContextError', 'createContextVerifier'], app: 'function', config: 'function' });
  });
});

describe('the installed gateway, used', () => {
  let keysFile: string;
  let userId: string;
  const email = `pack-${Date.now()}@example.com`;
  const redisEnv = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: keyPrefix };

  it('`npx @tessera-gateway/gateway keys generate` prints a JWK Set with one private key', async () => {
    const result = await run('npx', ['--no', '@tessera-gateway/gateway', 'keys', 'generate'], { cwd: app });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const jwks = JSON.parse(result.stdout) as { keys: { alg: string; d?: string; kid: string }[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ alg: 'EdDSA', kty: 'OKP', crv: 'Ed25519' });
    expect(jwks.keys[0]!.d).toBeTruthy();
    keysFile = join(app, 'signing-keys.json');
    await writeFile(keysFile, result.stdout, { mode: 0o600 });
  }, 60_000);

  it('`tessera users add` creates a user in the real Redis, under its REDIS_KEY_PREFIX', async () => {
    const result = await run(join(app, 'node_modules', '.bin', 'tessera'), ['users', 'add', '--email', email, '--roles', 'user,orders:read'], {
      cwd: app,
      env: redisEnv,
      stdin: `${PASSWORD}\n`,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    userId = result.stdout.trim();
    expect(userId).toMatch(/^\S+$/);
    const redis = inspector();
    try {
      const [, keys] = await redis.scan('0', 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      expect(keys.length).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
  }, 60_000);

  it('starts from the package in front of a subgraph that verifies its context with the installed @tessera-gateway/subgraph', async () => {
    expect(userId, 'needs the user of the test before').toBeTruthy();
    const [gatewayPort, subgraphPort] = await Promise.all([freePort(), freePort()]);
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const subgraphUrl = `http://127.0.0.1:${subgraphPort}/graphql`;

    // A subgraph with nothing but the subgraph package: node:http, one field, the caller it was told about.
    await writeFile(join(subgraphOnly, 'subgraph.mjs'), TINY_SUBGRAPH);
    const subgraph = start(['subgraph.mjs'], {
      cwd: subgraphOnly,
      env: { PORT: String(subgraphPort), JWKS_URL: `${gatewayUrl}/.well-known/jwks.json`, ISSUER, AUDIENCE: 'tiny' },
    });
    await expect.poll(() => subgraph.output(), { timeout: 15_000 }).toContain('listening');

    const gateway = start([join(app, 'node_modules', '@tessera-gateway', 'gateway', 'dist', 'main.js')], {
      cwd: app,
      env: { ...redisEnv, PORT: String(gatewayPort), HOST: '127.0.0.1', AUTH_ISSUER: ISSUER, SIGNING_KEYS: keysFile, SUBGRAPHS: `tiny=${subgraphUrl}` },
    });
    await expect.poll(() => gateway.output(), { timeout: 30_000 }).toContain('serving GraphQL');
    expect(gateway.output()).toContain(`GraphiQL: http://127.0.0.1:${gatewayPort}/graphiql`);

    // GraphiQL from the installed package's own files (graphiql and react are not installed: they are dev dependencies).
    expect((await readdir(join(app, 'node_modules'))).filter((name) => ['graphiql', 'react', 'react-dom'].includes(name))).toEqual([]);
    const graphiql = await fetch(`${gatewayUrl}/graphiql`);
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toContain('graphiql/graphiql.min.js');
    const bundle = await fetch(`${gatewayUrl}/graphiql/graphiql.min.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);

    const login = await post(`${gatewayUrl}/graphql`, { query: LOGIN, variables: { email, password: PASSWORD } });
    expect(login.errors).toBeUndefined();
    expect(login.data.login.user.id).toBe(userId);
    const token = login.data.login.accessToken as string;

    // Signed in: the subgraph's verifier vouches for exactly this user, session and scopes.
    const signedIn = await post(`${gatewayUrl}/graphql`, { query: '{ whoami }' }, bearer(token));
    expect(signedIn.errors).toBeUndefined();
    const accessClaims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { auth_time: number };
    expect(JSON.parse(signedIn.data.whoami)).toEqual({
      user: {
        id: userId,
        roles: ['user', 'orders:read'],
        sessionId: login.data.login.session.id,
        scopes: ['user', 'orders:read'],
        // How the user signed in, from the access token (`users add` made a verified account).
        authTime: accessClaims.auth_time,
        emailVerified: true,
        amr: ['pwd'],
        acr: 'aal1',
      },
    });

    // Anonymous, with a context header of the client's own: the gateway drops it, the subgraph sees no user.
    const context = (await (await fetch(`http://127.0.0.1:${subgraphPort}/last-context`)).text()).trim();
    expect(context.split('.')).toHaveLength(3);
    const anonymous = await post(`${gatewayUrl}/graphql`, { query: '{ whoami }' }, { 'x-tessera-context': context });
    expect(JSON.parse(anonymous.data.whoami)).toEqual({ user: null });

    // The real token with one claim changed, sent straight to the subgraph: refused, UNAUTHENTICATED.
    const [header, payload, signature] = context.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')}.${signature}`;
    const refused = await post(subgraphUrl, { query: '{ whoami }' }, { 'x-tessera-context': forged });
    expect(refused.errors?.[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_INVALID' });
    expect(refused.errors?.[0]?.message).toBe('The gateway context is not valid.');

    // Neither process warned: no deprecation (DEP0204 was KeyObject.from on a non-extractable key).
    expect(gateway.stderr()).toBe('');
    expect(subgraph.stderr()).toBe('');
    expect(gateway.stdout()).not.toContain('DeprecationWarning');
  }, 120_000);
});

/** The tiny subgraph: answers composition's `_service { sdl }` and `{ whoami }` with what the verifier says. */
const TINY_SUBGRAPH = `
import { createServer } from 'node:http';
import { ContextError, createContextVerifier } from '@tessera-gateway/subgraph';

const verifier = createContextVerifier({ jwksUrl: process.env.JWKS_URL, issuer: process.env.ISSUER, audience: process.env.AUDIENCE });
const sdl = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@shareable"]) type Query { whoami: String }';
let lastContext = '';

const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/last-context') return res.end(lastContext);
  let body = '';
  for await (const chunk of req) body += chunk;
  const { query } = JSON.parse(body);
  const answer = (result) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  if (query.includes('_service')) return answer({ data: { _service: { sdl } } });
  if (typeof req.headers['x-tessera-context'] === 'string') lastContext = req.headers['x-tessera-context'];
  try {
    answer({ data: { whoami: JSON.stringify(await verifier.verify(req.headers)) } });
  } catch (error) {
    if (!(error instanceof ContextError)) throw error;
    answer({ data: { whoami: null }, errors: [{ message: error.message, path: ['whoami'], extensions: error.extensions }] });
  }
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
