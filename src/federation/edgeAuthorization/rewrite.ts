import {
  type ASTNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  visit,
} from 'graphql';

const KEPT_DIRECTIVES = new Set(['include', 'skip']);

/**
 * The document to execute: the operation alone, each denied field replaced by
 * `<marker>: __typename` carrying the field's own `@include`/`@skip` (so a marker is in the
 * response exactly where the field would have been resolved, and no selection set is ever left
 * empty), then only the fragments and variables still used.
 */
export function rewriteDocument(
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  denied: ReadonlyMap<FieldNode, string>,
): DocumentNode {
  const replace = <T extends ASTNode>(node: T): T =>
    visit(node, {
      Field(field) {
        const marker = denied.get(field);
        return marker === undefined ? undefined : markerField(field, marker);
      },
    });
  const rewritten = replace(operation);
  const kept = reachableFragments(rewritten, fragments, replace);
  const withVariables = withUsedVariables(rewritten, kept);
  return { kind: Kind.DOCUMENT, definitions: [withVariables, ...kept] };
}

function markerField(field: FieldNode, marker: string): FieldNode {
  const directives: DirectiveNode[] = (field.directives ?? []).filter((d) => KEPT_DIRECTIVES.has(d.name.value));
  return {
    kind: Kind.FIELD,
    alias: { kind: Kind.NAME, value: marker },
    name: { kind: Kind.NAME, value: '__typename' },
    directives,
  };
}

function reachableFragments(
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  replace: (fragment: FragmentDefinitionNode) => FragmentDefinitionNode,
): FragmentDefinitionNode[] {
  const kept = new Map<string, FragmentDefinitionNode>();
  const pending = spreadNames(operation);
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const fragment = fragments.get(name);
    if (kept.has(name) || !fragment) continue;
    const rewritten = replace(fragment);
    kept.set(name, rewritten);
    pending.push(...spreadNames(rewritten));
  }
  return [...fragments.keys()].flatMap((name) => kept.get(name) ?? []);
}

function spreadNames(node: ASTNode): string[] {
  const names: string[] = [];
  visit(node, { FragmentSpread: (spread) => void names.push(spread.name.value) });
  return names;
}

function withUsedVariables(
  operation: OperationDefinitionNode,
  fragments: ReadonlyArray<FragmentDefinitionNode>,
): OperationDefinitionNode {
  const definitions = operation.variableDefinitions ?? [];
  if (definitions.length === 0) return operation;
  const used = new Set<string>();
  const collect = {
    VariableDefinition: () => false,
    Variable: (variable: { name: { value: string } }) => void used.add(variable.name.value),
  };
  visit(operation, collect);
  for (const fragment of fragments) visit(fragment, collect);
  const variableDefinitions = definitions.filter((d) => used.has(d.variable.name.value));
  return variableDefinitions.length === definitions.length ? operation : { ...operation, variableDefinitions };
}
