import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { newId } from '../../src/ids.js';
import { RedisKeys } from '../../src/store/redisKeys.js';
import { RedisRevocationSubscriber } from '../../src/store/redisRevocationSubscriber.js';
import type { RedisStore } from '../../src/store/redisStore.js';
import { createRedisClients } from '../../src/store/redisTopology.js';
import { uniquePrefix } from '../helpers/redis.js';
import { ask, infoFields, startRedisCluster, type TestCluster } from '../helpers/redisCluster.js';
import type { RedisProcess } from '../helpers/redisProcess.js';
import { bearer, createTestServer, LOGIN, REFRESH, signUp, type TestServer, uniqueEmail } from '../helpers/testServer.js';
import { topologyStores } from '../helpers/topologyStores.js';
import { accountContract } from '../store/accountContract.js';
import { eventContract } from '../store/eventContract.js';
import { factorContract } from '../store/factorContract.js';
import { identityContract } from '../store/identityContract.js';
import { rotation, sessionInput, storeContract, T0, LOGOUT, TEST_ORIGIN } from '../store/storeContract.js';
import { auditLog, startGateway } from '../events/support.js';
import { startWebhookReceiver, webhookSecret } from '../helpers/webhookReceiver.js';

/**
 * The store and the API on a real 3-master Redis Cluster (REDIS_CLUSTER_NODES): every script
 * stays in one slot (no CROSSSLOT), rotation is still atomic, the revocation feed hears what
 * scripts publish on any master, and WAIT goes to the master that owns the user's slot.
 */

const PASSWORD = 'correct horse battery';
const SIGNUP_MUTATION = 'mutation($email: String!, $password: String!) { signup(email: $email, password: $password) { accessToken } }';

/** The key prefix a store of this file was opened with. */
const ownPrefix = (s: RedisStore) => (s as unknown as { keys: RedisKeys }).keys.prefix;
const prefix = uniquePrefix('cluster');
const keys = new RedisKeys(prefix);
let cluster: TestCluster;
const stores = topologyStores(() => ({ kind: 'cluster', nodes: cluster.addresses }));
let store: RedisStore;
let peer: RedisStore;

const clusterStore = (keyPrefix: string, minReplicasAck = 0, options = {}): Promise<RedisStore> =>
  stores.open(keyPrefix, minReplicasAck, options);

/** A user id whose keys live on this node. */
async function userOn(node: RedisProcess, keyPrefix = prefix): Promise<string> {
  const k = new RedisKeys(keyPrefix);
  for (let i = 0; i < 200; i++) {
    const id = newId();
    if ((await cluster.nodeOf(k.user(id))) === node) return id;
  }
  throw new Error(`no user id landed on ${node.port}`);
}

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  store = await clusterStore(prefix);
  peer = await clusterStore(prefix);
}, 60_000);

afterAll(async () => {
  await stores.closeAll();
  await cluster?.dispose();
}, 30_000);

describe('RedisStore on a Redis Cluster', () => {
  storeContract({ store: () => store, peer: () => peer });
  // The account steps stay in the user's slot; the email claim and the admin index are steps of their own.
  accountContract({ store: () => store, peer: () => peer });
  eventContract({ store: () => store, fresh: (options) => clusterStore(uniquePrefix('cluster-events'), 0, options) });
  factorContract({ store: () => store });
  // Each identity step stays in one slot: the user's, or the provider+subject index's.
  identityContract(() => store);

  it("appends each user's events to the audit stream of the user's own slot, and reads them all as one log", async () => {
    const own = await clusterStore(uniquePrefix('cluster-audit'));
    const inputs = await Promise.all(cluster.nodes.map(async (node) => sessionInput({ userId: await userOn(node, ownPrefix(own)) })));
    // Stream ids are each master's own milliseconds: appends to different masters within one
    // millisecond have no defined order between them, so the three are made a few ms apart.
    for (const input of inputs) {
      await own.createSession(input);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const streams = await own.deliveryStreams();
    expect(streams).toHaveLength(3);
    const auditKeys = new RedisKeys(ownPrefix(own), true);
    for (const input of inputs) {
      const stream = auditKeys.auditStreamFor(auditKeys.user(input.userId));
      expect(streams).toContain(stream);
      const [streamSlot, userSlot] = await Promise.all(
        [stream, auditKeys.user(input.userId)].map((k) => ask(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', k)),
      );
      expect(streamSlot).toBe(userSlot);
    }
    // One stream on each master, merged newest first.
    const nodes = await Promise.all(streams.map((s) => cluster.nodeOf(s)));
    expect(new Set(nodes).size).toBe(3);
    const page = await own.auditEvents({ first: 2, after: null });
    const rest = await own.auditEvents({ first: 10, after: page.endCursor });
    const ids = [...page.events, ...rest.events].map((e) => e.event.sessionId);
    expect(ids).toEqual([...inputs].reverse().map((i) => i.sessionId));
    expect(rest.hasNextPage).toBe(false);
  });

  it("keeps a user's keys in one slot", async () => {
    const id = newId();
    const slots = await Promise.all(
      [keys.user(id), keys.session(id, newId()), keys.ackMarker(id)].map((k) =>
        ask(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', k),
      ),
    );
    expect(new Set(slots).size).toBe(1);
  });

  it('reads the sessions and users of users on different masters in one call', async () => {
    const inputs = await Promise.all(cluster.nodes.map(async (node) => sessionInput({ userId: await userOn(node) })));
    for (const input of inputs) await store.createSession(input);
    const rows = await store.getSessions(inputs, T0 + 1);
    expect(rows.map((r) => r?.id)).toEqual(inputs.map((i) => i.sessionId));
    const users = inputs.map((input, i) => ({
      id: input.userId,
      email: `${newId().toLowerCase()}-${i}@example.com`,
      passwordHash: '$argon2id$fake',
      roles: ['user'],
      createdAt: T0,
      emailVerified: false,
      disabled: false,
    }));
    for (const u of users) expect(await store.createUser(u, TEST_ORIGIN)).toBe('created');
    expect(await peer.getUsers([...users.map((u) => u.id), newId()])).toEqual([...users, null]);
  });

  it('rotation stays atomic across two gateways on two Cluster clients, on every master', async () => {
    for (const node of cluster.nodes) {
      const input = sessionInput({ userId: await userOn(node) });
      await store.createSession(input);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? peer : store).rotateSession(rotation(input, { nextSecretHash: `h-${i}`, sealedSuccessor: `s-${i}` })),
        ),
      );
      expect(results.filter((r) => r.status === 'rotated')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'grace')).toHaveLength(11);
    }
  });

  it('the revocation feed, on one node, hears what scripts publish on every master', async () => {
    const { createSubscriber } = createRedisClients({ topology: { kind: 'cluster', nodes: cluster.addresses }, url: null });
    const connection = createSubscriber();
    connection.on('error', () => undefined);
    const received: string[] = [];
    let healthy = false;
    const subscriber = new RedisRevocationSubscriber(connection, keys.revocationChannel(), {
      onRevoked: (ids) => received.push(...ids),
      onHealth: (ok) => (healthy = ok),
    });
    try {
      await subscriber.start();
      await expect.poll(() => healthy).toBe(true);
      const listeningOn = () => Number((connection as { options: { port?: number } }).options.port);
      const revokeOnEveryMaster = async () => {
        const revoked: { id: string; node: number }[] = [];
        for (const node of cluster.nodes) {
          const input = sessionInput({ userId: await userOn(node) });
          await store.createSession(input);
          expect(await store.revokeSession(input, T0 + 1, LOGOUT)).toBe(true);
          revoked.push({ id: input.sessionId, node: node.port });
        }
        // Two of the three were published on a node other than the one listened to.
        expect(revoked.filter((r) => r.node !== listeningOn())).toHaveLength(2);
        await expect.poll(() => received).toEqual(expect.arrayContaining(revoked.map((r) => r.id)));
      };
      await revokeOnEveryMaster();

      // Its connection is cut: the feed says so, moves to the next node, and hears everything again.
      const first = listeningOn();
      await ask(first, 'CLIENT', 'KILL', 'TYPE', 'pubsub');
      await expect.poll(() => healthy).toBe(false);
      await expect.poll(() => healthy, { timeout: 5_000 }).toBe(true);
      expect(listeningOn()).not.toBe(first);
      await revokeOnEveryMaster();
    } finally {
      await subscriber.close();
    }
  });
});

describe('the GraphQL API on a Redis Cluster', () => {
  const apiPrefix = uniquePrefix('cluster-api');
  let server: TestServer;

  beforeAll(async () => {
    server = await createTestServer({ store: await clusterStore(apiPrefix), keyPrefix: apiPrefix });
  });
  afterAll(() => server.close());

  const signup = (email?: string) => signUp(server, email, PASSWORD);

  it('signup, login, me and sessions', async () => {
    const email = uniqueEmail();
    const first = await signup(email);
    const login = await server.graphql(LOGIN, { email, password: PASSWORD });
    expect(login.errors).toEqual([]);
    const second = login.data!.login;
    expect(second.user.id).toBe(first.user.id);
    const me = await server.graphql('{ me { id email } }', {}, bearer(second.accessToken));
    expect(me.data).toEqual({ me: { id: first.user.id, email } });
    const sessions = await server.graphql('{ sessions { id current } }', {}, bearer(second.accessToken));
    expect(sessions.data!.sessions).toEqual([
      { id: second.session.id, current: true },
      { id: first.session.id, current: false },
    ]);
  });

  it('refresh rotates; the old token within the grace window gets the same successor', async () => {
    const p = await signup();
    const r1 = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(r1.errors).toEqual([]);
    const retry = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(retry.errors).toEqual([]);
    expect(retry.data!.refreshToken.refreshToken).toBe(r1.data!.refreshToken.refreshToken);
    const me = await server.graphql('{ me { id } }', {}, bearer(r1.data!.refreshToken.accessToken));
    expect(me.data).toEqual({ me: { id: p.user.id } });
  });

  it('concurrent refreshes with one token: one rotation, everyone gets the same successor', async () => {
    const p = await signup();
    const answers = await Promise.all(Array.from({ length: 8 }, () => server.graphql(REFRESH, { t: p.refreshToken })));
    for (const a of answers) expect(a.errors).toEqual([]);
    expect(new Set(answers.map((a) => a.data!.refreshToken.refreshToken)).size).toBe(1);
  });

  it('a replayed older token is REUSED and revokes the session', async () => {
    const p = await signup();
    const r1 = (await server.graphql(REFRESH, { t: p.refreshToken })).data!.refreshToken;
    const r2 = (await server.graphql(REFRESH, { t: r1.refreshToken })).data!.refreshToken;
    const replay = await server.graphql(REFRESH, { t: p.refreshToken });
    expect(replay.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REFRESH_TOKEN_REUSED' });
    const me = await server.graphql('{ me { id } }', {}, bearer(r2.accessToken));
    expect(me.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
    expect((await server.graphql(REFRESH, { t: r2.refreshToken })).errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
  });

  it('revokeSession ends the session at once', async () => {
    const p = await signup();
    expect((await server.graphql('mutation { revokeSession }', {}, bearer(p.accessToken))).data).toEqual({ revokeSession: true });
    const me = await server.graphql('{ me { id } }', {}, bearer(p.accessToken));
    expect(me.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'SESSION_REVOKED' });
    expect((await server.graphql(REFRESH, { t: p.refreshToken })).errors[0]?.extensions.reason).toBe('REFRESH_TOKEN_INVALID');
  });

  it('revokeAllSessions ends every session of the caller', async () => {
    const email = uniqueEmail();
    const a = await signup(email);
    const b = (await server.graphql(LOGIN, { email, password: PASSWORD })).data!.login;
    const all = await server.graphql('mutation { revokeAllSessions }', {}, bearer(a.accessToken));
    expect(all.data).toEqual({ revokeAllSessions: 2 });
    for (const token of [a.accessToken, b.accessToken]) {
      expect((await server.graphql('{ me { id } }', {}, bearer(token))).errors[0]?.extensions.reason).toBe('SESSION_REVOKED');
    }
  });

  it('logged nothing about slots', () => {
    const logs = server.logs.join('\n');
    expect(logs).not.toMatch(/CROSSSLOT|same slot|non local key|slots allocation group/i);
    expect(logs).not.toMatch(/"level":(50|60)/);
  });
});

describe('webhook delivery on a Redis Cluster', () => {
  it('delivers the events of users in every slot, from the per-slot streams', async () => {
    const hookPrefix = uniquePrefix('cluster-hooks');
    const secret = webhookSecret();
    const receiver = await startWebhookReceiver(secret);
    const env = {
      REDIS_KEY_PREFIX: hookPrefix,
      AUDIT_WEBHOOK_URL: receiver.url,
      AUDIT_WEBHOOK_SECRET: secret,
    };
    const gateway = await startGateway(await clusterStore(hookPrefix), env);
    // A second gateway that appends nothing itself: it finds the streams by SCAN and shares the work.
    const other = await startGateway(await clusterStore(hookPrefix), env);
    try {
      receiver.setMode('error');
      for (let i = 0; i < 6; i++) {
        const answer = await gateway.graphql(SIGNUP_MUTATION, { email: uniqueEmail(), password: PASSWORD });
        expect(answer.errors).toEqual([]);
      }
      await expect.poll(() => receiver.attempts, { timeout: 5_000 }).toBeGreaterThan(0);
      receiver.setMode('ok');
      const log = await auditLog(gateway.store);
      expect(log).toHaveLength(12);
      expect(new Set(await gateway.store.deliveryStreams()).size).toBeGreaterThan(1);
      await expect.poll(() => new Set(receiver.delivered.map((d) => d.id)).size, { timeout: 15_000 }).toBe(12);
      expect(new Set(receiver.delivered.map((d) => d.id))).toEqual(new Set(log.map((e) => e.id)));
      expect(receiver.rejected).toBe(0);
      const logs = [...gateway.logs, ...other.logs].join('\n');
      expect(logs).not.toMatch(/CROSSSLOT|same slot|non local key/i);
    } finally {
      await gateway.close();
      await other.close();
      await receiver.close();
    }
  }, 30_000);
});

describe('WAIT on a Redis Cluster', () => {
  it("goes to the master that owns the user's slot", async () => {
    const [withReplica, withoutReplica] = cluster.nodes as [RedisProcess, RedisProcess, RedisProcess];
    await cluster.addReplica(withReplica);
    const ackPrefix = uniquePrefix('cluster-ack');
    const acking = await clusterStore(ackPrefix, 1);
    const waits = async (node: RedisProcess) =>
      Number(/calls=(\d+)/.exec(infoFields(String(await ask(node.port, 'INFO', 'commandstats'))).cmdstat_wait ?? '')?.[1] ?? 0);

    // On the master with a replica: acknowledged, and the WAIT ran there.
    const here = sessionInput({ userId: await userOn(withReplica, ackPrefix) });
    const before = await waits(withReplica);
    await acking.createSession(here);
    const rotated = await acking.rotateSession(rotation(here));
    expect(rotated.status).toBe('rotated');
    expect(await acking.revokeSession(here, T0 + 2, LOGOUT)).toBe(true);
    expect((await waits(withReplica)) - before).toBe(3);

    // The node forgot its scripts (SCRIPT FLUSH): the write is sent again with the script's source.
    const noscripts = async () =>
      Number(/count=(\d+)/.exec(infoFields(String(await ask(withReplica.port, 'INFO', 'errorstats'))).errorstat_NOSCRIPT ?? '')?.[1] ?? 0);
    const noscriptsBefore = await noscripts();
    await ask(withReplica.port, 'SCRIPT', 'FLUSH');
    const again = sessionInput({ userId: here.userId });
    await acking.createSession(again);
    expect((await acking.getSessions([again], T0 + 1))[0]?.id).toBe(again.sessionId);
    expect((await noscripts()) - noscriptsBefore).toBe(1);

    // On a master without one: WAIT (there) finds no replica, and the write is not acknowledged.
    const there = sessionInput({ userId: await userOn(withoutReplica, ackPrefix) });
    const beforeThere = await waits(withoutReplica);
    await expect(acking.createSession(there)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect((await waits(withoutReplica)) - beforeThere).toBe(1);
  }, 30_000);
});

describe('the Cluster after all of the above', () => {
  it("spread the users' keys over every master, and no node ever answered CROSSSLOT", async () => {
    for (const node of cluster.nodes) {
      const [, found] = (await ask(node.port, 'SCAN', 0, 'MATCH', `tessera-cluster*`, 'COUNT', 100_000)) as [string, string[]];
      expect(found.length, `keys on ${node.port}`).toBeGreaterThan(0);
      const errors = infoFields(String(await ask(node.port, 'INFO', 'errorstats')));
      expect(Object.keys(errors).filter((k) => /CROSSSLOT/i.test(k)), `errors on ${node.port}`).toEqual([]);
    }
  });
});

describe('tessera users add on a Cluster', () => {
  it('creates the user through REDIS_CLUSTER_NODES', async () => {
    const { runCli } = await import('../../src/cli/run.js');
    let stdout = '';
    let stderr = '';
    const email = uniqueEmail();
    const code = await runCli(['users', 'add', '--email', email, '--roles', 'user,admin'], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      env: {
        REDIS_CLUSTER_NODES: cluster.addresses.map((a) => `${a.host}:${a.port}`).join(','),
        REDIS_KEY_PREFIX: prefix,
      },
      cwd: process.cwd(),
      readStdin: async () => `${PASSWORD}\n`,
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const user = await store.findUserByEmail(email);
    expect(user?.id).toBe(stdout.trim());
    expect(user?.roles).toEqual(['user', 'admin']);
  }, 20_000);
});
