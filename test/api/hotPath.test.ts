import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis.js';
import { createRedisStore, uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, REFRESH, SIGNUP, type TestServer, uniqueEmail } from '../helpers/testServer.js';

/**
 * What the gateway sends to Redis per operation, counted with MONITOR on a redis-server of this
 * file's own. MONITOR prints each command a client sends with that client's address, and each
 * command a Lua script runs with `lua` as the source: those run inside the script's one round trip.
 */
class CommandLog {
  private readonly commands: { source: string; name: string }[] = [];

  private constructor(
    private readonly monitor: Redis,
    private readonly ignored: Set<string>,
  ) {
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      this.commands.push({ source, name: (args[0] ?? '').toLowerCase() });
    });
  }

  /** Watches every client but the gateway's subscriber connection (its heartbeat PINGs) and our own. */
  static async open(url: string): Promise<CommandLog> {
    const inspector = new Redis(url);
    const list = (await inspector.call('CLIENT', 'LIST')) as string;
    const ignored = new Set<string>();
    for (const line of list.split('\n')) {
      const fields = Object.fromEntries(line.trim().split(' ').map((pair) => pair.split('=') as [string, string]));
      if (fields.addr && Number(fields.sub ?? 0) + Number(fields.psub ?? 0) > 0) ignored.add(fields.addr);
    }
    inspector.disconnect();
    return new CommandLog(await new Redis(url).monitor(), ignored);
  }

  /** Commands sent while `work` ran, by name: clients' own, and those run inside scripts. */
  async during(work: () => Promise<void>): Promise<{ sent: string[]; inScripts: number }> {
    await settle();
    this.commands.length = 0;
    await work();
    await settle();
    const seen = this.commands.filter((c) => !this.ignored.has(c.source));
    return { sent: seen.filter((c) => c.source !== 'lua').map((c) => c.name), inScripts: seen.filter((c) => c.source === 'lua').length };
  }

  close(): void {
    this.monitor.disconnect();
  }
}

/** MONITOR lines trail the replies a little. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

describe('the hot path, counted with MONITOR', () => {
  let redis: PrivateRedis;
  let server: TestServer;
  let log: CommandLog;
  let signed: { accessToken: string; refreshToken: string; user: { id: string }; session: { id: string } };

  beforeAll(async () => {
    redis = await startPrivateRedis();
    server = await createTestServer({ store: await createRedisStore(uniquePrefix('hot'), redis.url) });
    const deadline = Date.now() + 5_000;
    while (!server.app.revocations.isHealthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(server.app.revocations.isHealthy).toBe(true);
    const answer = await server.graphql(SIGNUP, { email: uniqueEmail(), password: 'correct horse battery' });
    expect(answer.errors).toEqual([]);
    signed = answer.data!.signup;
    // Steady state: the revocation feed trusts a session once the store has confirmed it (one read).
    const first = await server.graphql('{ me { id } }', {}, bearer(signed.accessToken));
    expect(first.errors).toEqual([]);
    log = await CommandLog.open(redis.url);
  });

  afterAll(async () => {
    log?.close();
    await server?.close();
    await redis?.dispose();
  });

  it('an authenticated `me { id }` in steady state sends no command to Redis: the token is checked in memory, revocation comes from the feed', async () => {
    const { sent, inScripts } = await log.during(async () => {
      for (let i = 0; i < 20; i++) {
        const me = await server.graphql('{ me { id } }', {}, bearer(signed.accessToken));
        expect(me.data).toEqual({ me: { id: signed.user.id } });
      }
    });
    expect(sent).toEqual([]);
    expect(inScripts).toBe(0);
  });

  it('nor does one with a token never seen before (only the signature check is added)', async () => {
    const tokens = await Promise.all(
      Array.from({ length: 10 }, () =>
        server.app.accessTokens.issue({ userId: signed.user.id, sessionId: signed.session.id, roles: ['user'] }),
      ),
    );
    const { sent } = await log.during(async () => {
      for (const { token } of tokens) {
        const me = await server.graphql('{ me { id } }', {}, bearer(token));
        expect(me.data).toEqual({ me: { id: signed.user.id } });
      }
    });
    expect(sent).toEqual([]);
  });

  it('the count is real: a field the token does not carry reads the user record (one HMGET)', async () => {
    const { sent } = await log.during(async () => {
      const me = await server.graphql('{ me { id email } }', {}, bearer(signed.accessToken));
      expect(me.errors).toEqual([]);
    });
    expect(sent).toEqual(['hmget']);
  });

  it('a refresh is one round trip: the rotation script, which also reads the user record', async () => {
    let token = signed.refreshToken;
    const refresh = async () => {
      const answer = await server.graphql(REFRESH, { t: token });
      expect(answer.errors).toEqual([]);
      token = answer.data!.refreshToken.refreshToken;
    };
    await refresh(); // the script is loaded (ioredis sends EVAL once after NOSCRIPT)
    const { sent, inScripts } = await log.during(async () => {
      for (let i = 0; i < 5; i++) await refresh();
    });
    expect(sent).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha']);
    expect(inScripts).toBeGreaterThan(0);
  });
});
