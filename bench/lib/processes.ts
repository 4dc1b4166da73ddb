import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { awaitExit, sleep, startRedisProcess, track } from '../../test/helpers/redisProcess.js';

// The bench's children and its Redis are tracked like the tests' own: an early exit still ends them (by pid, nothing else).
export { freePort } from '../../test/helpers/ports.js';
export { sleep };

export interface Child {
  readonly pid: number;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function startChild(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Child {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (chunk) => (text += chunk));
  child.stderr!.on('data', (chunk) => (text += chunk));
  child.once('error', (error) => (text += String(error)));
  const exited = track(child);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return {
    pid: child.pid,
    output: () => text,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await awaitExit(child, exited, graceMs);
    },
  };
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** A redis-server of the bench's own: a free port, no persistence, its own directory; never the shared one. */
export async function startRedis(): Promise<PrivateRedis> {
  const redis = await startRedisProcess({
    label: 'bench-redis',
    attempts: 4,
    env: { PATH: process.env.PATH ?? '' },
    args: (port, dir) => [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
    ],
  });
  return {
    url: redis.url,
    port: redis.port,
    async stop() {
      // SIGTERM, SIGKILL after 5 s; then the directory goes.
      await redis.stop('SIGTERM', 5_000);
      await redis.dispose();
    },
  };
}

/** Polls `url` until it answers 200. */
export async function waitForHttp(url: string, child: Child, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${child.output()}`);
}

/** Waits until the child has printed something matching `pattern`. */
export async function waitForOutput(child: Child, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pattern.test(child.output())) return;
    await sleep(25);
  }
  throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${child.output()}`);
}

const TICKS_PER_SECOND = 100;

/**
 * CPU time a process has used, in ms (Linux /proc; null elsewhere): all its threads, and its main
 * thread alone (the event loop; the rest is libuv's pool, GC helpers …).
 */
export async function cpuTime(pid: number): Promise<{ totalMs: number; mainMs: number } | null> {
  const read = async (path: string) => {
    const text = await readFile(path, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  };
  try {
    return { totalMs: await read(`/proc/${pid}/stat`), mainMs: await read(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return null;
  }
}
