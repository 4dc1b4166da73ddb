import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A redis-server process of the test's own, on its own port and directory, for fault tests that
 * kill and restart Redis. Never the shared Redis at 127.0.0.1:6379.
 */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The current process id (changes on restart); undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Stops the process with this signal (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it if it runs, then starts it again on the same port and directory (AOF data comes back). */
  restart(): Promise<void>;
  /** Starts it again after stop(), on the same port and directory. */
  start(): Promise<void>;
  /** SIGSTOP: Redis hangs with its connections open (a hung server, or a network that drops everything). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** SIGKILL if still running, and removes the directory if this helper created it. */
  dispose(): Promise<void>;
  /** What redis-server printed (for failure messages). */
  output(): string;
}

export interface PrivateRedisOptions {
  appendonly?: boolean;
  /** With appendonly: `always` (the default here, so a SIGKILL loses no acknowledged write), `everysec` or `no`. */
  appendfsync?: 'always' | 'everysec' | 'no';
  port?: number;
  dir?: string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  // Last resort if a test run dies before its afterAll: no redis-server outlives the test process.
  for (const child of live) child.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** One raw PING over TCP: true on +PONG (false on refusal, LOADING, or no answer within 500 ms). */
function pingOnce(port: number): Promise<boolean> {
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

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'tessera-redis-')));
  let port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  let frozen = false;

  const args = () => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--daemonize', 'no',
    '--logfile', '',
    '--appendonly', options.appendonly ? 'yes' : 'no',
    ...(options.appendonly ? ['--appendfsync', options.appendfsync ?? 'always'] : []),
  ];

  const launch = async (): Promise<void> => {
    const proc = spawn('redis-server', args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    live.add(proc);
    proc.stdout!.on('data', (chunk) => (log += chunk));
    proc.stderr!.on('data', (chunk) => (log += chunk));
    let gone = false;
    exited = new Promise((done) => {
      proc.once('exit', () => {
        gone = true;
        live.delete(proc);
        if (child === proc) child = undefined;
        done();
      });
      proc.once('error', () => {
        gone = true;
        live.delete(proc);
        if (child === proc) child = undefined;
        done();
      });
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`redis-server on port ${port} exited at start:\n${log}`);
      if (await pingOnce(port)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${log}`);
  };

  const start = async (): Promise<void> => {
    if (child) throw new Error('this private redis-server is already running');
    await launch();
  };

  // A port picked here may be taken between the probe and the bind: try a few.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      if (options.port !== undefined || attempt >= 4) {
        if (ownsDir) await rm(dir, { recursive: true, force: true });
        throw error;
      }
      port = await freePort();
    }
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill(signal);
    if (frozen && signal !== 'SIGKILL') proc.kill('SIGCONT');
    frozen = false;
    await exited;
  };

  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
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
    freeze() {
      if (!child) throw new Error('this private redis-server is not running');
      child.kill('SIGSTOP');
      frozen = true;
    },
    thaw() {
      if (!child || !frozen) return;
      child.kill('SIGCONT');
      frozen = false;
    },
    async restart() {
      await stop('SIGTERM');
      await start();
    },
    async dispose() {
      await stop('SIGKILL');
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
    output: () => log,
  };
}
