import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostPort } from '../../src/config.js';
import { adminClient, ask, infoFields, waitFor } from './redisCluster.js';
import { type RedisProcess, startRedisProcess } from './redisProcess.js';

/**
 * A Sentinel-managed Redis of the test's own: a master, one replica and three sentinels
 * (quorum 2), each a redis-server process on its own port and temp directory.
 */
export interface TestSentinelGroup {
  /** The name the sentinels monitor (REDIS_SENTINEL_NAME). */
  readonly name: string;
  /** The master at start. */
  readonly master: RedisProcess;
  /** The replica at start. */
  readonly replica: RedisProcess;
  readonly sentinels: RedisProcess[];
  /** What REDIS_SENTINELS would name. */
  readonly sentinelAddresses: HostPort[];
  /** Resolves once every sentinel names the data node on this port as the master. */
  waitForMaster(port: number, timeoutMs?: number): Promise<void>;
  /** Resolves once every sentinel counts the data node on this port as a healthy replica (one it could promote). */
  waitForHealthyReplica(port: number, timeoutMs?: number): Promise<void>;
  /** Cuts a replica loose from its master (REPLICAOF NO ONE); resolves once the master has no replica left. */
  detach(replica: RedisProcess, master: RedisProcess): Promise<void>;
  /** Points a detached replica at `master` again; resolves once it is in sync. */
  reattach(replica: RedisProcess, master: RedisProcess): Promise<void>;
  /** Starts a stopped data node again (empty) as a replica of `master`; resolves once it is in sync. */
  restartAsReplicaOf(node: RedisProcess, master: RedisProcess): Promise<void>;
  dispose(): Promise<void>;
}

export interface SentinelGroupOptions {
  name?: string;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
  /**
   * `min-replicas-to-write` of the data nodes (default 1): a master with fewer replicas attached
   * refuses writes (NOREPLICAS) instead of applying writes that no replica will confirm.
   */
  minReplicasToWrite?: number;
}

function dataNodeArgs(port: number, dir: string, minReplicasToWrite: number, replicaOf?: number): string[] {
  return [
    '--min-replicas-to-write', String(minReplicasToWrite),
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    // A full sync starts at once (the default waits 5 s for more replicas to join).
    '--repl-diskless-sync-delay', '0',
    '--daemonize', 'no',
    '--logfile', '',
    ...(replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(replicaOf)]),
  ];
}

/** `SENTINEL MASTER <name>` as an object. */
async function sentinelView(sentinel: RedisProcess, name: string): Promise<Record<string, string>> {
  const flat = (await ask(sentinel.port, 'SENTINEL', 'MASTER', name)) as string[];
  const view: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) view[flat[i]!] = flat[i + 1]!;
  return view;
}

/** The replica is in sync, and confirms its master's writes at once (a probe write, then WAIT). */
async function inSync(replica: RedisProcess): Promise<boolean> {
  const info = infoFields(String(await ask(replica.port, 'INFO', 'replication')));
  if (!(info.role === 'slave' && info.master_link_status === 'up' && info.master_sync_in_progress === '0')) return false;
  const master = adminClient(Number(info.master_port));
  try {
    await master.connect();
    const [set, wait] = (await master.pipeline().set('tessera-test-probe', '1').wait(1, 100).exec()) ?? [];
    return !set?.[0] && Number(wait?.[1]) >= 1;
  } finally {
    master.disconnect();
  }
}

export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<TestSentinelGroup> {
  const name = options.name ?? 'tessera';
  const minReplicas = options.minReplicasToWrite ?? 1;
  const started: RedisProcess[] = [];
  const dispose = async () => {
    await Promise.all(started.map((p) => p.dispose()));
  };
  try {
    const master = await startRedisProcess({ label: 'sentinel-master', args: (port, dir) => dataNodeArgs(port, dir, minReplicas) });
    started.push(master);
    const replica = await startRedisProcess({
      label: 'sentinel-replica',
      args: (port, dir) => dataNodeArgs(port, dir, minReplicas, master.port),
    });
    started.push(replica);
    await waitFor('the replica to sync', () => inSync(replica));

    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startRedisProcess({
        label: 'sentinel',
        args: (port, dir) => {
          // Sentinels rewrite their configuration file: each gets its own, in its own directory.
          const conf = join(dir, 'sentinel.conf');
          writeFileSync(
            conf,
            [
              `port ${port}`,
              'bind 127.0.0.1',
              'daemonize no',
              'logfile ""',
              `dir ${dir}`,
              `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
              `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1_000}`,
              `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 5_000}`,
              `sentinel parallel-syncs ${name} 1`,
              '',
            ].join('\n'),
          );
          return [conf, '--sentinel'];
        },
      });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    // Each sentinel knows the replica (from the master's INFO) and the two others (from hellos).
    for (const sentinel of sentinels) {
      await waitFor(`sentinel ${sentinel.port} to know the replica and its peers`, async () => {
        const view = await sentinelView(sentinel, name);
        return view['num-slaves'] === '1' && view['num-other-sentinels'] === '2' && !/down/.test(view.flags ?? '');
      }, 20_000);
    }

    return {
      name,
      master,
      replica,
      sentinels,
      sentinelAddresses: sentinels.map((s) => s.address),
      async waitForMaster(port, timeoutMs = 20_000) {
        for (const sentinel of sentinels) {
          await waitFor(`sentinel ${sentinel.port} to name ${port} the master`, async () => {
            const [, masterPort] = (await ask(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
            return Number(masterPort) === port;
          }, timeoutMs);
        }
      },
      async waitForHealthyReplica(port, timeoutMs = 20_000) {
        for (const sentinel of sentinels) {
          let seen = '';
          await waitFor(`sentinel ${sentinel.port} to count ${port} a healthy replica`, async () => {
            const replicas = (await ask(sentinel.port, 'SENTINEL', 'REPLICAS', name)) as string[][];
            seen = JSON.stringify(replicas);
            return replicas.some((flat) => {
              const view: Record<string, string> = {};
              for (let i = 0; i + 1 < flat.length; i += 2) view[flat[i]!] = flat[i + 1]!;
              return Number(view.port) === port && view.flags === 'slave' && view['master-link-status'] === 'ok';
            });
          }, timeoutMs).catch((error: Error) => {
            throw new Error(`${error.message}; it sees: ${seen}`);
          });
        }
      },
      async detach(node, master) {
        await ask(node.port, 'REPLICAOF', 'NO', 'ONE');
        await waitFor(`${master.port} to have no replica`, async () => {
          const info = infoFields(String(await ask(master.port, 'INFO', 'replication')));
          return info.connected_slaves === '0';
        });
      },
      async reattach(node, master) {
        await ask(node.port, 'REPLICAOF', '127.0.0.1', master.port);
        await waitFor(`${node.port} to sync from ${master.port}`, () => inSync(node));
      },
      async restartAsReplicaOf(node, newMaster) {
        await node.start(dataNodeArgs(node.port, node.dir, minReplicas, newMaster.port));
        await waitFor(`${node.port} to sync from ${newMaster.port}`, () => inSync(node));
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
