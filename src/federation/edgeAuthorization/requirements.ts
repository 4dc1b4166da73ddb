import {
  type ConstDirectiveNode,
  type ConstValueNode,
  type DefinitionNode,
  type DocumentNode,
  type FieldDefinitionNode,
  Kind,
  isTypeDefinitionNode,
  isTypeExtensionNode,
  parse,
} from 'graphql';
import { isFresh } from '../../accounts/freshAuth.js';
import type { AuthRequirements, Caller, DenialCode, FreshRequirement, Requirement, ScopeAlternatives } from './types.js';

const AUTHENTICATED_SPEC = 'https://specs.apollo.dev/authenticated/';
const REQUIRES_SCOPES_SPEC = 'https://specs.apollo.dev/requiresScopes/';
const FEDERATION_SPEC = 'https://specs.apollo.dev/federation/';
/** Tessera's step-up directive, kept in the supergraph by `@composeDirective` (docs/contract.md section 8). */
const STEP_UP_SPEC = 'https://tessera.dev/step-up/';

interface DirectiveNames {
  authenticated: Set<string>;
  requiresScopes: Set<string>;
  fresh: Set<string>;
}

/** Every `@authenticated` / `@requiresScopes` on types and fields of a supergraph SDL. */
export function collectRequirements(supergraphSdl: string): AuthRequirements {
  const document = parse(supergraphSdl, { noLocation: true });
  const names = directiveNames(document);
  const types = new Map<string, Requirement>();
  const fields = new Map<string, Requirement>();
  for (const definition of document.definitions) {
    if (!isTypeDefinitionNode(definition) && !isTypeExtensionNode(definition)) continue;
    const typeName = definition.name.value;
    addTo(types, typeName, requirementOf(definition.directives, names));
    for (const field of fieldsOf(definition)) {
      addTo(fields, `${typeName}.${field.name.value}`, requirementOf(field.directives, names));
    }
  }
  return { types, fields };
}

export function hasRequirements(requirements: AuthRequirements): boolean {
  return requirements.types.size > 0 || requirements.fields.size > 0;
}

/** All the requirements together (AND); undefined when there are none. */
export function combine(parts: ReadonlyArray<Requirement | undefined>): Requirement | undefined {
  let result: Requirement | undefined;
  for (const part of parts) {
    if (!part) continue;
    if (!result) {
      result = part;
      continue;
    }
    const fresh = stricter(result.fresh, part.fresh);
    result = { authenticated: result.authenticated || part.authenticated, scopes: [...result.scopes, ...part.scopes], ...(fresh ? { fresh } : {}) };
  }
  return result;
}

function stricter(a: FreshRequirement | undefined, b: FreshRequirement | undefined): FreshRequirement | undefined {
  if (!a || !b) return a ?? b;
  return { maxAge: Math.min(a.maxAge, b.maxAge), mfa: a.mfa || b.mfa };
}

/** Why the caller is refused: a code, and for a sign-in too old or without MFA, what a new one must meet. */
export interface Refusal {
  code: DenialCode;
  stepUp?: FreshRequirement;
}

/** null when the caller meets the requirement, else why not. */
export function evaluate(requirement: Requirement, caller: Caller): Refusal | null {
  const held: ReadonlySet<string> = caller.authenticated ? caller.scopes : new Set();
  const scopesMet = requirement.scopes.every((alternatives) =>
    alternatives.some((all) => all.every((scope) => held.has(scope))),
  );
  const { fresh } = requirement;
  if (fresh && !caller.authenticated) return { code: 'UNAUTHENTICATED' };
  if ((requirement.authenticated && !caller.authenticated) || !scopesMet) return { code: caller.authenticated ? 'FORBIDDEN' : 'UNAUTHENTICATED' };
  if (fresh && !freshEnough(fresh, caller)) return { code: 'FORBIDDEN', stepUp: fresh };
  return null;
}

/** `auth_time` at most `maxAge` seconds ago (no clock tolerance), and `acr` `aal2` when `mfa`. */
function freshEnough(fresh: FreshRequirement, caller: Caller): boolean {
  if (!isFresh(caller.authTime ?? undefined, caller.nowMs ?? Date.now(), fresh.maxAge)) return false;
  return !fresh.mfa || caller.acr === 'aal2';
}

function addTo(map: Map<string, Requirement>, key: string, requirement: Requirement | undefined): void {
  const merged = combine([map.get(key), requirement]);
  if (merged) map.set(key, merged);
}

function fieldsOf(definition: DefinitionNode): ReadonlyArray<FieldDefinitionNode> {
  switch (definition.kind) {
    case Kind.OBJECT_TYPE_DEFINITION:
    case Kind.OBJECT_TYPE_EXTENSION:
    case Kind.INTERFACE_TYPE_DEFINITION:
    case Kind.INTERFACE_TYPE_EXTENSION:
      return definition.fields ?? [];
    default:
      return [];
  }
}

function requirementOf(
  directives: ReadonlyArray<ConstDirectiveNode> | undefined,
  names: DirectiveNames,
): Requirement | undefined {
  let authenticated = false;
  const scopes: ScopeAlternatives[] = [];
  let fresh: FreshRequirement | undefined;
  for (const directive of directives ?? []) {
    const name = directive.name.value;
    if (names.authenticated.has(name)) authenticated = true;
    if (names.requiresScopes.has(name)) scopes.push(scopesArgument(directive));
    if (names.fresh.has(name)) fresh = stricter(fresh, freshArguments(directive));
  }
  if (fresh) return { authenticated, scopes, fresh };
  return authenticated || scopes.length > 0 ? { authenticated, scopes } : undefined;
}

/** `maxAge` (a negative or missing one: 0, only a sign-in this very second) and `mfa` (default false). */
function freshArguments(directive: ConstDirectiveNode): FreshRequirement {
  const maxAge = argument(directive, 'maxAge');
  const mfa = argument(directive, 'mfa');
  const seconds = maxAge?.kind === Kind.INT ? Number(maxAge.value) : 0;
  return { maxAge: Math.max(0, seconds), mfa: mfa?.kind === Kind.BOOLEAN && mfa.value };
}

function scopesArgument(directive: ConstDirectiveNode): ScopeAlternatives {
  const value = argument(directive, 'scopes');
  return value ? asList(value).map((inner) => asList(inner).map(stringOf)) : [];
}

/** GraphQL input coercion: a single value where a list is expected is a list of one. */
function asList(value: ConstValueNode): ReadonlyArray<ConstValueNode> {
  return value.kind === Kind.LIST ? value.values : [value];
}

function stringOf(value: ConstValueNode): string {
  return value.kind === Kind.STRING || value.kind === Kind.ENUM ? value.value : '';
}

function argument(directive: ConstDirectiveNode, name: string): ConstValueNode | undefined {
  return directive.arguments?.find((arg) => arg.name.value === name)?.value;
}

/**
 * The names the two directives go by in this schema, from its `@link`s: imported names (with
 * `as:`), else the feature's root directive under its namespace (`@authenticated`, or `@<as>`).
 * A subgraph SDL linking Federation itself works too. A schema without links uses the plain names.
 */
function directiveNames(document: DocumentNode): DirectiveNames {
  const names: DirectiveNames = { authenticated: new Set(), requiresScopes: new Set(), fresh: new Set() };
  const links = schemaLinks(document);
  for (const link of links) {
    const url = urlOf(link);
    if (url.startsWith(AUTHENTICATED_SPEC)) names.authenticated.add(linkedName(link, 'authenticated', true));
    if (url.startsWith(REQUIRES_SCOPES_SPEC)) names.requiresScopes.add(linkedName(link, 'requiresScopes', true));
    if (url.startsWith(STEP_UP_SPEC)) names.fresh.add(freshName(link));
    if (url.startsWith(FEDERATION_SPEC)) {
      names.authenticated.add(linkedName(link, 'authenticated', false));
      names.requiresScopes.add(linkedName(link, 'requiresScopes', false));
    }
  }
  if (links.length === 0) {
    return { authenticated: new Set(['authenticated']), requiresScopes: new Set(['requiresScopes']), fresh: new Set(['tessera__fresh']) };
  }
  return names;
}

function schemaLinks(document: DocumentNode): ConstDirectiveNode[] {
  return document.definitions.flatMap((definition) =>
    definition.kind === Kind.SCHEMA_DEFINITION || definition.kind === Kind.SCHEMA_EXTENSION
      ? (definition.directives ?? []).filter((d) => d.name.value === 'link' || d.name.value === 'core')
      : [],
  );
}

function urlOf(link: ConstDirectiveNode): string {
  const value = argument(link, 'url') ?? argument(link, 'feature');
  return value?.kind === Kind.STRING ? value.value : '';
}

function linkedName(link: ConstDirectiveNode, element: string, isRoot: boolean): string {
  const imported = importedAs(link, `@${element}`);
  if (imported) return imported.replace(/^@/, '');
  const as = argument(link, 'as');
  const namespace = as?.kind === Kind.STRING ? as.value : isRoot ? element : 'federation';
  return isRoot ? namespace : `${namespace}__${element}`;
}

/** The step-up directive's name: as imported (a supergraph: `{ name: "@fresh", as: "@tessera__fresh" }`), else `<as>__fresh`. */
function freshName(link: ConstDirectiveNode): string {
  const imported = importedAs(link, '@fresh');
  if (imported) return imported.replace(/^@/, '');
  const as = argument(link, 'as');
  return `${as?.kind === Kind.STRING ? as.value : 'tessera'}__fresh`;
}

function importedAs(link: ConstDirectiveNode, name: string): string | undefined {
  const imports = argument(link, 'import');
  for (const entry of imports ? asList(imports) : []) {
    if (entry.kind === Kind.STRING && entry.value === name) return name;
    if (entry.kind !== Kind.OBJECT) continue;
    const field = (key: string) => entry.fields.find((f) => f.name.value === key)?.value;
    const entryName = field('name');
    if (entryName?.kind !== Kind.STRING || entryName.value !== name) continue;
    const alias = field('as');
    return alias?.kind === Kind.STRING ? alias.value : name;
  }
  return undefined;
}
