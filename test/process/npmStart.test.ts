import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { stageRepository } from '../helpers/builtGateway.js';
import { freePort } from '../helpers/ports.js';

/*
 * `npm start` as a developer runs it (and as a process manager stops it): npm builds, then runs
 * the server. SIGTERM goes to npm; the server must get it and stop, not be left running orphaned.
 * Run in a staged copy of the repository, so its build never writes into the working tree.
 */

/** Every process below `pid`, with its command line (Linux /proc). */
async function descendants(pid: number): Promise<{ pid: number; cmdline: string }[]> {
  const all: { pid: number; ppid: number; cmdline: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      all.push({ pid: Number(entry), ppid, cmdline });
    } catch {
      // The process ended while we looked.
    }
  }
  const found: { pid: number; cmdline: string }[] = [];
  const parents = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const proc of all) {
      if (parents.has(proc.ppid) && !parents.has(proc.pid)) {
        parents.add(proc.pid);
        found.push({ pid: proc.pid, cmdline: proc.cmdline });
        grew = true;
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const leftovers: number[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('npm start', () => {
  it('builds and serves; SIGTERM to npm stops the server too (gracefully), leaving no node dist/main.js running', async () => {
    const dir = await stageRepository();
    dirs.push(dir);
    const port = await freePort();
    // Without npm's own variables (set when the suite runs under `npm test`), as from a shell.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const npm = spawn('npm', ['start'], { cwd: dir, env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    npm.stdout.on('data', (chunk) => (output += chunk));
    npm.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => npm.on('exit', (code, signal) => resolve(signal ?? code)));

    await expect.poll(() => output, { timeout: 120_000, interval: 200 }).toContain('serving GraphQL');
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const below = await descendants(npm.pid!);
    leftovers.push(...below.map((proc) => proc.pid));
    const servers = below.filter((proc) => /^(\S*\/)?node dist\/main\.js$/.test(proc.cmdline));
    expect(servers).toHaveLength(1);
    const server = servers[0]!.pid;

    npm.kill('SIGTERM');
    await exited;
    await expect.poll(() => alive(server), { timeout: 15_000 }).toBe(false);
    expect(output).toContain('stopped: requests finished, store closed');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  }, 180_000);
});
