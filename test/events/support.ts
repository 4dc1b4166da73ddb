import { Writable } from 'node:stream';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { WebhookTimings } from '../../src/events/webhookDelivery.js';
import type { SecurityEvent } from '../../src/events/types.js';
import { createLogger } from '../../src/logger.js';
import type { Store } from '../../src/store/types.js';
import { PasswordHasher } from '../../src/users/passwords.js';
import { gql } from '../faults/support.js';
import { testKeySet } from '../helpers/keys.js';

/** Short settings standing in for the defaults: a 400 ms backoff cap for 5 min, a 300 ms timeout for 5 s. */
export const SHORT_TIMINGS: Partial<WebhookTimings> = {
  pollIntervalMs: 50,
  timeoutMs: 300,
  baseDelayMs: 50,
  maxDelayMs: 400,
  claimMarginMs: 100,
  sweepIntervalMs: 200,
};

export interface Gateway {
  url: string;
  app: App;
  store: Store;
  logs: string[];
  graphql: (query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) => ReturnType<typeof gql<Record<string, any>>>;
  /** Closes the app (and with it the store); the keys stay, as a restarted gateway finds them. */
  close(): Promise<void>;
}

let hasher: Promise<PasswordHasher> | undefined;
const keys = testKeySet();

/** A gateway on `store` (a store of its own: the app closes it), as main.ts would build one. */
export async function startGateway(store: Store, env: Record<string, string>, timings: Partial<WebhookTimings> = SHORT_TIMINGS): Promise<Gateway> {
  const config = loadConfig(env);
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
    keys: await keys,
    passwords: await hasher,
    logger: createLogger({ production: false, level: 'info' }, sink),
    webhookTimings: timings,
  });
  const address = await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  return { url, app, store, logs, graphql: (q, v, h) => gql(url, q, v, h), close: () => app.close() };
}

/** Every event of a store's audit log (all users), oldest first. */
export async function auditLog(store: Store): Promise<SecurityEvent[]> {
  const out: SecurityEvent[] = [];
  let after = null;
  for (;;) {
    const page = await store.auditEvents({ first: 100, after });
    out.push(...page.events.map((e) => e.event));
    if (!page.hasNextPage) return out.reverse();
    after = page.endCursor;
  }
}

/** The `"audit": true` lines of a gateway's log. */
export function auditLines(logs: readonly string[]): { audit: boolean; event: Record<string, unknown>; msg: string }[] {
  return logs.flatMap((line) => {
    const parsed = JSON.parse(line) as { audit?: boolean; event: Record<string, unknown>; msg: string };
    return parsed.audit === true ? [parsed as { audit: boolean; event: Record<string, unknown>; msg: string }] : [];
  });
}
