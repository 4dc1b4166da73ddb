import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  Kind,
  type SelectionSetNode,
  getNamedType,
  isCompositeType,
  isInterfaceType,
  isObjectType,
} from 'graphql';

interface Lookup {
  schema: GraphQLSchema;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  path: readonly string[];
}

interface Located {
  node: FieldNode;
  parent: GraphQLCompositeType;
}

/**
 * The declared type of each field along a response path, read from the document's fields and the
 * schema (for denials that do not carry their own `types`). Empty when the path is not found.
 */
export function resolvePathTypes(schema: GraphQLSchema, document: DocumentNode, path: readonly string[]): string[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const lookup: Lookup = { schema, fragments, path };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const root = schema.getRootType(definition.operation);
    const found = root ? typesFrom(lookup, definition.selectionSet, root, 0) : undefined;
    if (found) return found;
  }
  return [];
}

function typesFrom(lookup: Lookup, set: SelectionSetNode, parent: GraphQLCompositeType, depth: number): string[] | undefined {
  const key = lookup.path[depth];
  if (key === undefined) return [];
  for (const { node, parent: owner } of fieldsWithKey(lookup, set, parent, key, new Set())) {
    const field = isObjectType(owner) || isInterfaceType(owner) ? owner.getFields()[node.name.value] : undefined;
    if (!field) continue;
    const named = getNamedType(field.type);
    const rest =
      depth + 1 === lookup.path.length ? [] :
      node.selectionSet && isCompositeType(named) ? typesFrom(lookup, node.selectionSet, named, depth + 1) : undefined;
    if (rest) return [String(field.type), ...rest];
  }
  return undefined;
}

function fieldsWithKey(
  lookup: Lookup,
  set: SelectionSetNode,
  parent: GraphQLCompositeType,
  key: string,
  active: ReadonlySet<string>,
): Located[] {
  return set.selections.flatMap((selection): Located[] => {
    if (selection.kind === Kind.FIELD) return (selection.alias?.value ?? selection.name.value) === key ? [{ node: selection, parent }] : [];
    const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? lookup.fragments.get(selection.name.value) : selection;
    if (!fragment || (selection.kind === Kind.FRAGMENT_SPREAD && active.has(selection.name.value))) return [];
    const condition = fragment.typeCondition ? lookup.schema.getType(fragment.typeCondition.name.value) : parent;
    if (!isCompositeType(condition)) return [];
    const nextActive = selection.kind === Kind.FRAGMENT_SPREAD ? new Set([...active, selection.name.value]) : active;
    return fieldsWithKey(lookup, fragment.selectionSet, condition, key, nextActive);
  });
}
