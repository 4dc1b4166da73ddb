import type { Store } from '../../src/store/types.js';
import type { IncomingHttpHeaders } from 'node:http';
import { startOrdersSubgraph, type OrdersSubgraph } from '../../examples/orders/orders.mjs';
import type { Clock } from '../../src/clock.js';
import { createContextVerifier, type ContextVerifier } from '@tessera-gateway/subgraph';
import type { KeySet } from '../../src/tokens/keys.js';
import { testKeySet } from '../helpers/keys.js';
import { createTestServer, signUp, type TestServer, uniqueEmail } from '../helpers/testServer.js';

export const PASSWORD = 'correct horse battery';
export const ISSUER = 'http://localhost:4000';

/** Where the subgraph's verifier thinks the gateway is, until `pointAt` says where it really is. */
const GATEWAY_PLACEHOLDER = 'http://gateway.invalid';

export interface RecordingSubgraph {
  url: string;
  /** Headers of every request the subgraph received since the gateway started, oldest first. */
  requests: IncomingHttpHeaders[];
  /** How many times the subgraph fetched the JWKS. */
  jwksFetches: number;
  verifier: ContextVerifier;
  /** Tells the verifier where the gateway's JWKS is (the gateway starts after the subgraph). */
  pointAt(gatewayUrl: string): void;
  stop(): Promise<void>;
}

/**
 * The example orders subgraph (examples/orders) on a free port over real HTTP, trusting the
 * gateway through the verifier of @tessera-gateway/subgraph (packages/subgraph), and recording the headers it receives.
 */
export async function startRecordingOrders(options: { audience?: string; clock?: Clock } = {}): Promise<RecordingSubgraph> {
  let gateway: string | null = null;
  const requests: IncomingHttpHeaders[] = [];
  const state = {
    jwksFetches: 0,
  };
  const verifier = createContextVerifier({
    jwksUrl: `${GATEWAY_PLACEHOLDER}/.well-known/jwks.json`,
    issuer: ISSUER,
    audience: options.audience ?? 'orders',
    ...(options.clock ? { clock: options.clock } : {}),
    fetch: (url, init) => {
      state.jwksFetches += 1;
      if (!gateway) throw new Error('the gateway has not started');
      return fetch(url.replace(GATEWAY_PLACEHOLDER, gateway), init);
    },
  });
  const subgraph: OrdersSubgraph = await startOrdersSubgraph({ verifier, port: 0, onRequest: (headers) => requests.push(headers) });
  return {
    url: subgraph.url,
    requests,
    get jwksFetches() {
      return state.jwksFetches;
    },
    verifier,
    pointAt(url) {
      gateway = url;
    },
    stop: () => subgraph.stop(),
  };
}

export interface FederatedSetup {
  gateway: TestServer;
  orders: RecordingSubgraph;
  keys: KeySet;
  close(): Promise<void>;
}

/** The example subgraph, then a gateway in SUBGRAPHS mode over it (memory store unless told). */
export async function startFederated(
  options: { env?: Record<string, string>; clock?: Clock; keys?: KeySet; store?: 'memory' | 'redis' | Store } = {},
): Promise<FederatedSetup> {
  const orders = await startRecordingOrders(options.clock ? { clock: options.clock } : {});
  const keys = options.keys ?? (await testKeySet());
  const gateway = await createTestServer({
    store: options.store ?? 'memory',
    keys,
    env: { AUTH_ISSUER: ISSUER, SUBGRAPHS: `orders=${orders.url}`, LOG_LEVEL: 'warn', ...options.env },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  orders.pointAt(gateway.url);
  // What the gateway sent while composing (the schema, no caller) is not what the tests look at.
  orders.requests.length = 0;
  return {
    gateway,
    orders,
    keys,
    close: async () => {
      await gateway.close();
      await orders.stop();
    },
  };
}

export async function signup(server: TestServer, email = uniqueEmail()) {
  return (await signUp(server, email, PASSWORD)) as {
    accessToken: string;
    refreshToken: string;
    user: { id: string; email: string };
    session: { id: string };
  };
}

/** The `x-tessera-context` of a recorded request (one value, or undefined). */
export function contextHeader(headers: IncomingHttpHeaders | undefined): string | undefined {
  const value = headers?.['x-tessera-context'];
  return Array.isArray(value) ? value.join(',') : value;
}
