/**
 * The one place the bench imports `tessera/subgraph` from (the verifier may move to its own
 * package: change this path only).
 */
export { createContextVerifier, type ContextVerifier } from '../../src/subgraph/index.js';
