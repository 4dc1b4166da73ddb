import { createHash } from 'node:crypto';
import type { ApolloGateway } from '@apollo/gateway';
import type { ApolloServerOptionsWithGateway } from '@apollo/server';
import {
  type DocumentNode,
  type FormattedExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  getOperationAST,
  print,
} from 'graphql';
import type { GraphQLContext } from '../graphql/context.js';
import type { TokenRejection } from '../errors.js';
import { type AuthRequirements, applyDenials, authorizeOperation, type Caller, collectRequirements } from './edgeAuthorization.js';

/** The gateway contract of the Apollo Server in use (@apollo/server-gateway-interface 2.x). */
export type ServerGateway = ApolloServerOptionsWithGateway<GraphQLContext>['gateway'];
type LoadResult = Awaited<ReturnType<ServerGateway['load']>>;
type Executor = NonNullable<LoadResult['executor']>;
type RequestContext = Parameters<Executor>[0];
type ExecutionResult = Awaited<ReturnType<Executor>>;

/**
 * An error the gateway itself raises for a field that fails edge authorization (UNAUTHENTICATED
 * or FORBIDDEN): shown to clients as it is.
 */
export class EdgeAuthorizationError extends GraphQLError {
  constructor(formatted: GraphQLFormattedError) {
    super(formatted.message, { path: formatted.path, extensions: formatted.extensions });
    this.name = 'EdgeAuthorizationError';
  }
}

/**
 * @apollo/gateway with authorization at the edge (docs/contract.md section 6): before the query planner
 * sees an operation, fields and types marked `@authenticated` or `@requiresScopes` that the
 * caller may not see are taken out of it (edgeAuthorization.ts); after execution they come back
 * as null with an UNAUTHENTICATED or FORBIDDEN error. No subgraph is called for them.
 *
 * Type boundary: @apollo/gateway 2.14 is typed against @apollo/server-gateway-interface 1.x,
 * Apollo Server 5 against 2.x. The two declare the same interface (load, onSchemaLoadOrUpdate,
 * stop, and the executor's request context); they differ only in the versions of the utility
 * packages their types come from (logger, key-value cache, fetcher headers), whose runtime
 * shapes are the same. So the inner gateway is called through one cast, in `load`.
 */
export class AuthorizingGateway implements ServerGateway {
  /** Requirements per API schema, so a request planned on one schema is checked against it. */
  private readonly requirements = new WeakMap<GraphQLSchema, AuthRequirements>();
  private latest: AuthRequirements | null = null;
  private unsubscribe: (() => void) | null = null;

  /** @param inner the gateway that plans and executes */
  constructor(private readonly inner: ApolloGateway) {}

  onSchemaLoadOrUpdate(callback: Parameters<ServerGateway['onSchemaLoadOrUpdate']>[0]): () => void {
    return this.inner.onSchemaLoadOrUpdate(callback);
  }

  async load(options: Parameters<ServerGateway['load']>[0]): Promise<LoadResult> {
    // Registered before load so the first schema's requirements are known before any request.
    // The SDL the gateway was given has `for: SECURITY` dropped from two links (securityFeatures.ts):
    // an argument collectRequirements does not read.
    this.unsubscribe = this.inner.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
      const requirements = collectRequirements(coreSupergraphSdl);
      this.requirements.set(apiSchema, requirements);
      this.latest = requirements;
    });
    const { executor } = await this.inner.load(options);
    const execute = executor as unknown as Executor; // the one cast: see the class comment
    return { executor: (requestContext) => this.execute(requestContext, execute) };
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.inner.stop();
  }

  private async execute(requestContext: RequestContext, execute: Executor): Promise<ExecutionResult> {
    const requirements = this.requirements.get(requestContext.schema) ?? this.latest;
    if (!requirements) throw new Error('edge authorization: the supergraph has not been loaded');
    const { schema, document: original, operationName } = requestContext;
    const { document, denials } = authorizeOperation({
      schema,
      document: original,
      operationName,
      requirements,
      caller: callerOf(requestContext.context as GraphQLContext),
    });
    if (denials.length === 0) return execute(requestContext); // the very same document
    const result = await execute(withDocument(requestContext, document));
    return toExecutionResult(applyDenials(result as FormattedExecutionResult, denials));
  }
}

/** The caller as edge authorization sees it; why there is none, as the contract's `reason`. */
export function callerOf(context: GraphQLContext): Caller {
  const { user, authFailure } = context;
  if (user) return { authenticated: true, scopes: new Set(user.scopes) };
  const reason = authFailure?.reason;
  return { authenticated: false, scopes: new Set(), ...(isTokenRejection(reason) ? { reason } : {}) };
}

const TOKEN_REJECTIONS = new Set<unknown>(['TOKEN_MISSING', 'TOKEN_EXPIRED', 'TOKEN_INVALID', 'SESSION_REVOKED'] satisfies TokenRejection[]);

function isTokenRejection(value: unknown): value is TokenRejection {
  return TOKEN_REJECTIONS.has(value);
}

/**
 * The request with another document. The gateway caches query plans by `queryHash` (the SHA-256
 * of `source`), so source and hash change with the document: a trimmed operation never shares a
 * plan with the full one.
 */
function withDocument(requestContext: RequestContext, document: DocumentNode): RequestContext {
  const source = print(document);
  const operation = getOperationAST(document, requestContext.operationName ?? undefined);
  if (!operation) throw new Error('edge authorization removed the operation');
  return {
    ...requestContext,
    request: { ...requestContext.request, query: source },
    document,
    source,
    queryHash: createHash('sha256').update(source).digest('hex'),
    operation,
  };
}

const DENIAL_CODES = new Set<unknown>(['UNAUTHENTICATED', 'FORBIDDEN']);

/**
 * Apollo Server expects GraphQLError instances: the denials applyDenials added become
 * EdgeAuthorizationErrors; anything else it handed back as a plain object, a plain GraphQLError.
 */
function toExecutionResult(result: FormattedExecutionResult): ExecutionResult {
  const errors = result.errors?.map((error) => {
    if (error instanceof GraphQLError) return error;
    if (DENIAL_CODES.has(error.extensions?.code)) return new EdgeAuthorizationError(error);
    return new GraphQLError(error.message, { path: error.path, extensions: error.extensions });
  });
  return { ...result, ...(errors ? { errors } : {}) } as ExecutionResult;
}
