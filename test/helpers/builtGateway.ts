import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = resolve(import.meta.dirname, '..', '..');
const SCOPE = '@tessera-gateway';

/** What `npm run build` reads: the gateway's and each workspace package's sources and configuration. */
const SOURCES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'schema'];
const PACKAGE_SOURCES = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src'];
/** Never copied by `stageRepository({ all: true })`: installed or built, not part of the sources. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', 'bench-results', 'coverage']);

/**
 * A copy of the repository in a temporary folder, so builds and packs there never write into the
 * working tree that other tests read. Its node_modules links to the repository's, package by
 * package, except the workspace packages, which point at the copy's own `packages/*`.
 * `all`: the whole working tree (tests, bench, examples, …), for checking what a pack leaves out;
 * otherwise only what a build reads.
 */
export async function stageRepository(options: { all?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-stage-'));
  const workspaces = (await readdir(join(ROOT, 'packages'))).sort();
  if (options.all) {
    await cp(ROOT, dir, {
      recursive: true,
      filter: (source) => !relative(ROOT, source).split('/').some((part) => NOT_COPIED.has(part)),
    });
  } else {
    for (const entry of SOURCES) await cp(join(ROOT, entry), join(dir, entry), { recursive: true });
    for (const name of workspaces) {
      for (const entry of PACKAGE_SOURCES) await cp(join(ROOT, 'packages', name, entry), join(dir, 'packages', name, entry), { recursive: true });
    }
  }
  await mkdir(join(dir, 'node_modules', SCOPE), { recursive: true });
  for (const entry of await readdir(join(ROOT, 'node_modules'))) {
    if (entry !== SCOPE) await symlink(join(ROOT, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  for (const name of workspaces) await symlink(join('..', '..', 'packages', name), join(dir, 'node_modules', SCOPE, name));
  return dir;
}

/** Runs npm in `cwd`; resolves with its standard output, rejects with its output on failure. */
export async function npm(cwd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`);
  }
}

/**
 * Builds the gateway (and the workspace packages it depends on) with `npm run build` in a staged
 * copy of the repository: dist/, schema/ and node_modules, as production runs it.
 */
export async function buildGateway(): Promise<string> {
  const dir = await stageRepository();
  const built = await sharedBuild();
  // The build's output, copied: each caller gets a folder of its own (processes write keys into it).
  await cp(join(built, 'dist'), join(dir, 'dist'), { recursive: true });
  // The workspace packages the gateway's build builds (the subgraph's; not the browser client's).
  for (const name of await readdir(join(ROOT, 'packages'))) {
    const output = join(built, 'packages', name, 'dist');
    if (await exists(output)) await cp(output, join(dir, 'packages', name, 'dist'), { recursive: true });
  }
  return dir;
}

/**
 * One `npm run build` of these sources for the whole test run, however many test files (each in a
 * worker of its own) ask for a built gateway: a folder named by the hash of everything the build
 * reads, made by whichever asks first (a `mkdir` lock; the others wait for its `built` marker).
 * Seven full builds side by side took 60 s each on a loaded 2-core machine.
 */
async function sharedBuild(): Promise<string> {
  const hash = createHash('sha256');
  const workspaces = (await readdir(join(ROOT, 'packages'))).sort();
  const inputs = [...SOURCES.map((entry) => join(ROOT, entry)), ...workspaces.flatMap((name) => PACKAGE_SOURCES.map((entry) => join(ROOT, 'packages', name, entry)))];
  for (const input of inputs) await hashTree(hash, input);
  const dir = join(tmpdir(), `tessera-build-${hash.digest('hex').slice(0, 24)}`);
  const marker = join(dir, 'built');
  for (;;) {
    if (await exists(marker)) return join(dir, 'stage');
    try {
      await mkdir(dir);
    } catch {
      // Another worker is building it (or died doing so: a lock older than ten minutes is taken over).
      const lock = await stat(dir).catch(() => null);
      if (lock && Date.now() - lock.mtimeMs > 600_000) await rm(dir, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    try {
      const stage = await stageRepository();
      await npm(stage, ['run', 'build', '--silent']);
      await rename(stage, join(dir, 'stage'));
      await writeFile(marker, '');
      return join(dir, 'stage');
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }
}

async function hashTree(hash: Hash, path: string): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (!info) return;
  hash.update(`${relative(ROOT, path)}\0`);
  if (info.isDirectory()) {
    for (const entry of (await readdir(path)).sort()) await hashTree(hash, join(path, entry));
  } else {
    hash.update(await readFile(path));
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

export interface RunningGateway {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Runs `node dist/main.js` of a built gateway with exactly this environment (plus PATH, and
 * METRICS_PORT=0 unless `env` sets it: gateways started side by side would all want 9464).
 */
export function runGateway(dir: string, env: Record<string, string>, cwd = dir): RunningGateway {
  const child = spawn(process.execPath, [join(dir, 'dist', 'main.js')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (chunk) => (text += chunk));
  child.stderr.on('data', (chunk) => (text += chunk));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, output: () => text, exited };
}
