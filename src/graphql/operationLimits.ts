import type { ApolloServerPlugin, BaseContext, GraphQLRequestContextDidResolveSource } from '@apollo/server';
import {
  type ASTNode,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type ParseOptions,
  parse,
  type SelectionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { RequestLimits } from '../config.js';
import { ErrorCode } from '../errors.js';

/*
 * Bounds on what one operation may ask (config `RequestLimits`). Over any of them the request is
 * refused with BAD_USER_INPUT before any resolver runs:
 * - document size: `documentSizePlugin`, before the document is parsed;
 * - tokens: `limitParseOptions`, while parsing (a syntax error, GRAPHQL_PARSE_FAILED);
 * - depth, aliases, root fields, directives: `operationLimitRules`, validation rules
 *   (GRAPHQL_VALIDATION_FAILED). errorFormatting.ts shows both Apollo codes as BAD_USER_INPUT.
 */

type Limits = Pick<RequestLimits, 'maxDepth' | 'maxAliases' | 'maxRootFields' | 'maxDirectives'>;

/** The validation rules for depth, aliases, root fields and directives. */
export function operationLimitRules(limits: Limits): ValidationRule[] {
  return [
    maxDepthRule(limits.maxDepth),
    maxAliasesRule(limits.maxAliases),
    maxRootFieldsRule(limits.maxRootFields),
    maxDirectivesRule(limits.maxDirectives),
  ];
}

/** Parser options: at most `maxTokens` lexical tokens (graphql-js aborts the parse past it). */
export function limitParseOptions(limits: Pick<RequestLimits, 'maxTokens'>): ParseOptions {
  return { maxLexicalTokens: limits.maxTokens };
}

function overLimit(what: string, count: number, limit: number, node?: ASTNode): GraphQLError {
  return new GraphQLError(`${what} ${count} exceeds the limit of ${limit}.`, node ? { nodes: [node] } : {});
}

/**
 * Walks selection sets through fragment spreads, once per fragment (memoized: fragments spread
 * many times cost nothing extra) and never around a fragment cycle (NoFragmentCycles reports it).
 * `fieldValue(field, inner)` is a field's value given its sub-selection's value; `combine` merges
 * the values of sibling selections.
 */
class SelectionWalker {
  private readonly memo = new Map<string, number>();
  private readonly entered = new Set<string>();

  constructor(
    private readonly fragment: (name: string) => FragmentDefinitionNode | null | undefined,
    private readonly fieldValue: (inner: () => number, hasSelections: boolean) => number,
    private readonly combine: (a: number, b: number) => number,
  ) {}

  selectionSet(set: SelectionSetNode): number {
    return set.selections.reduce((total, selection) => this.combine(total, this.selection(selection)), 0);
  }

  private selection(node: SelectionNode): number {
    switch (node.kind) {
      case Kind.FIELD: {
        const inner = node.selectionSet;
        return this.fieldValue(() => (inner ? this.selectionSet(inner) : 0), inner !== undefined);
      }
      case Kind.INLINE_FRAGMENT:
        return this.selectionSet(node.selectionSet);
      case Kind.FRAGMENT_SPREAD:
        return this.spread(node.name.value);
    }
  }

  private spread(name: string): number {
    const known = this.memo.get(name);
    if (known !== undefined) return known;
    const definition = this.fragment(name);
    if (!definition || this.entered.has(name)) return 0;
    this.entered.add(name);
    const value = this.selectionSet(definition.selectionSet);
    this.entered.delete(name);
    this.memo.set(name, value);
    return value;
  }
}

function lookup(context: ValidationContext) {
  return (name: string) => context.getFragment(name);
}

/** Selection nesting: `{ me }` is 1 deep, `{ me { id } }` 2. Introspection fields count too. */
export function maxDepthRule(limit: number): ValidationRule {
  return (context) => {
    const walker = new SelectionWalker(lookup(context), (inner) => 1 + inner(), Math.max);
    return {
      OperationDefinition(operation: OperationDefinitionNode) {
        const depth = walker.selectionSet(operation.selectionSet);
        if (depth > limit) context.reportError(overLimit('Operation depth', depth, limit, operation));
        return false;
      },
    };
  };
}

/** Fields at the root of each operation, through fragments; a fragment counts at each spread. */
export function maxRootFieldsRule(limit: number): ValidationRule {
  return (context) => {
    const walker = new SelectionWalker(lookup(context), () => 1, (a, b) => a + b);
    return {
      OperationDefinition(operation: OperationDefinitionNode) {
        const count = walker.selectionSet(operation.selectionSet);
        if (count > limit) context.reportError(overLimit('Root field count', count, limit, operation));
        return false;
      },
    };
  };
}

/** Counts what `visitor` calls `increment` for, in the whole document as written (fragments once). */
function countingRule(what: string, limit: number, visitor: (increment: () => void) => ASTVisitor): ValidationRule {
  return (context) => {
    let count = 0;
    return {
      ...visitor(() => {
        count += 1;
      }),
      Document: {
        leave() {
          if (count > limit) context.reportError(overLimit(what, count, limit));
        },
      },
    };
  };
}

/** Aliased fields in the whole document. */
export function maxAliasesRule(limit: number): ValidationRule {
  return countingRule('Alias count', limit, (increment) => ({
    Field(node) {
      if (node.alias) increment();
    },
  }));
}

/** Directive uses in the whole document. */
export function maxDirectivesRule(limit: number): ValidationRule {
  return countingRule('Directive count', limit, (increment) => ({ Directive: () => increment() }));
}

/** Stands in for a refused document so Apollo does not parse it; never executed. */
const NOT_PARSED: DocumentNode = parse('{ __typename }');

/**
 * Refuses a `query` longer than `maxDocumentBytes` (UTF-8) before it is parsed. Apollo 5 reports
 * an error thrown in `didResolveSource` as a 500 "Internal server error", so the refusal is
 * recorded there and thrown from `didResolveOperation`, which Apollo answers as the error itself
 * (400, BAD_USER_INPUT). Meanwhile a stand-in document makes Apollo skip parsing and validating
 * the oversized text; should a future Apollo parse it anyway, it is still refused at
 * `didResolveOperation`, before execution.
 */
export function documentSizePlugin<TContext extends BaseContext>(
  limits: Pick<RequestLimits, 'maxDocumentBytes'>,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      let refusal: GraphQLError | null = null;
      return {
        async didResolveSource(requestContext) {
          refusal = documentSizeError(requestContext.source, limits.maxDocumentBytes);
          if (refusal) skipParsing(requestContext);
        },
        async didResolveOperation() {
          if (refusal) throw refusal;
        },
      };
    },
  };
}

/** The refusal for a document over `limit` UTF-8 bytes, or null. */
export function documentSizeError(source: string, limit: number): GraphQLError | null {
  // A UTF-16 code unit is 1 to 3 UTF-8 bytes: most documents need no counting.
  if (source.length * 3 <= limit) return null;
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes <= limit) return null;
  return new GraphQLError(`Document size ${bytes} bytes exceeds the limit of ${limit} bytes.`, {
    extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
  });
}

function skipParsing<TContext extends BaseContext>(requestContext: GraphQLRequestContextDidResolveSource<TContext>) {
  (requestContext as { document?: DocumentNode }).document = NOT_PARSED;
}
