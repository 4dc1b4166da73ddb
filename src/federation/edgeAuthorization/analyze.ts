import {
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  getNamedType,
  isCompositeType,
  isInterfaceType,
  isObjectType,
} from 'graphql';
import { combine, evaluate, type Refusal } from './requirements.js';
import type { AuthRequirements, Caller, Denial, DenialCode, FreshRequirement } from './types.js';

/** What walking one operation found: the denied field nodes (with their stand-in alias) and where. */
export interface Analysis {
  denied: Map<FieldNode, string>;
  denials: Denial[];
}

interface Verdict {
  code: DenialCode;
  /** A sign-in too old or without MFA: what a new one must meet (FORBIDDEN STEP_UP_REQUIRED). */
  stepUp?: FreshRequirement;
  /** `Type.field` of the denied field. */
  coordinate: string;
  /** What the message names: the field, or the type of the fragment it was selected through. */
  subject: string;
  omit: boolean;
}

interface Walk {
  schema: GraphQLSchema;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  requirements: AuthRequirements;
  caller: Caller;
  verdicts: Map<string, Verdict | null>;
  denied: Map<FieldNode, string>;
  denials: Map<string, Denial>;
}

interface Position {
  path: readonly string[];
  types: readonly string[];
}

export const MARKER_PREFIX = '_tesseraDenied_';

/**
 * Walks the operation as execution would (through inline fragments and fragment spreads) and
 * records each field the caller may not see, at every response path it would appear at. A denied
 * field's own selections are not walked: it is null, so nothing under it is resolved.
 */
export function analyzeOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  requirements: AuthRequirements,
  caller: Caller,
): Analysis {
  const walk: Walk = { schema, fragments, requirements, caller, verdicts: new Map(), denied: new Map(), denials: new Map() };
  const root = schema.getRootType(operation.operation);
  if (root) walkSelections(walk, operation.selectionSet, root, { path: [], types: [] }, new Set());
  return { denied: walk.denied, denials: [...walk.denials.values()] };
}

function walkSelections(
  walk: Walk,
  selectionSet: SelectionSetNode,
  parent: GraphQLCompositeType,
  at: Position,
  activeFragments: ReadonlySet<string>,
): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      walkField(walk, selection, parent, at, activeFragments);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const type = selection.typeCondition ? compositeType(walk, selection.typeCondition.name.value) : parent;
      if (type) walkSelections(walk, selection.selectionSet, type, at, activeFragments);
    } else {
      const name = selection.name.value;
      const fragment = walk.fragments.get(name);
      const type = fragment && compositeType(walk, fragment.typeCondition.name.value);
      if (!fragment || !type || activeFragments.has(name)) continue;
      walkSelections(walk, fragment.selectionSet, type, at, new Set([...activeFragments, name]));
    }
  }
}

function walkField(
  walk: Walk,
  node: FieldNode,
  parent: GraphQLCompositeType,
  at: Position,
  activeFragments: ReadonlySet<string>,
): void {
  const definition = fieldDefinition(parent, node.name.value);
  if (!definition) return;
  const key = node.alias?.value ?? node.name.value;
  const here: Position = { path: [...at.path, key], types: [...at.types, String(definition.type)] };
  const verdict = judge(walk, parent, definition);
  if (verdict) {
    deny(walk, node, key, here, verdict);
    return;
  }
  const named = getNamedType(definition.type);
  if (node.selectionSet && isCompositeType(named)) walkSelections(walk, node.selectionSet, named, here, activeFragments);
}

/** Introspection fields (`__typename`, `__schema`, `__type`) are never checked. */
function fieldDefinition(parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) return undefined;
  return parent.getFields()[name];
}

function compositeType(walk: Walk, name: string): GraphQLCompositeType | undefined {
  const type = walk.schema.getType(name);
  return isCompositeType(type) ? type : undefined;
}

/**
 * A field is checked against its own marks and those of the type it returns: it is null when they
 * fail. Selected through a fragment on a marked type, the type's marks apply too: the field is left
 * out (Router removes the fragment). A marked root operation type applies to its fields directly.
 */
function judge(walk: Walk, parent: GraphQLCompositeType, field: GraphQLField<unknown, unknown>): Verdict | null {
  const coordinate = `${parent.name}.${field.name}`;
  const cached = walk.verdicts.get(coordinate);
  if (cached !== undefined) return cached;
  const { types, fields } = walk.requirements;
  const onParent = types.get(parent.name);
  const isRoot = isRootType(walk.schema, parent);
  const own = combine([fields.get(coordinate), types.get(getNamedType(field.type).name), isRoot ? onParent : undefined]);
  const ownRefusal = own ? evaluate(own, walk.caller) : null;
  const parentRefusal = !ownRefusal && !isRoot && onParent ? evaluate(onParent, walk.caller) : null;
  const verdict: Verdict | null =
    ownRefusal ? verdictOf(ownRefusal, coordinate, coordinate, false) :
    parentRefusal ? verdictOf(parentRefusal, coordinate, parent.name, true) :
    null;
  walk.verdicts.set(coordinate, verdict);
  return verdict;
}

function verdictOf(refusal: Refusal, coordinate: string, subject: string, omit: boolean): Verdict {
  return { code: refusal.code, ...(refusal.stepUp ? { stepUp: refusal.stepUp } : {}), coordinate, subject, omit };
}

function isRootType(schema: GraphQLSchema, type: GraphQLCompositeType): boolean {
  return type === schema.getQueryType() || type === schema.getMutationType() || type === schema.getSubscriptionType();
}

function deny(walk: Walk, node: FieldNode, key: string, at: Position, verdict: Verdict): void {
  const marker = `${MARKER_PREFIX}${key}_${verdict.coordinate.replace('.', '_')}`;
  walk.denied.set(node, marker);
  const id = `${at.path.join('.')}|${marker}`;
  if (walk.denials.has(id)) return;
  walk.denials.set(id, {
    path: [...at.path],
    code: verdict.code,
    message: messageFor(verdict),
    ...(verdict.code === 'UNAUTHENTICATED' ? { reason: walk.caller.reason ?? 'TOKEN_MISSING' } : {}),
    ...(verdict.stepUp ? { reason: 'STEP_UP_REQUIRED' as const, stepUp: verdict.stepUp } : {}),
    coordinate: verdict.coordinate,
    ...(verdict.omit ? { omit: true } : {}),
    marker,
    types: [...at.types],
  });
}

function messageFor({ code, subject, stepUp }: Verdict): string {
  if (stepUp) {
    return stepUp.mfa
      ? `"${subject}" needs a sign-in with a second factor within the last ${stepUp.maxAge} seconds: reauthenticate.`
      : `"${subject}" needs a sign-in within the last ${stepUp.maxAge} seconds: reauthenticate.`;
  }
  return code === 'UNAUTHENTICATED'
    ? `You must be signed in to access "${subject}".`
    : `You do not have the scopes required to access "${subject}".`;
}
