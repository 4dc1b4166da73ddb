import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Compiles the gateway into a temporary package (dist/, schema/, node_modules linked), as production runs it. */
export async function buildGateway(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-build-'));
  await promisify(execFile)(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')]);
  await cp(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(ROOT, 'schema'), join(dir, 'schema'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
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
