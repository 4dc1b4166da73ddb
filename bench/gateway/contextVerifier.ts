/** The one place the bench imports the subgraph verifier from: the published package, as a subgraph would. */
export { createContextVerifier, type ContextVerifier } from '@tessera-gateway/subgraph';
