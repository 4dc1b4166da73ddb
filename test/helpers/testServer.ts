import { request } from 'node:http';
import { expect } from 'vitest';
import { Writable } from 'node:stream';
import { createApp, type App, type AppDeps } from '../../src/app.js';
import type { Clock } from '../../src/clock.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { MemoryStore } from '../../src/store/memoryStore.js';
import type { Store } from '../../src/store/types.js';
import type { KeySet } from '../../src/tokens/keys.js';
import { PasswordHasher } from '../../src/users/passwords.js';
import { testKeySet } from './keys.js';
import { createRedisStore, deleteKeys, inspector, uniquePrefix } from './redis.js';

let hasher: Promise<PasswordHasher> | undefined;

export interface GraphQLAnswer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data: T | null;
  errors: { message: string; path?: string[]; extensions: Record<string, unknown> }[];
}

export interface TestServer {
  url: string;
  app: App;
  store: Store;
  keys: KeySet;
  config: Config;
  /** Everything the gateway logged. */
  logs: string[];
  graphql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<GraphQLAnswer<T>>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  store?: 'redis' | 'memory' | Store;
  env?: Record<string, string>;
  clock?: Clock;
  keys?: KeySet;
  keyPrefix?: string;
  passwords?: PasswordHasher;
  /** More of the app's dependencies (metrics, tracing …). */
  deps?: Partial<AppDeps>;
  /** Listen on this port (default: a free one), e.g. when AUTH_ISSUER must name it. */
  port?: number;
}

/** Starts a real gateway on a free port, over real HTTP, with its own Redis key prefix. */
export async function createTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const keyPrefix = options.keyPrefix ?? uniquePrefix('api');
  const config = loadConfig({ REDIS_KEY_PREFIX: keyPrefix, ...options.env });
  const store =
    typeof options.store === 'object'
      ? options.store
      : options.store === 'memory'
        ? new MemoryStore()
        : await createRedisStore(keyPrefix);
  const keys = options.keys ?? (await testKeySet());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  hasher ??= PasswordHasher.create();
  const app = await createApp({
    config,
    store,
    keys,
    passwords: options.passwords ?? (await hasher),
    logger: createLogger({ production: config.production, level: 'debug' }, sink),
    ...(options.clock ? { clock: options.clock } : {}),
    ...options.deps,
  });
  const address = await app.listen(options.port ?? 0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    app,
    store,
    keys,
    config,
    logs,
    async graphql(query, variables, headers) {
      // node:http rather than fetch: tests need to set headers fetch forbids (Host).
      const body = JSON.stringify({ query, variables });
      const response = await new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
        const req = request(
          `${url}/graphql`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk) => (text += chunk));
            res.on('end', () => {
              const result = new Headers();
              for (const [name, value] of Object.entries(res.headers)) {
                for (const v of Array.isArray(value) ? value : [value ?? '']) result.append(name, v);
              }
              resolve({ status: res.statusCode ?? 0, headers: result, text });
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      const parsed = JSON.parse(response.text) as { data?: any; errors?: any[] };
      return { status: response.status, headers: response.headers, data: parsed.data ?? null, errors: parsed.errors ?? [] };
    },
    async close() {
      await app.close();
      if (options.store !== 'memory') {
        // Whatever store the test handed in, what it wrote under this prefix goes (on the shared
        // Redis; a private server is the test's own to stop).
        const redis = inspector();
        await deleteKeys(redis, keyPrefix);
        redis.disconnect();
      }
    },
  };
}

export const AUTH_FIELDS = `
  accessToken tokenType expiresIn accessTokenExpiresAt refreshToken refreshTokenExpiresAt
  user { id email roles createdAt }
  session { id createdAt lastRefreshedAt expiresAt userAgent ipAddress current }
`;

export const SIGNUP = `mutation($email: String!, $password: String!) { signup(email: $email, password: $password) { ${AUTH_FIELDS} } }`;
export const LOGIN = `mutation($email: String!, $password: String!) { login(email: $email, password: $password) { ${AUTH_FIELDS} } }`;
export const REFRESH = `mutation($t: String) { refreshToken(refreshToken: $t) { ${AUTH_FIELDS} } }`;

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

let counter = 0;
export function uniqueEmail(): string {
  counter += 1;
  return `user${counter}-${Math.random().toString(36).slice(2, 10)}@example.com`;
}

/** The password the tests sign up with. */
export const TEST_PASSWORD = 'correct horse battery';

/** Signs up a new account on `server` and returns the AuthPayload (failing the test on any error). */
export async function signUp(server: Pick<TestServer, 'graphql'>, email = uniqueEmail(), password = TEST_PASSWORD) {
  const answer = await server.graphql(SIGNUP, { email, password });
  expect(answer.errors).toEqual([]);
  return answer.data!.signup;
}
