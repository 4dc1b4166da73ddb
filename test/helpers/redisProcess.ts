import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostPort } from '../../src/config.js';
import { freePort } from './ports.js';

/*
 * redis-server processes of a test's (or the bench's) own: private Redis for fault tests, cluster
 * nodes, sentinels, replicas, the bench's Redis. Each is on its own port and directory; never the
 * shared Redis at 127.0.0.1:6379. The bench compiles this file too (bench/tsconfig.json's rootDir
 * is the repository, so an import from bench/ brings it in): it imports nothing but Node and types.
 */

const live = new Set<ChildProcess>();
process.once('exit', () => {
  // Last resort if a run dies before its afterAll: no child started here outlives this process.
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Counts the child among those killed (SIGKILL, by pid) if this process exits first. Resolves once
 * it has exited or failed to start, after `onGone`; from then on it no longer counts.
 */
export function track(child: ChildProcess, onGone?: () => void): Promise<void> {
  live.add(child);
  return new Promise((done) => {
    const gone = () => {
      live.delete(child);
      onGone?.();
      done();
    };
    child.once('exit', gone);
    child.once('error', gone);
  });
}

/** Resolves with `exited`; if `graceMs` is given and the child has not exited by then, SIGKILLs it first. */
export async function awaitExit(child: ChildProcess, exited: Promise<void>, graceMs?: number): Promise<void> {
  const timer = graceMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One raw PING over TCP: true on +PONG (false on refusal, LOADING, or no answer within 500 ms). */
export function pingRedis(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), 500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

export interface RedisProcess {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly address: HostPort;
  readonly dir: string;
  /** The current process id (changes on restart); undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /**
   * Stops the process with this signal (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for
   * it to exit; with `graceMs`, SIGKILL follows if it has not exited by then.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** Starts it again after stop(), on the same port and directory, with these arguments instead of the last ones if given. */
  start(args?: string[]): Promise<void>;
  /** Stops it (SIGTERM) if it runs, then starts it again on the same port and directory (AOF data comes back). */
  restart(): Promise<void>;
  /** SIGSTOP: Redis hangs with its connections open (a hung server, or a network that drops everything). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** SIGKILL if still running, and removes the directory if it was created here. */
  dispose(): Promise<void>;
  /** What redis-server printed (for failure messages). */
  output(): string;
}

export interface RedisProcessOptions {
  /** The command line after `redis-server`, given the port and directory chosen. */
  args: (port: number, dir: string) => string[];
  /** The temp directory is `tessera-<label>-…` (default `redis`). */
  label?: string;
  /** This port instead of a free one picked here (and so no second try on another port). */
  port?: number;
  /** This existing directory instead of a temp one (never removed here). */
  dir?: string;
  /** How many ports to try, each a free one picked here, before giving up (default 5). */
  attempts?: number;
  /** The process's environment (default: this one's). */
  env?: NodeJS.ProcessEnv;
}

const PING_DEADLINE_MS = 10_000;

/** Starts redis-server and resolves once it answers PING (within 10 s, on a port free at the time). */
export async function startRedisProcess(options: RedisProcessOptions): Promise<RedisProcess> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), `tessera-${options.label ?? 'redis'}-`)));
  let port = options.port ?? (await freePort());
  let args = options.args(port, dir);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  let frozen = false;

  const launch = async (): Promise<void> => {
    const proc = spawn('redis-server', args, { env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout!.on('data', (chunk) => (log += chunk));
    proc.stderr!.on('data', (chunk) => (log += chunk));
    let gone = false;
    exited = track(proc, () => {
      gone = true;
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + PING_DEADLINE_MS;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`redis-server on port ${port} exited at start:\n${log}`);
      if (await pingRedis(port)) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${log}`);
  };

  // A port picked here may be taken between the probe and the bind: try a few.
  const attempts = options.port === undefined ? (options.attempts ?? 5) : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= attempts) {
        if (ownsDir) await rm(dir, { recursive: true, force: true });
        throw error;
      }
      port = await freePort();
      args = options.args(port, dir);
    }
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs?: number): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill(signal);
    if (frozen && signal !== 'SIGKILL') proc.kill('SIGCONT');
    frozen = false;
    await awaitExit(proc, exited, graceMs);
  };

  const start = async (newArgs?: string[]): Promise<void> => {
    if (child) throw new Error(`redis-server on port ${port} is already running`);
    if (newArgs) args = newArgs;
    await launch();
  };

  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get address() {
      return { host: '127.0.0.1', port };
    },
    dir,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined;
    },
    stop,
    start,
    async restart() {
      await stop('SIGTERM');
      await start();
    },
    freeze() {
      if (!child) throw new Error(`redis-server on port ${port} is not running`);
      child.kill('SIGSTOP');
      frozen = true;
    },
    thaw() {
      if (!child || !frozen) return;
      child.kill('SIGCONT');
      frozen = false;
    },
    async dispose() {
      await stop('SIGKILL');
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
    output: () => log,
  };
}
