/**
 * `@tessera-gateway/gateway/subgraph`: the subgraph verifier, re-exported from its own package,
 * `@tessera-gateway/subgraph` (packages/subgraph), which subgraphs install without the gateway.
 *
 * @packageDocumentation
 */
export * from '@tessera-gateway/subgraph';
