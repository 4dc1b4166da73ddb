import type { Redis } from 'ioredis';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { RedisKeys } from '../../src/store/redisKeys.js';
import type { RedisStore } from '../../src/store/redisStore.js';
import { createRedisClients } from '../../src/store/redisTopology.js';
import { uniquePrefix } from '../helpers/redis.js';
import { decodeSession } from '../../src/store/redisRecords.js';
import { ask, askBuffer } from '../helpers/redisCluster.js';
import { sleep, startRedisProcess } from '../helpers/redisProcess.js';
import { startSentinelGroup, type TestSentinelGroup } from '../helpers/redisSentinel.js';
import { bearer, createTestServer, REFRESH, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { topologyStores } from '../helpers/topologyStores.js';
import { rotation, sessionInput, storeContract, LOGOUT } from '../store/storeContract.js';

/**
 * A Sentinel-managed Redis (REDIS_SENTINELS, REDIS_SENTINEL_NAME) with REDIS_MIN_REPLICAS_ACK=1:
 * a write is acknowledged only once the replica has it, and when the master dies under a steady
 * stream of refreshes the gateway answers SERVICE_UNAVAILABLE in the gap (never a wrong answer),
 * follows the failover, and loses no rotation it acknowledged.
 */

const PASSWORD = 'correct horse battery';
let group: TestSentinelGroup;
const stores = topologyStores(() => ({ kind: 'sentinel', sentinels: group.sentinelAddresses, name: group.name }));

const sentinelStore = (keyPrefix: string, minReplicasAck = 1): Promise<RedisStore> => stores.open(keyPrefix, minReplicasAck);

/** The generation of the refresh token a data node holds for the session (-1: it has no such session). */
async function storedGeneration(port: number, keys: RedisKeys, ref: { userId: string; sessionId: string }): Promise<number> {
  const record = (await askBuffer(port, 'GET', keys.session(ref.userId, ref.sessionId))) as Buffer | null;
  return record ? decodeSession(ref.userId, ref.sessionId, record).session.generation : -1;
}

beforeAll(async () => {
  group = await startSentinelGroup({ name: 'tessera-test' });
}, 40_000);

afterAll(async () => {
  await stores.closeAll();
  await group?.dispose();
}, 30_000);

describe('RedisStore on a Sentinel-managed master, acknowledging after WAIT 1', () => {
  let store: RedisStore;
  let peer: RedisStore;
  beforeAll(async () => {
    const prefix = uniquePrefix('sentinel-store');
    store = await sentinelStore(prefix);
    peer = await sentinelStore(prefix);
  });
  storeContract({ store: () => store, peer: () => peer });
});

describe('REDIS_MIN_REPLICAS_ACK', () => {
  it('acknowledges a write only once the replica has it', async () => {
    const prefix = uniquePrefix('sentinel-ack');
    const store = await sentinelStore(prefix);
    const other = await sentinelStore(prefix);
    const input = sessionInput();
    await store.createSession(input);

    group.replica.freeze();
    try {
      const started = Date.now();
      // Applied on the master, but the replica does not confirm it: not acknowledged, and fast.
      await expect(store.rotateSession(rotation(input))).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(1_000);
      // The client retries (here through another connection that never wrote): the grace answer
      // reports that unconfirmed rotation, so it is not acknowledged either while the replica lacks it.
      const retry = rotation(input, { nextSecretHash: 'hash-retry', sealedSuccessor: 'sealed-retry' });
      await expect(other.rotateSession(retry)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(other.revokeSession({ userId: input.userId, sessionId: 'none' }, input.now, LOGOUT)).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
    } finally {
      group.replica.thaw();
    }
    // Once the replica has it, the same retry gets the successor of the first attempt.
    const retried = await other.rotateSession(rotation(input, { nextSecretHash: 'hash-retry', sealedSuccessor: 'sealed-retry' }));
    expect(retried).toMatchObject({ status: 'grace', sealedSuccessor: 'sealed-1' });
    // What was acknowledged is on the replica.
    expect(await storedGeneration(group.replica.port, new RedisKeys(prefix), input)).toBe(1);
  });

  it("with the servers' min-replicas-to-write, a write no replica can confirm is not even applied", async () => {
    const store = await sentinelStore(uniquePrefix('sentinel-minrep'));
    const { master, replica } = group;
    const outage = async (attempt: () => Promise<unknown>) => {
      await group.detach(replica, master);
      try {
        await expect(attempt()).rejects.toBeInstanceOf(StoreUnavailableError);
      } finally {
        await group.reattach(replica, master);
      }
    };
    const later = (input: ReturnType<typeof sessionInput>) => rotation(input, { now: input.now + 10 * 60_000 });

    // min-replicas-to-write 1: refused outright (NOREPLICAS), so the client's retry, even long
    // after the grace window, is a plain rotation.
    const kept = sessionInput();
    await store.createSession(kept);
    await outage(() => store.rotateSession(rotation(kept)));
    expect((await store.rotateSession(later(kept))).status).toBe('rotated');

    // Without it the master applies the rotation that WAIT then cannot confirm: a retry within the
    // grace window would be answered, but one after it counts as a replay and ends the session.
    await ask(master.port, 'CONFIG', 'SET', 'min-replicas-to-write', '0');
    try {
      const lost = sessionInput();
      await store.createSession(lost);
      await outage(() => store.rotateSession(rotation(lost)));
      expect((await store.rotateSession(later(lost))).status).toBe('reused');
    } finally {
      await ask(master.port, 'CONFIG', 'SET', 'min-replicas-to-write', '1');
    }
  });

  it('with 0 (the default) nothing waits for the replica', async () => {
    const store = await sentinelStore(uniquePrefix('sentinel-noack'), 0);
    group.replica.freeze();
    try {
      const input = sessionInput();
      await store.createSession(input);
      expect((await store.rotateSession(rotation(input))).status).toBe('rotated');
    } finally {
      group.replica.thaw();
    }
  });
});

/**
 * A TCP front for one sentinel that can hold what a client sends asking for the master's address
 * (`SENTINEL get-master-addr-by-name`) until `hold` resolves, once.
 */
async function sentinelFront(sentinelPort: number) {
  let hold: (() => Promise<void>) | null = null;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(sentinelPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.pipe(client);
    let queue = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const held = hold && /get-master-addr-by-name/i.test(chunk.toString()) ? hold : null;
      if (held) hold = null;
      queue = queue.then(async () => {
        if (held) await held();
        upstream.write(chunk);
      });
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    address: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    holdNextMasterQuery(until: () => Promise<void>) {
      hold = until;
    },
    close: () =>
      new Promise<void>((done) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => done());
      }),
  };
}

describe('the connection to the master drops, and a +switch-master arrives while the client asks where the master is', () => {
  it('the client connects again (ioredis alone would stay ended: every command "Connection is closed.")', async () => {
    // A plain Redis listed among the sentinels: the client's failover detector subscribes to it
    // too, so the test can announce a +switch-master there at the moment it chooses.
    const announcer = await startRedisProcess({
      label: 'sentinel-announcer',
      args: (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    });
    const front = await sentinelFront(group.sentinels[0]!.port);
    const { client } = createRedisClients({
      topology: { kind: 'sentinel', sentinels: [front.address, announcer.address], name: group.name },
      url: null,
      onError: () => undefined,
    });
    client.on('error', () => undefined);
    const listeners = async () => Number(((await ask(announcer.port, 'PUBSUB', 'NUMSUB', '+switch-master')) as [string, number])[1]);
    try {
      await client.connect();
      await expect.poll(listeners).toBe(1);
      const [, masterPort] = (await ask(group.sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', group.name)) as [string, string];

      // While the reconnection asks the sentinel for the master: the announcement, delivered to
      // whoever still listens (a listener acts on it and leaves) before the question goes on.
      front.holdNextMasterQuery(async () => {
        await ask(announcer.port, 'PUBLISH', '+switch-master', `${group.name} 127.0.0.1 ${masterPort} 127.0.0.1 ${masterPort}`);
        await expect.poll(listeners).toBe(0);
      });
      const dropped = once(client, 'close');
      await ask(Number(masterPort), 'CLIENT', 'KILL', 'ID', String(await (client as Redis).client('ID')));
      await dropped;

      await expect.poll(() => client.status, { timeout: 10_000 }).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
      await front.close();
      await announcer.dispose();
    }
  }, 20_000);
});

describe('a failover under a steady stream of refreshes', () => {
  const prefix = uniquePrefix('sentinel-api');
  const keys = new RedisKeys(prefix);
  let server: TestServer;
  let connection: Redis;
  /** The port of the data node the gateway's command connection is on (CLIENT INFO's laddr). */
  const connectedTo = async () => {
    const info = await connection.call('CLIENT', 'INFO').catch(() => '');
    return Number(/laddr=[^ ]*:(\d+)/.exec(String(info))?.[1] ?? -1);
  };

  beforeAll(async () => {
    const store = await sentinelStore(prefix);
    // Its command connection, to see which data node it is on.
    connection = stores.clientOf(store) as Redis;
    server = await createTestServer({
      store,
      keyPrefix: prefix,
      // A retry of a rotation that was applied but not acknowledged must fall within the grace window.
      env: { REFRESH_REUSE_GRACE: '30s' },
    });
  });
  afterAll(() => server?.close());

  type Phase = 'before' | 'gap' | 'after';
  const generation = (token: string) => Number(token.split('.')[2]);

  /** `count` clients, each refreshing its own session in a loop, always with the last token it was given. */
  async function refreshStreams(count: number) {
    let phase: Phase = 'before';
    let running = true;
    const chains = await Promise.all(
      Array.from({ length: count }, async () => {
        const answer = await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD });
        expect(answer.errors).toEqual([]);
        const p = answer.data!.signup;
        return {
          userId: p.user.id as string,
          sessionId: p.session.id as string,
          /** The last refresh token the gateway acknowledged: a retry after SERVICE_UNAVAILABLE presents it again. */
          token: p.refreshToken as string,
          answers: [] as { phase: Phase; code: string }[],
        };
      }),
    );
    const streams = chains.map(async (chain) => {
      while (running) {
        const at = phase;
        let code: string;
        try {
          const answer = await server.graphql(REFRESH, { t: chain.token });
          const error = answer.errors[0]?.extensions;
          code = error ? [error.code, error.reason].filter(Boolean).join('/') : 'ok';
          if (code === 'ok') chain.token = answer.data!.refreshToken.refreshToken;
        } catch (error) {
          code = `no answer: ${String(error)}`;
        }
        chain.answers.push({ phase: at, code });
        if (code !== 'ok') await sleep(25);
      }
    });
    const everyChainSucceeded = (times: number, inPhase: Phase) =>
      chains.every((c) => c.answers.filter((a) => a.phase === inPhase && a.code === 'ok').length >= times);
    return {
      chains,
      setPhase: (next: Phase) => (phase = next),
      everyChainSucceeded,
      async stop() {
        running = false;
        await Promise.all(streams);
      },
      /** What was answered, by phase: for the log. */
      summary() {
        const counts: Record<string, number> = {};
        for (const a of chains.flatMap((c) => c.answers)) counts[`${a.phase} ${a.code}`] = (counts[`${a.phase} ${a.code}`] ?? 0) + 1;
        return counts;
      },
      /** Everything but a success or SERVICE_UNAVAILABLE. */
      wrongAnswers: () => chains.flatMap((c) => c.answers).filter((a) => a.code !== 'ok' && a.code !== 'SERVICE_UNAVAILABLE'),
      gapUnavailable: () => chains.flatMap((c) => c.answers).filter((a) => a.phase === 'gap' && a.code === 'SERVICE_UNAVAILABLE').length,
    };
  }

  /** Every chain's rotations are on these data nodes, and its latest token still refreshes. */
  async function expectNothingLost(chains: { userId: string; sessionId: string; token: string }[], ports: number[]) {
    for (const chain of chains) {
      for (const port of ports) {
        await expect.poll(() => storedGeneration(port, keys, chain)).toBeGreaterThanOrEqual(generation(chain.token));
      }
      // (Retrying SERVICE_UNAVAILABLE, as a client does: nothing else may come back.)
      let last = await server.graphql(REFRESH, { t: chain.token });
      for (let i = 0; i < 20 && last.errors[0]?.extensions.code === 'SERVICE_UNAVAILABLE'; i++) {
        await sleep(100);
        last = await server.graphql(REFRESH, { t: chain.token });
      }
      expect(last.errors).toEqual([]);
    }
  }

  it('master killed: only successes or SERVICE_UNAVAILABLE, the new master is followed, no acknowledged rotation is lost', async () => {
    const timings: Record<string, number> = {};
    // The sentinels promote only a replica they have seen healthy (the tests above detached it).
    await group.waitForHealthyReplica(group.replica.port);
    const run = await refreshStreams(6);
    try {
      await expect.poll(() => run.everyChainSucceeded(3, 'before'), { timeout: 10_000 }).toBe(true);

      const oldMaster = group.master;
      const newMaster = group.replica;
      const ackedAtKill = run.chains.map((c) => generation(c.token));
      const killedAt = Date.now();
      await oldMaster.stop('SIGKILL');
      run.setPhase('gap');
      await group.waitForMaster(newMaster.port);
      timings.failoverMs = Date.now() - killedAt;
      // The crashed node comes back (empty) as a replica of the new master: until then no write
      // can be confirmed by a replica, so none is acknowledged.
      await group.restartAsReplicaOf(oldMaster, newMaster);
      timings.replicaBackMs = Date.now() - killedAt;
      run.setPhase('after');
      await expect.poll(() => run.everyChainSucceeded(1, 'after'), { timeout: 20_000 }).toBe(true);
      timings.allChainsRefreshingMs = Date.now() - killedAt;
      await expect.poll(() => run.everyChainSucceeded(3, 'after'), { timeout: 20_000 }).toBe(true);
      await run.stop();

      expect(run.wrongAnswers()).toEqual([]);
      // The gap was real: the gateway answered SERVICE_UNAVAILABLE while there was no master.
      expect(run.gapUnavailable()).toBeGreaterThan(0);
      // Each chain went on from the rotations acknowledged before the kill, and lost none since.
      run.chains.forEach((c, i) => expect(generation(c.token)).toBeGreaterThan(ackedAtKill[i]!));
      await expectNothingLost(run.chains, [newMaster.port, oldMaster.port]);
      // The gateway is still serving.
      expect((await fetch(`${server.url}/.well-known/jwks.json`)).status).toBe(200);
    } finally {
      await run.stop();
      console.log('[sentinel] kill: refresh answers by phase', run.summary(), 'ms after the kill', timings);
    }
  }, 60_000);

  it('a switchover (SENTINEL FAILOVER, the old master demoted alive): followed the same way', async () => {
    const timings: Record<string, number> = {};
    const reader = (await server.graphql(SIGNUP, { email: uniqueEmail(), password: PASSWORD })).data!.signup;
    const run = await refreshStreams(4);
    try {
      await expect.poll(() => run.everyChainSucceeded(3, 'before'), { timeout: 10_000 }).toBe(true);
      // After the test above the first replica is the master, and the first master its replica.
      const [from, to] = [group.replica, group.master];
      // The sentinels promote only a replica they have seen healthy since it came back.
      await group.waitForHealthyReplica(to.port);
      const startedAt = Date.now();
      expect(await connectedTo()).toBe(from.port);
      await ask(group.sentinels[0]!.port, 'SENTINEL', 'FAILOVER', group.name);
      run.setPhase('gap');
      await group.waitForMaster(to.port);
      timings.switchedMs = Date.now() - startedAt;
      // The gateway left the old master, still up, as soon as the sentinels announced the switch
      // (the old master is turned into a replica only some 10 s later).
      await expect.poll(connectedTo, { timeout: 3_000 }).toBe(to.port);
      timings.gatewayOnNewMasterMs = Date.now() - startedAt;
      // The new master has no replica yet (refreshes answer SERVICE_UNAVAILABLE), but what only
      // reads still works: an access token is checked against the store and accepted.
      const me = await server.graphql('{ me { id } }', {}, bearer(reader.accessToken));
      expect(me.data, `errors: ${JSON.stringify(me.errors)}`).toEqual({ me: { id: reader.user.id } });
      expect(run.everyChainSucceeded(1, 'after')).toBe(false);
      run.setPhase('after');
      await expect.poll(() => run.everyChainSucceeded(1, 'after'), { timeout: 20_000 }).toBe(true);
      timings.firstSuccessEverywhereMs = Date.now() - startedAt;
      await expect.poll(() => run.everyChainSucceeded(3, 'after'), { timeout: 20_000 }).toBe(true);
      timings.allChainsRefreshingMs = Date.now() - startedAt;
      await run.stop();

      expect(run.wrongAnswers()).toEqual([]);
      await expectNothingLost(run.chains, [to.port, from.port]);
    } finally {
      await run.stop();
      console.log('[sentinel] switchover: refresh answers by phase', run.summary(), 'ms after SENTINEL FAILOVER', timings);
    }
  }, 60_000);
});
