#!/usr/bin/env node
// Runs the example orders subgraph (see README, "Federation"):
//   npm run build && node examples/orders/server.mjs
// then, in another terminal: SUBGRAPHS=orders=http://localhost:4001/graphql npm start
//
// PORT (default 4001), TESSERA_URL (where the gateway serves its JWKS, default
// http://localhost:4000), AUTH_ISSUER (the gateway's, default http://localhost:4000),
// SUBGRAPH_NAME (this subgraph's name in SUBGRAPHS / the supergraph, default "orders").
import { createContextVerifier } from '@tessera-gateway/subgraph';
import { startOrdersSubgraph } from './orders.mjs';

const gateway = process.env.TESSERA_URL ?? 'http://localhost:4000';
const verifier = createContextVerifier({
  jwksUrl: new URL('/.well-known/jwks.json', gateway),
  issuer: process.env.AUTH_ISSUER ?? 'http://localhost:4000',
  audience: process.env.SUBGRAPH_NAME ?? 'orders',
});
const port = Number(process.env.PORT ?? 4001);
const subgraph = await startOrdersSubgraph({ verifier, port, host: process.env.HOST ?? '0.0.0.0' });
console.log(`orders subgraph at http://localhost:${port}/graphql (trusting ${gateway})`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => subgraph.stop().then(() => process.exit(0)));
}
