import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { HostPort } from '../../src/config.js';
import { freePort } from './ports.js';
import { type RedisProcess, sleep, startRedisProcess } from './redisProcess.js';

/*
 * A Redis Cluster of the test's own (its nodes are redis-server processes from redisProcess.ts),
 * and small tools to look at such processes. Never the shared Redis at 127.0.0.1:6379.
 */

/** A plain client to one process, for looking (INFO, CLUSTER INFO, SENTINEL …); not the store's. */
export function adminClient(port: number): Redis {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => undefined);
  return client;
}

/** Runs one command on a process over a throwaway connection. */
export function ask(port: number, ...command: (string | number)[]): Promise<unknown> {
  return askWith(port, command, (client, name, args) => client.call(name, ...args));
}

/** `ask` with the reply's strings as Buffers (for packed values such as session records). */
export function askBuffer(port: number, ...command: (string | number)[]): Promise<unknown> {
  return askWith(port, command, (client, name, args) => client.callBuffer(name, ...args));
}

async function askWith(
  port: number,
  [name, ...args]: (string | number)[],
  send: (client: Redis, name: string, args: (string | number)[]) => Promise<unknown>,
): Promise<unknown> {
  const client = adminClient(port);
  try {
    await client.connect();
    return await send(client, String(name), args);
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
