/**
 * Hive Gateway with its JWT option, in its own process: the runtime @graphql-hive/gateway 2.15
 * runs (@graphql-hive/gateway-runtime), with the plugin the CLI's `jwt` option adds
 * (`useJWT(config.jwt)` from @graphql-mesh/plugin-jwt-auth), on node:http as the CLI serves it.
 * ES256: its jsonwebtoken cannot verify EdDSA. The verified payload goes to the subgraph in the
 * request's `extensions.jwt.payload` (the plugin's default `forward.payload`). Prints `listening <port>`.
 *
 * Env: PORT, SUPERGRAPH_FILE, JWKS_URL.
 */
import { createServer } from 'node:http';
import { createGatewayRuntime, type GatewayPlugin } from '@graphql-hive/gateway-runtime';
import { createRemoteJwksSigningKeyProvider, extractFromHeader, useJWT } from '@graphql-mesh/plugin-jwt-auth';
import { announce, PEER_AUDIENCE, PEER_ISSUER, requireEnv } from './shared.js';

const gateway = createGatewayRuntime({
  supergraph: requireEnv('SUPERGRAPH_FILE'),
  logging: 'warn',
  // By default Hive sends identical subgraph requests in flight at once only once. Here every
  // connection is the same user with the same token, which real traffic is not: one call per
  // request, like the other gateways (the bench counts the subgraph's operations to check).
  transportEntries: { '*': { options: { deduplicateInflightRequests: false } } },
  landingPage: false,
  graphiql: false,
  // The cast: the plugin's typings name the runtime's Logger through its other (CommonJS) declaration file.
  plugins: () => [
    useJWT({
      signingKeyProviders: [createRemoteJwksSigningKeyProvider({ jwksUri: requireEnv('JWKS_URL') })],
      tokenLookupLocations: [extractFromHeader({ name: 'authorization', prefix: 'Bearer' })],
      tokenVerification: { issuer: PEER_ISSUER, audience: PEER_AUDIENCE, algorithms: ['ES256'] },
      reject: { missingToken: true, invalidToken: true },
      forward: { payload: true },
    }) as unknown as GatewayPlugin,
  ],
});
await gateway.getSchema();

const server = createServer(gateway);
const port = Number(requireEnv('PORT'));
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
announce(port, async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await gateway.dispose();
});
