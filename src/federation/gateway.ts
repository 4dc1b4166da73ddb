import { ApolloGateway, IntrospectAndCompose, type SupergraphManager } from '@apollo/gateway';
import type { GraphQLSchema } from 'graphql';
import { AuthSubgraphDataSource } from './authDataSource.js';
import type { Clock } from '../clock.js';
import type { FederationSource } from '../config.js';
import type { Logger } from '../logger.js';
import { libraryLogger } from '../observability/logFormat.js';
import { tracedDataSource } from '../observability/tracedDataSource.js';
import type { Tracing } from '../observability/tracing.js';
import { ContextTokenSigner } from '../tokens/contextTokens.js';
import type { KeySet } from '../tokens/keys.js';
import { AuthorizingGateway } from './authorizingGateway.js';
import { AUTH_SUBGRAPH, createAuthSubgraphSchema } from './authSubgraph.js';
import { acceptEdgeEnforcedFeatures } from './securityFeatures.js';
import { SupergraphFileManager } from './supergraphFile.js';
import { TrustedContextDataSource } from './trustedDataSource.js';

export interface GatewayOptions {
  federation: FederationSource;
  keys: KeySet;
  /** AUTH_ISSUER: the `iss` of context tokens. */
  issuer: string;
  clock: Clock;
  logger: Logger;
  /** NODE_ENV=production: no query plans shown to clients, whatever the request asks. */
  production: boolean;
  /** Revocations this instance learns of: the signed contexts of those sessions are dropped at once. */
  revocations?: { onRevoked(listener: (sessionIds: readonly string[]) => void): () => void };
  /** SUPERGRAPH_FILE: how often the file is checked for a change. */
  supergraphPollIntervalMs?: number;
  /** With tracing, each remote subgraph call is a span and carries its traceparent. */
  tracing?: Tracing | null;
}

/**
 * Where the in-process auth subgraph "is" in a composed supergraph. Never called: the gateway
 * serves `auth` from its own schema, whatever URL the supergraph names.
 */
export const AUTH_SUBGRAPH_URL = 'http://auth.tessera.internal/graphql';

/**
 * Federation mode (docs/contract.md section 6): @apollo/gateway over the in-process `auth` subgraph and
 * the remote ones, composed by introspection (SUBGRAPHS) or read from a supergraph file
 * (SUPERGRAPH_FILE), wrapped with edge authorization.
 */
export interface FederatedGateway {
  gateway: AuthorizingGateway;
  /** The signer of context tokens (also for subscriptions passed through over WebSocket). */
  signer: ContextTokenSigner;
  /** The in-process auth subgraph's schema (its subscriptions run in process). */
  authSchema: GraphQLSchema;
}

export function createGateway(options: GatewayOptions): FederatedGateway {
  const { federation, logger } = options;
  const signer = new ContextTokenSigner({ keys: options.keys, issuer: options.issuer, clock: options.clock });
  options.revocations?.onRevoked((sessionIds) => signer.dropSessions(sessionIds));
  const authSchema = createAuthSubgraphSchema();

  const manager: SupergraphManager =
    federation.kind === 'supergraphFile'
      ? new SupergraphFileManager({
          path: federation.path,
          logger,
          transform: acceptEdgeEnforcedFeatures,
          ...(options.supergraphPollIntervalMs ? { pollIntervalMs: options.supergraphPollIntervalMs } : {}),
        })
      : transformed(
          new IntrospectAndCompose({
            subgraphs: [{ name: AUTH_SUBGRAPH, url: AUTH_SUBGRAPH_URL }, ...federation.subgraphs],
            logger: libraryLogger(logger),
          }),
          acceptEdgeEnforcedFeatures,
        );

  disableGatewayTelemetry();
  const inner = new ApolloGateway({
    supergraphSdl: manager,
    logger: libraryLogger(logger),
    // Outside production a client may ask for the query plan (Apollo-Query-Plan-Experimental).
    __exposeQueryPlanExperimental: !options.production,
    buildService: ({ name, url }) => {
      // The gateway's own schema runs in process, with the gateway's request context.
      if (name === AUTH_SUBGRAPH) return new AuthSubgraphDataSource(authSchema);
      if (!url) throw new Error(`the supergraph gives no URL for the subgraph ${name}`);
      const remote = new TrustedContextDataSource(url, name, signer);
      return options.tracing ? tracedDataSource(remote, name, url, options.tracing) : remote;
    },
  });
  return { gateway: new AuthorizingGateway(inner, options.clock), signer, authSchema };
}

/** A supergraph manager whose every SDL passes through `transform` before the gateway sees it. */
function transformed(manager: SupergraphManager, transform: (sdl: string) => string): SupergraphManager {
  return {
    initialize: async (hooks) => {
      const result = await manager.initialize({ ...hooks, update: (sdl) => hooks.update(transform(sdl)) });
      return { ...result, supergraphSdl: transform(result.supergraphSdl) };
    },
  };
}

/**
 * @apollo/gateway reports host metrics (OS, CPU, memory, uptime) to Apollo every hour, and once
 * more when it stops, unless APOLLO_TELEMETRY_DISABLED is set when it is created. An auth gateway
 * should not call out to a third party unasked: off unless the operator set the variable
 * (APOLLO_TELEMETRY_DISABLED=false keeps Apollo's default).
 */
function disableGatewayTelemetry(): void {
  process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';
}
