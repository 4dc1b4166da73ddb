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
  isObjectType,
  Kind,
  parse,
  print,
} from 'graphql';
import type { Clock } from '../clock.js';
import { UNVERIFIED_ALLOWED_FIELDS } from '../accounts/resolvers.js';
import type { GraphQLContext } from '../graphql/context.js';
import { loadTypeDefs } from '../graphql/schema.js';
import type { TokenRejection } from '../errors.js';
import { type AuthRequirements, applyDenials, authorizeOperation, type Caller, collectRequirements, type Denial } from './edgeAuthorization.js';

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

  /**
   * @param inner the gateway that plans and executes
   * @param clock the gateway's clock, for `@tessera__fresh` (the system clock if none)
   */
  constructor(
    private readonly inner: ApolloGateway,
    private readonly clock?: Clock,
  ) {}

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
    const context = requestContext.context as GraphQLContext;
    const unverified = isUnverified(context) ? withVerifiedEmailRequired(schema, requirements) : null;
    const { document, denials } = authorizeOperation({
      schema,
      document: original,
      operationName,
      requirements: unverified ? unverified.requirements : requirements,
      caller: callerOf(context, this.clock?.now() ?? Date.now()),
    });
    if (unverified) markUnverified(denials, unverified.gated);
    if (denials.length === 0) return execute(requestContext); // the very same document
    const result = await execute(withDocument(requestContext, document));
    return toExecutionResult(applyDenials(result as FormattedExecutionResult, denials));
  }
}

/** EMAIL_VERIFICATION=required and a signed-in caller whose access token does not say `email_verified: true`. */
function isUnverified(context: GraphQLContext): boolean {
  return context.user !== null && context.accounts?.settings.emailVerification === 'required' && context.user.claims.email_verified !== true;
}

/** A scope no token holds: the stand-in requirement of every field an unverified user may not use. */
const VERIFIED_EMAIL_SCOPE = '\u0000tessera:email_verified';

/** `Type.field` of every field the auth schema itself serves (schema/*.graphql), read once. */
let authFields: ReadonlySet<string> | undefined;
function authSchemaFields(): ReadonlySet<string> {
  if (authFields) return authFields;
  const fields = new Set<string>();
  for (const definition of parse(loadTypeDefs()).definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    for (const field of definition.fields ?? []) fields.add(`${definition.name.value}.${field.name.value}`);
  }
  return (authFields = fields);
}

/**
 * EMAIL_VERIFICATION=required at the edge (docs/contract.md section 7): for an unverified caller,
 * every root field but UNVERIFIED_ALLOWED_FIELDS (me, sessions, the session and account
 * mutations), and every field another subgraph adds (a `User.orders` under `me`), is required to
 * hold a scope no token has, so it is denied (FORBIDDEN) before any subgraph is called;
 * markUnverified gives those denials their reason. Built once per requirements and schema.
 */
const gatedRequirements = new WeakMap<AuthRequirements, WeakMap<GraphQLSchema, { requirements: AuthRequirements; gated: ReadonlySet<string> }>>();

function withVerifiedEmailRequired(schema: GraphQLSchema, requirements: AuthRequirements) {
  let bySchema = gatedRequirements.get(requirements);
  if (!bySchema) gatedRequirements.set(requirements, (bySchema = new WeakMap()));
  const cached = bySchema.get(schema);
  if (cached) return cached;
  const own = authSchemaFields();
  const roots = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter((t) => t !== null && t !== undefined));
  const fields = new Map(requirements.fields);
  const gated = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const isRoot = roots.has(type);
    for (const name of Object.keys(type.getFields())) {
      const coordinate = `${type.name}.${name}`;
      const allowed = isRoot ? UNVERIFIED_ALLOWED_FIELDS.has(coordinate) : own.has(coordinate) || !isUserFacing(type.name, own);
      if (allowed) continue;
      gated.add(coordinate);
      const existing = fields.get(coordinate);
      fields.set(coordinate, { authenticated: true, scopes: [...(existing?.scopes ?? []), [[VERIFIED_EMAIL_SCOPE]]] });
    }
  }
  const built = { requirements: { types: requirements.types, fields }, gated };
  bySchema.set(schema, built);
  return built;
}

/** Types of the auth schema (User, Session, AuthPayload …): only their own fields are open to an unverified caller. */
function isUserFacing(typeName: string, own: ReadonlySet<string>): boolean {
  for (const coordinate of own) if (coordinate.startsWith(`${typeName}.`)) return true;
  return false;
}

/** The denials of gated fields, for an unverified caller: FORBIDDEN reason EMAIL_NOT_VERIFIED. */
function markUnverified(denials: Denial[], gated: ReadonlySet<string>): void {
  for (const denial of denials) {
    if (denial.code === 'FORBIDDEN' && gated.has(denial.coordinate)) {
      denial.reason = 'EMAIL_NOT_VERIFIED';
      denial.message = 'Verify your email address first.';
      delete denial.stepUp;
    }
  }
}

/** The caller as edge authorization sees it; why there is none, as the contract's `reason`. */
export function callerOf(context: GraphQLContext, nowMs: number): Caller {
  const { user, authFailure } = context;
  if (user) {
    // auth_time and acr (contract sections 7, 8); absent from tokens issued before them.
    const { auth_time: authTime, acr } = user.claims;
    return { authenticated: true, scopes: new Set(user.scopes), authTime: authTime ?? null, acr: acr ?? null, nowMs };
  }
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
