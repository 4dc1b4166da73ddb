import { type GraphQLDataSourceProcessOptions, LocalGraphQLDataSource } from '@apollo/gateway';
import {
  type DocumentNode,
  execute,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  validate,
} from 'graphql';
import type { GraphQLContext } from '../graphql/context.js';

/** Distinct fetch documents kept parsed and validated; a supergraph's plans have few. */
const MAX_DOCUMENTS = 1_000;

type GatewayGraphQLResponse = Awaited<ReturnType<LocalGraphQLDataSource['process']>>;

/** A fetch to the auth subgraph, parsed and validated once; `callerKey`: the response key when it asks only for the caller's `User` key. */
interface Prepared {
  document: DocumentNode;
  callerKey: string | null;
}

/**
 * The in-process `auth` subgraph as the gateway calls it. Two things make its part of a plan cost
 * next to nothing:
 *
 * - A fetch that asks only for the caller's `User` key (`{ me { __typename id } }`, which the
 *   planner sends whenever another subgraph extends the `User` that `me` returns) is answered
 *   from the verified context: no GraphQL execution, no store. `me { id }` is answered from the
 *   verified token alone by the resolver too (resolvers.ts), so the answer is the same.
 * - Any other fetch is parsed and validated once per distinct document (the planner sends the
 *   same strings again and again), then executed; `LocalGraphQLDataSource` would parse and
 *   validate it on every request.
 *
 * Its answers are the caller's own (tokens, sessions, the account): an operation that reaches it
 * is never cacheable, as a remote subgraph's answer without a Cache-Control header is not
 * (maxAge 0 in the overall cache policy).
 */
export class AuthSubgraphDataSource extends LocalGraphQLDataSource<GraphQLContext> {
  private readonly prepared = new Map<string, Prepared>();

  constructor(schema: GraphQLSchema) {
    super(schema);
  }

  override async process(options: GraphQLDataSourceProcessOptions<GraphQLContext>): Promise<GatewayGraphQLResponse> {
    // Loading a schema or a health check: no request context, nothing to shortcut.
    if (!('incomingRequestContext' in options)) return super.process(options);
    options.incomingRequestContext.overallCachePolicy?.restrict({ maxAge: 0 });
    const { request, context } = options;
    const query = request.query;
    if (query === undefined) return super.process(options);
    const prepared = this.prepare(query, request.operationName ?? undefined);
    if (prepared === null) return super.process(options); // invalid: graphql-js reports it as it would
    if (prepared.callerKey !== null && context.user) {
      return { data: { [prepared.callerKey]: { __typename: 'User', id: context.user.id } } };
    }
    return (await execute({
      schema: this.schema,
      document: prepared.document,
      variableValues: request.variables,
      operationName: request.operationName,
      contextValue: context,
    })) as GatewayGraphQLResponse;
  }

  /** The fetch's document, parsed and validated once; null when it does not parse or validate. */
  private prepare(query: string, operationName: string | undefined): Prepared | null {
    const key = operationName === undefined ? query : `${operationName}\u0000${query}`;
    const known = this.prepared.get(key);
    if (known) return known;
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch {
      return null;
    }
    if (validate(this.schema, document).length > 0) return null;
    const prepared: Prepared = { document, callerKey: callerKeyField(document) };
    if (this.prepared.size >= MAX_DOCUMENTS) this.prepared.delete(this.prepared.keys().next().value!);
    this.prepared.set(key, prepared);
    return prepared;
  }
}

/**
 * The response key when the document is exactly one query operation selecting `me` (no
 * arguments, no directives) with nothing under it but `__typename` and `id` (no aliases, no
 * directives, no fragments); otherwise null.
 */
export function callerKeyField(document: DocumentNode): string | null {
  if (document.definitions.length !== 1) return null;
  const operation = document.definitions[0] as OperationDefinitionNode;
  if (operation.kind !== Kind.OPERATION_DEFINITION || operation.operation !== 'query') return null;
  if (operation.directives?.length || operation.variableDefinitions?.length) return null;
  const [me, ...rest] = operation.selectionSet.selections;
  if (!me || rest.length > 0 || me.kind !== Kind.FIELD || me.name.value !== 'me') return null;
  if (me.arguments?.length || me.directives?.length || !me.selectionSet) return null;
  if (!onlyKeyFields(me.selectionSet)) return null;
  return me.alias?.value ?? me.name.value;
}

function onlyKeyFields(selectionSet: SelectionSetNode): boolean {
  return selectionSet.selections.every(
    (selection) =>
      selection.kind === Kind.FIELD &&
      !selection.alias &&
      !selection.arguments?.length &&
      !selection.directives?.length &&
      !selection.selectionSet &&
      (selection.name.value === '__typename' || selection.name.value === 'id'),
  );
}
