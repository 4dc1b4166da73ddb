/**
 * What the gateway-mode bench's processes agree on: the bench subgraph's schema, the operations,
 * the answers they must give, and how the child processes read their settings.
 */

/** The bench subgraph's name in every supergraph (Tessera addresses its context tokens to it). */
export const SUBGRAPH_NAME = 'bench';

/** Issuer and audience of the peers' access tokens (Tessera's are its own AUTH_ISSUER/AUTH_AUDIENCE). */
export const PEER_ISSUER = 'https://bench-idp.tessera.test';
export const PEER_AUDIENCE = 'bench-api';

/**
 * How the bench subgraph learns who the caller is:
 * - `none`: it does not; the caller is BENCH_CALLER_ID (behind the no-auth ceiling);
 * - `header`: the `x-user-id` header (behind @apollo/gateway + jose);
 * - `hive`: the JWT payload Hive Gateway forwards in the request's `extensions.jwt.payload`;
 * - `tessera`: `x-tessera-context`, verified with `tessera/subgraph` on every request.
 */
export type IdentityMode = 'none' | 'header' | 'hive' | 'tessera';
export const IDENTITY_MODES: readonly IdentityMode[] = ['none', 'header', 'hive', 'tessera'];

export const USER_ID_HEADER = 'x-user-id';

/**
 * The bench subgraph: a root field that needs the caller (`viewer`), and the `User` entity
 * extended with a field only its owner may read. Behind Tessera, `Query.me` is Tessera's own
 * (its auth subgraph), so the subgraph leaves it out; behind the peers it serves `me` itself.
 */
export function subgraphSdl(withMe: boolean): string {
  return `
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

type Query {
  "The caller."
  viewer: Viewer${withMe ? '\n  "The caller as a User (Tessera serves this field itself)."\n  me: User' : ''}
}

type Viewer {
  id: ID!
}

type User @key(fields: "id") {
  id: ID!
  "How many orders the user placed; only the user may read it."
  orderCount: Int
}
`;
}

/** A made-up count, the same for a user every time. */
export function orderCountOf(userId: string): number {
  let seed = 7;
  for (let i = 0; i < userId.length; i++) seed = (seed * 31 + userId.charCodeAt(i)) % 1000;
  return seed;
}

/** The scenarios' operations, and what the `data` of each must be. */
export const VIEWER = JSON.stringify({ query: '{ viewer { id } }' });
export const ME_EXTENDED = JSON.stringify({ query: '{ me { id orderCount } }' });

export function expectedData(shape: 'viewer' | 'me', userId: string): unknown {
  return shape === 'viewer' ? { viewer: { id: userId } } : { me: { id: userId, orderCount: orderCountOf(userId) } };
}

/** A required environment variable of a child process (they are started by bench/gateway/run.ts only). */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** Prints `listening <port>` (what the bench waits for) and ends cleanly on SIGTERM (so --cpu-prof writes its profile). */
export function announce(port: number, stop: () => Promise<unknown>): void {
  process.stdout.write(`listening ${port}\n`);
  process.once('SIGTERM', () => {
    void stop().finally(() => process.exit(0));
  });
}
