/**
 * The baseline: Apollo Server 5 with the same `me` shape as Tessera and no authentication, on a
 * plain node:http server (the way Tessera serves it, minus everything Tessera adds). Prints
 * `listening <port>` once it serves. Run by bench/run.ts in its own process.
 */
import { createServer } from 'node:http';
import { ApolloServer, HeaderMap } from '@apollo/server';

const typeDefs = `#graphql
  type Query { me: User }
  type User { id: ID! email: String! roles: [String!]! }
`;

const ME = { id: 'bench-user-0000000000', email: 'bench@example.com', roles: ['user'] };

const apollo = new ApolloServer({
  typeDefs,
  resolvers: { Query: { me: () => ME } },
  nodeEnv: 'production',
  introspection: false,
  csrfPrevention: true,
  stopOnTerminationSignals: false,
});
await apollo.start();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    void (async () => {
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      if ((headers.get('content-type') ?? '').startsWith('application/json') && text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          res.statusCode = 400;
          res.end();
          return;
        }
      }
      const result = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: '', body },
        context: async () => ({}),
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
});

const port = Number(process.env.PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
