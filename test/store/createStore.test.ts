import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { createStore, StoreConnectError } from '../../src/store/createStore.js';
import type { Store } from '../../src/store/types.js';
import { deleteKeys, inspector, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

/** The one factory of stores (src/main.ts and the CLI): built from the settings loadConfig reads. */
describe('createStore', () => {
  const opened: Store[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });
  const open = async (...args: Parameters<typeof createStore>) => {
    const store = await createStore(...args);
    opened.push(store);
    return store;
  };

  it('without REDIS_URL: the embedded store', async () => {
    const store = await open(loadConfig({}), { connect: 'background' });
    expect(store.kind).toBe('memory');
  });

  it('with REDIS_URL: Redis under REDIS_KEY_PREFIX, connected now or in the background', async () => {
    const prefix = uniquePrefix('factory');
    const config = loadConfig({ REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    for (const connect of ['now', 'background'] as const) {
      const store = await open(config, { connect });
      expect(store.kind).toBe('redis');
      await store.increment(`probe-${connect}`, 60_000, Date.now());
    }
    const redis = inspector();
    try {
      expect(await redis.exists(`${prefix}count:probe-now`, `${prefix}count:probe-background`)).toBe(2);
      await deleteKeys(redis, prefix);
    } finally {
      redis.disconnect();
    }
  });

  it('a Redis that cannot be reached: `now` fails naming the setting, never the URL; `background` answers SERVICE_UNAVAILABLE meanwhile', async () => {
    const config = loadConfig({ REDIS_URL: 'redis://:s3cret@127.0.0.1:1', REDIS_KEY_PREFIX: uniquePrefix('down') });
    const failure = await createStore(config, { connect: 'now' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreConnectError);
    expect((failure as StoreConnectError).target).toBe('REDIS_URL');
    expect((failure as Error).message).not.toContain('s3cret');

    const errors: unknown[] = [];
    const store = await open(config, { connect: 'background', onError: (error) => errors.push(error) });
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(errors.length).toBeGreaterThan(0);
  });
});
