import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { createContextVerifier, type ContextVerifier, type SubgraphUser } from '@tessera-gateway/subgraph';
import { execute, parse } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Clock } from '../../src/clock.js';
import { EventQueue } from '../../src/realtime/eventQueue.js';
import { ISSUER } from '../federation/support.js';

/**
 * A subgraph of the test's own serving subscriptions over graphql-transport-ws (graphql-ws's
 * `useServer` on `ws`), trusting the gateway with `verifyConnectionParams` of
 * @tessera-gateway/subgraph: `connection_init` and renewal pings carry `x-tessera-context`. Over
 * HTTP it answers only what composition asks (`_service { sdl }`). Events are pushed by the test
 * (`emit`), never on a timer.
 */
const SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@authenticated", "@requiresScopes"])
  type Query { ticker: String }
  type Tick {
    n: Int!
    "Who the subgraph thinks the caller is (from the verified context)."
    viewer: String
    note: String @authenticated
    owner: User
  }
  type User @key(fields: "id") { id: ID! }
  type Subscription {
    ticks: Tick!
    adminTicks: Tick! @requiresScopes(scopes: [["admin"]])
  }
`;

interface Listener {
  user: SubgraphUser | null;
  push(n: number): void;
}

export interface WsSubgraph {
  url: string;
  /** Everything it received in connection_init and pings, in order. */
  received: { type: 'init' | 'ping'; payload: Record<string, unknown> | undefined; user: string | null }[];
  /** Open subscriptions. */
  readonly listening: number;
  /** Open graphql-ws connections. */
  readonly connections: number;
  emit(n: number): void;
  pointAt(gatewayUrl: string): void;
  stop(): Promise<void>;
}

const GATEWAY_PLACEHOLDER = 'http://gateway.invalid';

export async function startWsSubgraph(options: { clock?: Clock } = {}): Promise<WsSubgraph> {
  let gateway: string | null = null;
  const verifier: ContextVerifier = createContextVerifier({
    jwksUrl: `${GATEWAY_PLACEHOLDER}/.well-known/jwks.json`,
    issuer: ISSUER,
    audience: 'ticks',
    ...(options.clock ? { clock: options.clock } : {}),
    fetch: (url, init) => {
      if (!gateway) throw new Error('the gateway has not started');
      return fetch(url.replace(GATEWAY_PLACEHOLDER, gateway), init);
    },
  });
  const listeners = new Set<Listener>();
  const received: WsSubgraph['received'] = [];

  // An iterator whose return() ends it at once (an async generator waiting for an event would not).
  function ticks(_parent: unknown, _args: unknown, context: { user: SubgraphUser | null }) {
    const user = context.user;
    const queue: EventQueue<Record<string, unknown>> = new EventQueue(() => listeners.delete(listener));
    const listener: Listener = {
      user,
      push: (n) => queue.push({ n, viewer: user?.id ?? null, note: `note ${n}`, owner: user ? { id: user.id } : null }),
    };
    listeners.add(listener);
    return queue;
  }

  const schema = buildSubgraphSchema({
    typeDefs: parse(SDL),
    resolvers: {
      Subscription: {
        ticks: { subscribe: ticks, resolve: (tick: unknown) => tick },
        adminTicks: { subscribe: ticks, resolve: (tick: unknown) => tick },
      },
    } as never,
  });

  const http: Server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const { query, variables } = JSON.parse(body || '{}') as { query: string; variables?: Record<string, unknown> };
    const result = await execute({ schema, document: parse(query), variableValues: variables ?? null });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  });
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  type Extra = { user?: SubgraphUser | null };
  const disposable = useServer<Record<string, unknown>, Extra>(
    {
      schema,
      onConnect: async (ctx) => {
        const { user } = await verifier.verifyConnectionParams(ctx.connectionParams);
        received.push({ type: 'init', payload: ctx.connectionParams, user: user?.id ?? null });
        (ctx.extra as Extra).user = user;
        return true;
      },
      onPing: async (ctx, payload) => {
        if (!payload) return;
        const { user } = await verifier.verifyConnectionParams(payload);
        received.push({ type: 'ping', payload, user: user?.id ?? null });
        (ctx.extra as Extra).user = user;
      },
      context: (ctx) => ({ user: (ctx.extra as Extra).user ?? null }),
    },
    wss,
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    received,
    get listening() {
      return listeners.size;
    },
    get connections() {
      return wss.clients.size;
    },
    emit(n) {
      for (const listener of listeners) listener.push(n);
    },
    pointAt(url) {
      gateway = url;
    },
    async stop() {
      await disposable.dispose();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
