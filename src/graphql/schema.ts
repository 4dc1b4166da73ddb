import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The SDL in `schema/` at the package root (the source of truth), read once at start. */
export function loadTypeDefs(directory = defaultSchemaDirectory()): string {
  return readdirSync(directory)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(directory, name), 'utf8'))
    .join('\n');
}

/**
 * The auth schema as the federated subgraph `auth`: `schema/*.graphql` plus the Federation
 * additions in `schema/federation/` (the `@link` and `User @key(fields: "id")`).
 */
export function loadSubgraphTypeDefs(directory = defaultSchemaDirectory()): string {
  return `${loadTypeDefs(directory)}\n${loadTypeDefs(join(directory, 'federation'))}`;
}

function defaultSchemaDirectory(): string {
  // src/graphql/schema.ts and dist/graphql/schema.js both sit two levels below the root.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema');
}
