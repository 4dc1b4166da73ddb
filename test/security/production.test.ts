import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.js';
import { decorate } from '../helpers/decorate.js';
import { createRedisStore, uniquePrefix } from '../helpers/redis.js';
import { bearer, createTestServer, type TestServer } from '../helpers/testServer.js';

// The refusal to start without REDIS_URL or SIGNING_KEYS (no embedded store, no generated keys)
// is tested on the real process in test/process/startup.test.ts.
describe('production rules (NODE_ENV=production)', () => {
  let server: TestServer;
  let store: Store;
  let real: Store;
  beforeAll(async () => {
    const keyPrefix = uniquePrefix('prod');
    real = await createRedisStore(keyPrefix);
    // A store whose user lookup fails with an internal message: it must never reach a client.
    store = decorate<Store>(real, {
      getUsers: async () => {
        throw new Error('internal detail: redis key tessera:{u:x}:user is corrupt');
      },
    });
    server = await createTestServer({
      store,
      keyPrefix,
      env: {
        NODE_ENV: 'production',
        REDIS_URL: 'redis://127.0.0.1:6379',
        SIGNING_KEYS: '/run/secrets/keys.json',
        SIGNUP_ENABLED: 'true',
      },
    });
  });
  afterAll(async () => {
    await server.close();
    await real.close();
  });

  it('has no introspection', async () => {
    const answer = await server.graphql('{ __schema { queryType { name } } }');
    expect(answer.data).toBeFalsy();
    expect(answer.errors[0]?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('has no Sandbox', async () => {
    const response = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await response.text()).not.toContain('embeddable-sandbox');
  });

  it('gives no field suggestions', async () => {
    const answer = await server.graphql('{ mee { id } }');
    expect(answer.errors[0]?.message).not.toMatch(/Did you mean/);
    expect(answer.errors[0]?.message).not.toContain('"me"');
  });

  it('gives no stack traces or internal messages', async () => {
    const signup = await server.graphql(
      'mutation { signup(email: "prod-user@example.com", password: "password123") { accessToken } }',
    );
    expect(signup.errors).toEqual([]);
    const me = await server.graphql('{ me { email } }', {}, bearer(signup.data!.signup.accessToken));
    expect(me.errors).toHaveLength(1);
    expect(me.errors[0]).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    const text = JSON.stringify(me.errors);
    expect(text).not.toContain('internal detail');
    expect(text).not.toContain('stacktrace');
    const invalid = await server.graphql('{ me { nope } }');
    expect(JSON.stringify(invalid.errors)).not.toContain('stacktrace');
  });

  it('keeps signup off unless SIGNUP_ENABLED=true', async () => {
    const closed = await createTestServer({
      store: 'memory',
      env: { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', SIGNING_KEYS: '/run/secrets/keys.json' },
    });
    const answer = await closed.graphql('mutation { signup(email: "a@example.com", password: "password123") { accessToken } }');
    expect(answer.errors[0]?.extensions.code).toBe('FORBIDDEN');
    await closed.close();
  });
});
