/**
 * The gateway-mode bench's subgraph: Apollo Server 5 with @apollo/subgraph (federation 2) on a
 * node:http server (as bench/baseline.ts, with a long keep-alive). The same code behind every
 * gateway; only how it learns the caller differs (IDENTITY, see shared.ts). Run by bench/gateway/run.ts in its own
 * process; prints `listening <port>`.
 *
 * Env: PORT, IDENTITY (none | header | hive | tessera), BENCH_CALLER_ID (none), TESSERA_JWKS_URL,
 * TESSERA_ISSUER (tessera). On SIGUSR2 it prints `operations <n>`, the operations it has served.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { GraphQLError, parse } from 'graphql';
import { createContextVerifier } from './contextVerifier.js';
import { announce, IDENTITY_MODES, type IdentityMode, orderCountOf, requireEnv, SUBGRAPH_NAME, subgraphSdl, USER_ID_HEADER } from './shared.js';

interface Context {
  /** The caller's user id; null when the request names none. */
  callerId: string | null;
}

const mode = requireEnv('IDENTITY') as IdentityMode;
if (!IDENTITY_MODES.includes(mode)) throw new Error(`IDENTITY: ${mode} is not one of ${IDENTITY_MODES.join(', ')}`);

function unauthenticated(): GraphQLError {
  return new GraphQLError('Sign in first.', { extensions: { code: 'UNAUTHENTICATED' } });
}

function caller(context: unknown): string {
  const { callerId } = context as Context;
  if (callerId === null) throw unauthenticated();
  return callerId;
}

const resolvers = {
  Query: {
    viewer: (_: unknown, __: unknown, context: unknown) => ({ id: caller(context) }),
    me: (_: unknown, __: unknown, context: unknown) => ({ id: caller(context) }),
  },
  User: {
    __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
    orderCount: (user: { id: string }, _: unknown, context: unknown) => {
      if (caller(context) !== user.id) throw new GraphQLError("Only the user's own order count can be read.", { extensions: { code: 'FORBIDDEN' } });
      return orderCountOf(user.id);
    },
  },
};
if (mode === 'tessera') delete (resolvers.Query as Partial<typeof resolvers.Query>).me;

/** How each mode reads the caller from a request. */
function contextReader(): (req: IncomingMessage, body: unknown) => Promise<Context> {
  switch (mode) {
    case 'none': {
      const callerId = requireEnv('BENCH_CALLER_ID');
      return async () => ({ callerId });
    }
    case 'header':
      return async (req) => {
        const value = req.headers[USER_ID_HEADER];
        return { callerId: typeof value === 'string' && value !== '' ? value : null };
      };
    case 'hive':
      return async (_req, body) => {
        // Hive Gateway's jwt plugin (forward.payload) puts the verified payload in the request body's extensions.
        const sub = (body as { extensions?: { jwt?: { payload?: { sub?: unknown } } } } | null)?.extensions?.jwt?.payload?.sub;
        return { callerId: typeof sub === 'string' && sub !== '' ? sub : null };
      };
    case 'tessera': {
      const verifier = createContextVerifier({
        jwksUrl: requireEnv('TESSERA_JWKS_URL'),
        issuer: requireEnv('TESSERA_ISSUER'),
        audience: SUBGRAPH_NAME,
      });
      return async (req) => ({ callerId: (await verifier.verify(req.headers)).user?.id ?? null });
    }
  }
}

const server = new ApolloServer<Context>({
  schema: buildSubgraphSchema({ typeDefs: parse(subgraphSdl(mode !== 'tessera')), resolvers }),
  plugins: [ApolloServerPluginInlineTraceDisabled()],
  stopOnTerminationSignals: false,
});
await server.start();
const read = contextReader();
// Operations served so far, printed on SIGUSR2: the bench checks each gateway made one call per request.
let operations = 0;
process.on('SIGUSR2', () => process.stdout.write(`operations ${operations}\n`));

/** A JSON POST body, parsed; what Apollo Server's standalone server does, minus CORS. */
async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return (req.headers['content-type'] ?? '').startsWith('application/json') && text !== '' ? JSON.parse(text) : text;
}

const httpServer = createServer((req, res) => {
  void (async () => {
    let body: unknown;
    try {
      body = await readBody(req);
    } catch {
      res.statusCode = 400;
      res.end();
      return;
    }
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const result = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: '', body },
      context: () => {
        operations++;
        return read(req, body);
      },
    });
    for (const [name, value] of result.headers) res.setHeader(name, value);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      res.end(result.body.string);
      return;
    }
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  })().catch(() => {
    res.statusCode = 500;
    res.end();
  });
});
// Node closes a keep-alive connection after 5 s idle by default, and a gateway that sends on it at
// that moment gets ECONNRESET: between two runs of the same gateway there is more than that.
httpServer.keepAliveTimeout = 10 * 60_000;
const port = Number(requireEnv('PORT'));
await new Promise<void>((resolve) => httpServer.listen(port, '127.0.0.1', resolve));
announce(port, async () => {
  httpServer.closeAllConnections();
  await new Promise((resolve) => httpServer.close(resolve));
  await server.stop();
});
