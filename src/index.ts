/**
 * The package's public entry: build a gateway in your own process (as main.ts does), or read the
 * configuration the same way. Subgraphs import `@tessera-gateway/subgraph` instead (also re-exported here as
 * `@tessera-gateway/gateway/subgraph`).
 */
export { type App, type AppDeps, createApp } from './app.js';
export { type Config, loadConfig } from './config.js';
export { ErrorCode, TesseraError } from './errors.js';
export type { AuthenticatedUser, GraphQLContext } from './graphql/context.js';
