import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  getOperationAST,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  NoSchemaIntrospectionCustomRule,
  type OperationTypeNode,
  parse,
  specifiedRules,
  validate,
  type ValidationRule,
} from 'graphql';
import type { ServerOptions } from 'graphql-ws';
import type { RequestLimits } from '../config.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from './context.js';
import { createFormatError } from './errorFormatting.js';
import { limitParseOptions, operationLimitRules } from './operationLimits.js';

/** A `subscribe` message's payload (graphql-transport-ws), as the client sent it. */
export interface WsOperationPayload {
  query: string;
  operationName?: string | null | undefined;
  variables?: Record<string, unknown> | null | undefined;
  extensions?: Record<string, unknown> | null | undefined;
}

/** An operation ready to run (the context still to be added), or why it will not run. */
export type PreparedOperation =
  | { ok: true; kind: OperationTypeNode; document: DocumentNode; args: Omit<ExecutionArgs, 'contextValue'> }
  | { ok: false; errors: readonly GraphQLError[] };

/**
 * Where a WebSocket operation becomes a GraphQL execution: the door from src/realtime into
 * graphql-js, as httpEndpoint.ts is the door from HTTP into Apollo (src/realtime may not import
 * graphql). The same schema object Apollo serves, the same operation limits (parser limits, then
 * the limit rules with graphql-js's own), Apollo's error codes (GRAPHQL_PARSE_FAILED,
 * GRAPHQL_VALIDATION_FAILED) and the same error formatting; in production no introspection and
 * no field suggestions, as over HTTP.
 */
export class WsOperations {
  private readonly rules: readonly ValidationRule[];
  private readonly formatError: ReturnType<typeof createFormatError>;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly limits: RequestLimits,
    private readonly production: boolean,
    logger: Logger,
  ) {
    this.rules = [...specifiedRules, ...operationLimitRules(limits), ...(production ? [NoSchemaIntrospectionCustomRule] : [])];
    this.formatError = createFormatError(production, logger);
  }

  /** Parses and validates; mutations are refused (they go over HTTP, where the refresh cookie is written). */
  prepare(payload: WsOperationPayload, schema: GraphQLSchema = this.schema): PreparedOperation {
    if (typeof payload.query !== 'string') return refused('The operation has no query.', 'BAD_REQUEST');
    let document: DocumentNode;
    try {
      document = parse(payload.query, limitParseOptions(this.limits));
    } catch (error) {
      const message = error instanceof GraphQLError ? error.message : 'The query could not be parsed.';
      return refused(message, 'GRAPHQL_PARSE_FAILED');
    }
    const invalid = validate(schema, document, this.rules);
    if (invalid.length > 0) {
      return {
        ok: false,
        errors: invalid.map((error) =>
          withCode(this.production ? withoutSuggestions(error) : error, 'GRAPHQL_VALIDATION_FAILED'),
        ),
      };
    }
    const operation = getOperationAST(document, payload.operationName ?? undefined);
    if (!operation) return refused('The operation to run could not be determined: name it with operationName.', 'BAD_REQUEST');
    if (operation.operation === 'mutation') {
      return refused('Mutations are not served over WebSocket: send them with HTTP POST to /graphql.', 'BAD_REQUEST');
    }
    return {
      ok: true,
      kind: operation.operation,
      document,
      args: {
        schema,
        document,
        operationName: payload.operationName ?? null,
        variableValues: payload.variables ?? null,
      },
    };
  }

  /**
   * What graphql-ws runs for a `subscribe` message: the execution (with the context, made only
   * for an operation that will run), or the errors that refuse it. `kind` hears what it is.
   */
  async execution(
    payload: WsOperationPayload,
    context: () => Promise<GraphQLContext>,
    kind?: (kind: OperationTypeNode) => void,
  ): Promise<ExecutionArgs | readonly GraphQLError[]> {
    const prepared = this.prepare(payload);
    if (!prepared.ok) return prepared.errors;
    kind?.(prepared.kind);
    return { ...prepared.args, contextValue: await context() };
  }

  /** graphql-ws hooks: results and errors formatted as over HTTP. */
  hooks(): Pick<ServerOptions, 'onNext' | 'onError'> {
    return {
      onNext: (_ctx, _id, _payload, _args, result) => this.formatResult(result),
      onError: (_ctx, _id, _payload, errors) => this.formatErrors(errors),
    };
  }

  /** A result as it goes on the wire, its errors formatted as over HTTP. */
  formatResult(result: ExecutionResult | FormattedExecutionResult): FormattedExecutionResult {
    const { errors, ...rest } = result;
    return errors ? { ...rest, errors: this.formatErrors(errors) } : rest;
  }

  /** Errors as over HTTP; one that is already formatted (a subgraph's, passed through) stays as it is. */
  formatErrors(errors: readonly (GraphQLError | GraphQLFormattedError)[]): GraphQLFormattedError[] {
    return errors.map((error) =>
      error instanceof WsRefusal ? error.toJSON() : error instanceof GraphQLError ? this.formatError(error.toJSON(), error) : error,
    );
  }

  /** A refusal decided outside graphql-js (the subscription cap), as graphql-ws sends it. */
  refuse(message: string, code: string, extensions: Record<string, unknown> = {}): readonly GraphQLError[] {
    return [WsOperations.error(message, code, extensions)];
  }

  static error(message: string, code: string, extensions: Record<string, unknown> = {}): GraphQLError {
    return new WsRefusal(message, { ...extensions, code });
  }
}

/** A refusal the gateway decided itself, with its contract code: shown as it is. */
class WsRefusal extends GraphQLError {
  constructor(message: string, extensions: Record<string, unknown>) {
    super(message, { extensions });
    this.name = 'WsRefusal';
  }
}

function refused(message: string, code: string): PreparedOperation {
  return { ok: false, errors: [WsOperations.error(message, code)] };
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.source ? { source: error.source } : {}),
    ...(error.positions ? { positions: error.positions } : {}),
    extensions: { ...error.extensions, code },
  });
}

/** As Apollo's hideSchemaDetailsFromClientErrors: no "Did you mean …?" naming other fields. */
function withoutSuggestions(error: GraphQLError): GraphQLError {
  const message = error.message.replace(/ ?Did you mean(.+?)\?$/, '');
  return message === error.message ? error : new GraphQLError(message, { extensions: error.extensions });
}

