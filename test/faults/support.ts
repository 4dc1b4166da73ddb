import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisClient } from '../../src/store/redisConnection.js';
import { RedisStore } from '../../src/store/redisStore.js';
import { generateSigningJwk, keySetJson } from '../../src/tokens/keys.js';
import type { GraphQLAnswer } from '../helpers/testServer.js';

export const PASSWORD = 'correct horse battery';
export const ME = '{ me { id } }';
export const SESSIONS = '{ sessions { id current } }';
export const REVOKE = 'mutation($id: ID) { revokeSession(sessionId: $id) }';

/** A GraphQL call over real HTTP to any gateway (in-process or a child process). */
export async function gql<T = Record<string, any>>(
  baseUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLAnswer<T>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: any[] };
  return { status: response.status, headers: response.headers, data: body.data ?? null, errors: body.errors ?? [] };
}

/** Runs it and says how long it took, in milliseconds. */
export async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The code of the first error, or 'ok' when there is none. */
export function outcome(answer: GraphQLAnswer): string {
  const extensions = answer.errors[0]?.extensions;
  if (!extensions) return 'ok';
  return extensions.reason ? `${String(extensions.code)}/${String(extensions.reason)}` : String(extensions.code);
}

/** A RedisStore on this URL as main.ts builds one (bounded client), its pub/sub feed on `feedUrl`. */
export async function redisStoreAt(url: string, keyPrefix: string, feedUrl = url) {
  const client = createRedisClient(url);
  client.on('error', () => undefined);
  await client.connect();
  const store = new RedisStore({
    client,
    createSubscriber: () => createRedisClient(feedUrl),
    keyPrefix,
  });
  return { client, store };
}

/** A SIGNING_KEYS file with one fresh EdDSA key, in its own temp dir. */
export async function signingKeysFile(): Promise<{ path: string; dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-keys-'));
  const path = join(dir, 'signing-keys.json');
  await writeFile(path, keySetJson([await generateSigningJwk('EdDSA')]), { mode: 0o600 });
  return { path, dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls until the check holds (for hooks, where expect.poll is not allowed). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
