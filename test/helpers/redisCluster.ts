import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { HostPort } from '../../src/config.js';
import { freePort } from './privateRedis.js';

/**
 * redis-server processes of the test's own (cluster nodes, sentinels, replicas), each on its own
 * port and temp directory. Never the shared Redis at 127.0.0.1:6379.
 */
export interface RedisProcess {
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly address: HostPort;
  /** Stops it with this signal (SIGKILL: a crash) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory, with these arguments instead of the first ones if given. */
  start(args?: string[]): Promise<void>;
  /** SIGSTOP: a hung server. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** SIGKILL if running, and removes the directory. */
  dispose(): Promise<void>;
  /** What it printed (for failure messages). */
  output(): string;
}

export interface RedisProcessOptions {
  /** The command line after `redis-server`, given the port and directory chosen. */
  args: (port: number, dir: string) => string[];
  label?: string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  // Last resort if a run dies before its afterAll: no redis-server outlives the test process.
  for (const child of live) child.kill('SIGKILL');
});

/** One raw PING over TCP: true on +PONG. */
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

export async function startRedisProcess(options: RedisProcessOptions): Promise<RedisProcess> {
  const dir = await mkdtemp(join(tmpdir(), `tessera-${options.label ?? 'redis'}-`));
  let port = await freePort();
  let args = options.args(port, dir);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  let frozen = false;

  const launch = async (): Promise<void> => {
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    live.add(proc);
    proc.stdout!.on('data', (chunk) => (log += chunk));
    proc.stderr!.on('data', (chunk) => (log += chunk));
    let gone = false;
    exited = new Promise((done) => {
      const onGone = () => {
        gone = true;
        live.delete(proc);
        if (child === proc) child = undefined;
        done();
      };
      proc.once('exit', onGone);
      proc.once('error', onGone);
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`redis-server on port ${port} exited at start:\n${log}`);
      if (await pingOnce(port)) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${log}`);
  };

  // A port picked here may be taken between the probe and the bind: try a few.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= 4) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      port = await freePort();
      args = options.args(port, dir);
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
    get address() {
      return { host: '127.0.0.1', port };
    },
    stop,
    async start(newArgs) {
      if (child) throw new Error(`redis-server on port ${port} is already running`);
      if (newArgs) args = newArgs;
      await launch();
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
      await rm(dir, { recursive: true, force: true });
    },
    output: () => log,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A plain client to one process, for looking (INFO, CLUSTER INFO, SENTINEL …); not the store's. */
export function adminClient(port: number): Redis {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => undefined);
  return client;
}

/** Runs one command on a process over a throwaway connection. */
export async function ask(port: number, ...command: (string | number)[]): Promise<unknown> {
  const client = adminClient(port);
  try {
    await client.connect();
    return await client.call(String(command[0]), ...command.slice(1));
  } finally {
    client.disconnect();
  }
}

/** Polls until the check holds (hooks cannot use expect.poll). */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** `field:value` lines of an INFO-style reply. */
export function infoFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

export interface TestCluster {
  /** The masters, in the order given to `redis-cli --cluster create`. */
  readonly nodes: RedisProcess[];
  /** What REDIS_CLUSTER_NODES would name. */
  readonly addresses: HostPort[];
  /** The node that owns the slot of this key (by CLUSTER KEYSLOT and CLUSTER SLOTS). */
  nodeOf(key: string): Promise<RedisProcess>;
  /** Starts one more node and makes it a replica of `master`; resolves once it is in sync. */
  addReplica(master: RedisProcess): Promise<RedisProcess>;
  dispose(): Promise<void>;
}

const execFileAsync = promisify(execFile);

function clusterNodeArgs(port: number, busPort: number, dir: string): string[] {
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--cluster-enabled', 'yes',
    '--cluster-config-file', join(dir, 'nodes.conf'),
    // The bus port is chosen free too (the default, port + 10000, may be taken or out of range).
    '--cluster-port', String(busPort),
    '--cluster-node-timeout', '2000',
    '--save', '',
    '--appendonly', 'no',
    '--repl-diskless-sync-delay', '0',
    '--daemonize', 'no',
    '--logfile', '',
  ];
}

/** Each node's cluster bus port (CLUSTER MEET needs it when it is not port + 10000). */
const busPorts = new WeakMap<RedisProcess, number>();

async function startClusterNode(): Promise<RedisProcess> {
  const busPort = await freePort();
  const node = await startRedisProcess({ label: 'cluster', args: (port, dir) => clusterNodeArgs(port, busPort, dir) });
  busPorts.set(node, busPort);
  return node;
}

/** A real Redis Cluster of `masters` masters (no replicas), ready (`cluster_state:ok` on every node). */
export async function startRedisCluster(masters = 3): Promise<TestCluster> {
  const nodes: RedisProcess[] = [];
  const extra: RedisProcess[] = [];
  const dispose = async () => {
    await Promise.all([...nodes, ...extra].map((node) => node.dispose()));
  };
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startClusterNode());
    await execFileAsync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 },
    );
    for (const node of nodes) {
      await waitFor(`cluster_state:ok on ${node.port}`, async () => {
        const info = infoFields(String(await ask(node.port, 'CLUSTER', 'INFO')));
        return info.cluster_state === 'ok' && Number(info.cluster_known_nodes) === masters && info.cluster_slots_ok === '16384';
      });
    }
  } catch (error) {
    await dispose();
    throw error;
  }

  const byPort = (port: number) => [...nodes, ...extra].find((n) => n.port === port);

  return {
    nodes,
    addresses: nodes.map((n) => n.address),
    async nodeOf(key) {
      const slot = Number(await ask(nodes[0]!.port, 'CLUSTER', 'KEYSLOT', key));
      const ranges = (await ask(nodes[0]!.port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
      for (const [from, to, [, port]] of ranges) {
        if (slot >= from && slot <= to) {
          const node = byPort(Number(port));
          if (node) return node;
        }
      }
      throw new Error(`no node owns slot ${slot}`);
    },
    async addReplica(master) {
      const replica = await startClusterNode();
      extra.push(replica);
      await ask(replica.port, 'CLUSTER', 'MEET', '127.0.0.1', master.port, busPorts.get(master)!);
      const masterId = String(await ask(master.port, 'CLUSTER', 'MYID'));
      // REPLICATE needs the replica to know the master first (gossip after MEET).
      await waitFor('the new node to learn the master', async () => {
        const known = String(await ask(replica.port, 'CLUSTER', 'NODES'));
        return known.includes(masterId);
      });
      await ask(replica.port, 'CLUSTER', 'REPLICATE', masterId);
      // Online, and acknowledging: the offset it confirmed has caught up with the master's.
      await waitFor('the replica to sync', async () => {
        const info = infoFields(String(await ask(master.port, 'INFO', 'replication')));
        const acked = Number(/offset=(\d+)/.exec(info.slave0 ?? '')?.[1] ?? -1);
        return /state=online/.test(info.slave0 ?? '') && acked > 0 && acked >= Number(info.master_repl_offset);
      });
      for (const node of [...nodes, replica]) {
        await waitFor(`cluster_state:ok on ${node.port}`, async () => {
          const info = infoFields(String(await ask(node.port, 'CLUSTER', 'INFO')));
          return info.cluster_state === 'ok' && Number(info.cluster_known_nodes) === masters + extra.length;
        });
      }
      return replica;
    },
    dispose,
  };
}
