import { type DirectiveNode, Kind, parse, print, visit } from 'graphql';

/**
 * The supergraph features for: SECURITY that Tessera enforces itself, at the edge, before any
 * subgraph is called (edgeAuthorization.ts): Federation's `@authenticated` and `@requiresScopes`.
 */
export const EDGE_ENFORCED_FEATURES = [
  'https://specs.apollo.dev/authenticated/',
  'https://specs.apollo.dev/requiresScopes/',
];

/**
 * @apollo/gateway refuses a supergraph that links a `for: SECURITY` feature it cannot enforce
 * (it enforces none: that is GraphOS Router's job). Tessera enforces `@authenticated` and
 * `@requiresScopes` itself, so for those two links, and only those, the `for: SECURITY` purpose is
 * dropped from the SDL the gateway plans with; the directives stay where they are. Any other
 * security feature (`@policy`, …) is left as it is, so the gateway still refuses it: fail closed.
 */
export function acceptEdgeEnforcedFeatures(supergraphSdl: string): string {
  if (!EDGE_ENFORCED_FEATURES.some((url) => supergraphSdl.includes(url))) return supergraphSdl;
  const document = parse(supergraphSdl);
  let changed = false;
  const rewritten = visit(document, {
    Directive(node: DirectiveNode) {
      if (node.name.value !== 'link' || !isEdgeEnforced(node)) return undefined;
      const args = node.arguments?.filter((arg) => arg.name.value !== 'for');
      if (args?.length === node.arguments?.length) return undefined;
      changed = true;
      return { ...node, arguments: args };
    },
  });
  return changed ? print(rewritten) : supergraphSdl;
}

function isEdgeEnforced(link: DirectiveNode): boolean {
  const url = link.arguments?.find((arg) => arg.name.value === 'url')?.value;
  return url?.kind === Kind.STRING && EDGE_ENFORCED_FEATURES.some((prefix) => url.value.startsWith(prefix));
}
