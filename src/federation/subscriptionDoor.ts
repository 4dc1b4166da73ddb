import { operationFromDocument, Supergraph } from '@apollo/federation-internals';
import { QueryPlanner } from '@apollo/query-planner';
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLSchema,
  print,
  subscribe,
} from 'graphql';
import { createClient, type ServerOptions, type SubscribePayload } from 'graphql-ws';
import { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import type { GraphQLContext } from '../graphql/context.js';
import type { WsOperations } from '../graphql/wsOperations.js';
import type { Logger } from '../logger.js';
import type { OperationDoor, OperationVerdict } from '../realtime/types.js';
import { CONTEXT_HEADER, type ContextTokenSigner } from '../tokens/contextTokens.js';
import { AUTH_SUBGRAPH } from './authSubgraph.js';
import { callerOf, type ServerGateway } from './authorizingGateway.js';
import { type AuthRequirements, applyDenials, authorizeOperation, collectRequirements, type Denial } from './edgeAuthorization.js';

/** What one supergraph gives the door: its API schema, a planner over it, the edge marks, the subgraphs' URLs. */
interface Loaded {
  apiSchema: GraphQLSchema;
  supergraph: Supergraph;
  planner: QueryPlanner;
  requirements: AuthRequirements;
  urls: Map<string, string>;
}

/** A subscription to pass through: to which subgraph, what to send, and what edge authorization took out. */
interface PassThrough {
  service: string;
  url: string | null;
  denials: Denial[];
}

export interface SubscriptionDoorDeps {
  gateway: Pick<ServerGateway, 'onSchemaLoadOrUpdate'>;
  /** Parsing with the operation limits, validation, error formatting (the standalone door's). */
  operations: WsOperations;
  /** The in-process auth subgraph: its subscriptions (sessionEvents) run here. */
  authSchema: GraphQLSchema;
  signer: ContextTokenSigner;
  /** SUBGRAPH_WS_URLS: where a subgraph serves graphql-transport-ws, when not its URL as ws(s)://. */
  wsUrls: Record<string, string>;
  clock: Clock;
  logger: Logger;
}

/** A context renewal goes out once the context the subgraph holds has less than this left (the signer makes a new one below 10 s). */
const RENEW_BEFORE_MS = 9_000;
/** How often that is looked at, per passed-through subscription. */
const RENEW_CHECK_MS = 1_000;

/**
 * Gateway mode over WebSocket (docs/contract.md section 12): a subscription whose whole selection
 * is served by the subgraph owning its root field (the query plan is one Subscription fetch with
 * nothing after it) is passed through over graphql-transport-ws to that subgraph; the in-process
 * `auth` subgraph's (sessionEvents) run here. Edge authorization (`@authenticated`,
 * `@requiresScopes`) applies at subscribe time as over HTTP: denied fields are taken out of
 * what is sent and come back null with their error in every event; a denied root field refuses
 * the subscription. The subgraph gets `connection_init { "x-tessera-context": <JWT> }`, renewed
 * by a `ping` carrying a new one before it expires, never the client's token. Anything else
 * (queries, mutations, subscriptions needing several subgraphs) is refused with
 * GRAPHQL_VALIDATION_FAILED.
 */
export class SubscriptionDoor implements OperationDoor {
  private loaded: Loaded | null = null;
  private latest: { apiSchema: GraphQLSchema; coreSupergraphSdl: string } | null = null;
  private readonly plans = new WeakMap<object, PassThrough>();
  private stopWatching: (() => void) | null = null;

  constructor(private readonly deps: SubscriptionDoorDeps) {}

  /**
   * Follows the supergraph (call before the gateway loads, so the first one is seen). Its planner
   * is built on the first WebSocket operation, not at load: a gateway that serves no
   * subscriptions pays nothing for them.
   */
  watch(): void {
    this.stopWatching = this.deps.gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
      this.latest = { apiSchema, coreSupergraphSdl };
      this.loaded = null;
    });
  }

  /** The current supergraph's planner and the rest, made once per supergraph. */
  private current(): Loaded | null {
    if (this.loaded) return this.loaded;
    const latest = this.latest;
    if (!latest) return null;
    try {
      const supergraph = Supergraph.build(latest.coreSupergraphSdl);
      const urls = new Map(supergraph.subgraphsMetadata().map(({ name, url }) => [name, this.wsUrl(name, url)] as const));
      this.loaded = {
        apiSchema: latest.apiSchema,
        supergraph,
        planner: new QueryPlanner(supergraph),
        requirements: collectRequirements(latest.coreSupergraphSdl),
        urls,
      };
    } catch (error) {
      this.deps.logger.error({ err: error }, 'subscriptions: the supergraph could not be planned; WebSocket operations are refused');
      this.latest = null;
    }
    return this.loaded;
  }

  stop(): void {
    this.stopWatching?.();
  }

  refuse(message: string, code: string): OperationVerdict {
    return this.deps.operations.refuse(message, code);
  }

  hooks(): Pick<ServerOptions, 'onNext' | 'onError' | 'subscribe'> {
    // Events passed through carry errors already formatted (a subgraph's): onNext (formatResult) keeps them as they are.
    type Subscribe = NonNullable<ServerOptions['subscribe']>;
    return { ...this.deps.operations.hooks(), subscribe: ((args: ExecutionArgs) => this.run(args)) as unknown as Subscribe };
  }

  async execution(payload: SubscribePayload, context: () => Promise<GraphQLContext>, kind?: (kind: string) => void): Promise<OperationVerdict> {
    const loaded = this.current();
    if (!loaded) return this.refuse('The supergraph is not loaded yet.', 'SERVICE_UNAVAILABLE');
    const prepared = this.deps.operations.prepare(payload, loaded.apiSchema);
    if (!prepared.ok) return prepared.errors;
    if (prepared.kind !== 'subscription') {
      return this.refuse('In gateway mode only subscriptions are served over WebSocket: send queries with HTTP.', 'GRAPHQL_VALIDATION_FAILED');
    }
    const operationName = payload.operationName ?? null;
    const service = this.owner(loaded, prepared.document, operationName);
    if (!service) {
      return this.refuse(
        'This subscription is not served whole by the subgraph that owns its root field, so it cannot be passed through.',
        'GRAPHQL_VALIDATION_FAILED',
      );
    }
    const contextValue = await context();
    const { document, denials } = authorizeOperation({
      schema: loaded.apiSchema,
      document: prepared.document,
      operationName,
      requirements: loaded.requirements,
      caller: callerOf(contextValue, this.deps.clock.now()),
    });
    const root = denials.find((denial) => denial.path.length === 1);
    if (root) return this.deps.operations.refuse(root.message, root.code, root.reason ? { reason: root.reason } : {});
    const args: ExecutionArgs = { ...prepared.args, document, contextValue };
    this.plans.set(args, { service, url: loaded.urls.get(service) ?? null, denials });
    kind?.('subscription');
    return args;
  }

  /** The one subgraph that serves the whole subscription, or null. */
  private owner(loaded: Loaded, document: DocumentNode, operationName: string | null): string | null {
    try {
      const operation = operationFromDocument(loaded.supergraph.apiSchema(), document, operationName ? { operationName } : {});
      const node = loaded.planner.buildQueryPlan(operation).node;
      if (!node || node.kind !== 'Subscription' || node.rest) return null;
      return node.primary.serviceName;
    } catch (error) {
      this.deps.logger.debug({ err: error }, 'subscriptions: no query plan');
      return null;
    }
  }

  private async run(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult | FormattedExecutionResult> | ExecutionResult> {
    const plan = this.plans.get(args);
    if (!plan) return subscribe(args);
    if (plan.service === AUTH_SUBGRAPH) {
      const result = await subscribe({ ...args, schema: this.deps.authSchema });
      if (!(Symbol.asyncIterator in result) || plan.denials.length === 0) return result;
      return withDenials(result, plan.denials);
    }
    if (!plan.url) return { errors: this.deps.operations.refuse(`The subgraph ${plan.service} has no URL.`, 'INTERNAL_SERVER_ERROR') };
    return this.remote(plan, plan.url, args);
  }

  /**
   * One upstream graphql-transport-ws connection per passed-through subscription. An iterator,
   * not an async generator: `return()` (the client completes, or its socket closes) must close the
   * upstream at once, not when the next event would arrive.
   */
  private remote(plan: PassThrough, url: string, args: ExecutionArgs): AsyncIterableIterator<FormattedExecutionResult> {
    const context = args.contextValue as GraphQLContext;
    const claims = () => context.live?.currentClaims() ?? context.user?.claims ?? null;
    const signed = async (): Promise<Record<string, string>> => {
      const subject = claims();
      return subject ? { [CONTEXT_HEADER]: await this.deps.signer.sign(subject, plan.service) } : {};
    };
    // The context the subgraph holds, renewed by a ping once it has less than RENEW_BEFORE_MS left.
    let current: string | undefined;
    let socket: WebSocket | null = null;
    let renewing = false;
    const renewal = setInterval(() => {
      if (!socket || !current || renewing || expiresAtMs(current) - this.deps.clock.now() > RENEW_BEFORE_MS) return;
      const open = socket;
      renewing = true;
      void signed()
        .then((payload) => {
          current = payload[CONTEXT_HEADER];
          if (open.readyState === WebSocket.OPEN) open.send(JSON.stringify({ type: 'ping', payload }));
        })
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'subscriptions: the context could not be renewed'))
        .finally(() => (renewing = false));
    }, RENEW_CHECK_MS);
    renewal.unref();
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      connectionParams: async () => {
        const payload = await signed();
        current = payload[CONTEXT_HEADER];
        return payload;
      },
      on: {
        connected: (opened) => (socket = opened as WebSocket),
        closed: () => (socket = null),
      },
    });
    const upstream = client.iterate<Record<string, unknown>>({
      query: print(args.document),
      ...(args.operationName ? { operationName: args.operationName } : {}),
      ...(args.variableValues ? { variables: args.variableValues as Record<string, unknown> } : {}),
    });
    let ended = false;
    const end = async () => {
      if (ended) return;
      ended = true;
      clearInterval(renewal);
      await upstream.return?.(undefined).catch(() => undefined);
      await client.dispose();
    };
    const done = { done: true, value: undefined } as const;
    const logger = this.deps.logger;
    return {
      async next(): Promise<IteratorResult<FormattedExecutionResult>> {
        if (ended) return done;
        try {
          const result = await upstream.next();
          if (result.done) {
            await end();
            return done;
          }
          return { done: false, value: applyDenials(result.value as FormattedExecutionResult, plan.denials) };
        } catch (error) {
          if (ended) return done;
          logger.warn({ err: error, subgraph: plan.service }, 'subscriptions: the subgraph ended the subscription');
          await end();
          return {
            done: false,
            value: { errors: [{ message: `The subgraph ${plan.service} ended the subscription.`, extensions: { code: 'SUBGRAPH_UNAVAILABLE' } }] },
          };
        }
      },
      async return(): Promise<IteratorResult<FormattedExecutionResult>> {
        await end();
        return done;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private wsUrl(name: string, url: string | undefined): string {
    return this.deps.wsUrls[name] ?? (url ?? '').replace(/^http/, 'ws');
  }
}

/** Each event with the denials applied; `return()` reaches the source at once. */
function withDenials(results: AsyncGenerator<ExecutionResult>, denials: Denial[]): AsyncIterableIterator<FormattedExecutionResult> {
  return {
    next: async () => {
      const result = await results.next();
      return result.done ? { done: true, value: undefined } : { done: false, value: applyDenials(result.value as FormattedExecutionResult, denials) };
    },
    return: async () => {
      await results.return(undefined);
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** A JWT's `exp` in ms (the gateway's own signature: no need to verify it here); 0 if unreadable (renew soon). */
function expiresAtMs(token: string): number {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : 0;
  } catch {
    return 0;
  }
}
