import { type DocumentNode, type FragmentDefinitionNode, type GraphQLSchema, Kind, assertSchema, getOperationAST } from 'graphql';
import { analyzeOperation } from './edgeAuthorization/analyze.js';
import { hasRequirements } from './edgeAuthorization/requirements.js';
import { rewriteDocument } from './edgeAuthorization/rewrite.js';
import type { AuthRequirements, Caller, Denial } from './edgeAuthorization/types.js';

/*
 * Authorization at the edge (docs/contract.md section 6), as GraphOS Router does it: fields and types of the
 * supergraph marked with Federation's `@authenticated` / `@requiresScopes` are checked before any
 * subgraph is called. A field the caller may not see is taken out of the operation and comes back
 * null with an UNAUTHENTICATED (no caller) or FORBIDDEN (missing scopes) error; the rest runs.
 *
 *   const requirements = collectRequirements(supergraphSdl);                  // per supergraph
 *   const { document, denials } = authorizeOperation({ schema, document, operationName, requirements, caller });
 *   const result = await execute(document);
 *   return applyDenials(result, denials);
 *
 * A rewritten document is another operation to the query planner: authorizingGateway.ts caches its
 * plan under the hash of its own printed source, never under the original's.
 */

export { collectRequirements, hasRequirements } from './edgeAuthorization/requirements.js';
export { applyDenials } from './edgeAuthorization/apply.js';
export type { AuthRequirements, Caller, Denial, DenialCode } from './edgeAuthorization/types.js';

export interface AuthorizeInput {
  /** The API schema (what clients see). */
  schema: GraphQLSchema;
  /** A document already validated against `schema`. */
  document: DocumentNode;
  operationName?: string | null;
  requirements: AuthRequirements;
  caller: Caller;
}

/**
 * The document to execute and the denials to apply to its result. When nothing is denied, the
 * very same document object and an empty list (cached query plans stay valid). Otherwise a new
 * document with only the chosen operation, each denied field replaced by an aliased `__typename`
 * (see Denial.marker), unused fragments and variables removed; it validates against `schema`.
 */
export function authorizeOperation(input: AuthorizeInput): { document: DocumentNode; denials: Denial[] } {
  const { schema, document, requirements, caller } = input;
  const unchanged = { document, denials: [] };
  if (!hasRequirements(requirements)) return unchanged;
  // Fail closed: a schema from another copy of graphql would make every type check below false.
  assertSchema(schema);
  // The named operation, or the only one. An empty name is none, as @apollo/gateway reads it.
  const operation = getOperationAST(document, input.operationName || undefined);
  if (!operation) return unchanged;
  const fragments = fragmentsOf(document);
  const { denied, denials } = analyzeOperation(schema, operation, fragments, requirements, caller);
  if (denials.length === 0) return unchanged;
  return { document: rewriteDocument(operation, fragments, denied), denials };
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  return fragments;
}
