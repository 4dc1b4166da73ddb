import {
  type ASTNode,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type ParseOptions,
  type SelectionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { RequestLimits } from '../config.js';

/*
 * Bounds on what one operation may ask (config `RequestLimits`). Over any of them the request is
 * refused with HTTP 400 before any resolver runs, with Apollo's code for where it was caught:
 * - document size: `limitParseOptions` before parsing (in UTF-16 code units; GRAPHQL_PARSE_FAILED),
 *   then `maxDocumentBytesRule` (in UTF-8 bytes), a validation rule (GRAPHQL_VALIDATION_FAILED);
 * - tokens: `limitParseOptions`, while parsing (a syntax error, GRAPHQL_PARSE_FAILED);
 * - depth (of data, and of introspection), aliases, root fields, directives: `operationLimitRules`,
 *   validation rules (GRAPHQL_VALIDATION_FAILED).
 */

type Limits = Pick<RequestLimits, 'maxDocumentBytes' | 'maxDepth' | 'maxAliases' | 'maxRootFields' | 'maxDirectives'>;

/**
 * The validation rules for document size, depth, aliases, root fields and directives. Apollo
 * validates a document once and keeps it (by the hash of its text), so they cost nothing on the
 * requests that send a document it has seen.
 */
export function operationLimitRules(limits: Limits): ValidationRule[] {
  return [
    maxDocumentBytesRule(limits.maxDocumentBytes),
    maxDepthRule(limits.maxDepth),
    maxAliasesRule(limits.maxAliases),
    maxRootFieldsRule(limits.maxRootFields),
    maxDirectivesRule(limits.maxDirectives),
  ];
}

/**
 * Parser options: at most `maxTokens` lexical tokens, and no more UTF-16 code units than
 * `maxDocumentBytes` (each is at least one UTF-8 byte, so such a document is over the byte limit
 * too; graphql-js refuses it before lexing). Both are GRAPHQL_PARSE_FAILED errors.
 */
export function limitParseOptions(limits: Pick<RequestLimits, 'maxTokens' | 'maxDocumentBytes'>): ParseOptions {
  return { maxLexicalTokens: limits.maxTokens, maxSourceLength: limits.maxDocumentBytes };
}

function overLimit(what: string, count: number, limit: number, node?: ASTNode): GraphQLError {
  return new GraphQLError(`${what} ${count} exceeds the limit of ${limit}.`, node ? { nodes: [node] } : {});
}

/**
 * Walks selection sets through fragment spreads, once per fragment (memoized: fragments spread
 * many times cost nothing extra) and never around a fragment cycle (NoFragmentCycles reports it).
 * `fieldValue(inner)` is a field's value, given a way to get its sub-selection's; `combine` merges
 * the values of sibling selections.
 */
class SelectionWalker {
  private readonly memo = new Map<string, number>();
  private readonly entered = new Set<string>();

  constructor(
    private readonly fragment: (name: string) => FragmentDefinitionNode | null | undefined,
    private readonly fieldValue: (field: FieldNode, inner: () => number) => number,
    private readonly combine: (a: number, b: number) => number,
  ) {}

  selectionSet(set: SelectionSetNode): number {
    return set.selections.reduce((total, selection) => this.combine(total, this.selection(selection)), 0);
  }

  private selection(node: SelectionNode): number {
    switch (node.kind) {
      case Kind.FIELD: {
        const inner = node.selectionSet;
        return this.fieldValue(node, () => (inner ? this.selectionSet(inner) : 0));
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

/**
 * How deep an introspection selection may go, counting every field: graphql-js's
 * `getIntrospectionQuery()` (what Apollo Sandbox and GraphiQL send, whatever its options) is 15
 * deep with its default `typeDepth` of 9; this leaves room for a tool that asks a few more
 * `ofType` levels, and refuses `{ __schema { types { fields { type { ofType { … } } } } } }`
 * nested at will (graphql-js's MaxIntrospectionDepthRule bounds only the list fields).
 */
export const MAX_INTROSPECTION_DEPTH = 20;

/**
 * Selection nesting: `{ me }` is 1 deep, `{ me { id } }` 2. Data is held to `limit`; an
 * introspection selection (`__schema`, `__type`, and everything under it) does not count there,
 * since the standard introspection query is deeper than any sensible limit on real data, but the
 * whole operation, introspection included, is held to MAX_INTROSPECTION_DEPTH (or `limit`, if
 * larger). `__typename` adds no level.
 */
export function maxDepthRule(limit: number): ValidationRule {
  const overall = Math.max(limit, MAX_INTROSPECTION_DEPTH);
  return (context) => {
    const dataDepth = (field: FieldNode, inner: () => number) => (field.name.value.startsWith('__') ? 0 : 1 + inner());
    const fullDepth = (field: FieldNode, inner: () => number) => (field.name.value === '__typename' ? 0 : 1 + inner());
    const data = new SelectionWalker(lookup(context), dataDepth, Math.max);
    const full = new SelectionWalker(lookup(context), fullDepth, Math.max);
    return {
      OperationDefinition(operation: OperationDefinitionNode) {
        const depth = data.selectionSet(operation.selectionSet);
        if (depth > limit) {
          context.reportError(overLimit('Operation depth', depth, limit, operation));
          return false;
        }
        const withIntrospection = full.selectionSet(operation.selectionSet);
        if (withIntrospection > overall) {
          context.reportError(overLimit('Introspection depth', withIntrospection, overall, operation));
        }
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

/**
 * A document over `limit` UTF-8 bytes. `limitParseOptions` has already refused, before lexing,
 * any document longer in UTF-16 code units than the limit: what gets this far was parsed at no
 * more cost than an accepted document.
 */
export function maxDocumentBytesRule(limit: number): ValidationRule {
  return (context: ValidationContext) => {
    const body = context.getDocument().loc?.source.body;
    const refusal = body === undefined ? null : documentSizeError(body, limit);
    if (refusal) context.reportError(refusal);
    return {};
  };
}

/** The refusal for a document over `limit` UTF-8 bytes, or null. */
export function documentSizeError(source: string, limit: number): GraphQLError | null {
  // A UTF-16 code unit is 1 to 3 UTF-8 bytes: most documents need no counting.
  if (source.length * 3 <= limit) return null;
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes <= limit) return null;
  // A validation error: Apollo answers it with HTTP 400 and GRAPHQL_VALIDATION_FAILED.
  return new GraphQLError(`Document size ${bytes} bytes exceeds the limit of ${limit} bytes.`);
}
