import { type FormattedExecutionResult, type GraphQLFormattedError, Kind, type TypeNode, parseType } from 'graphql';
import type { Denial } from './types.js';

type Json = Record<string, unknown>;
type ResponsePath = ReadonlyArray<string | number>;

interface Pass {
  denial: Denial;
  types: ReadonlyArray<TypeNode>;
  report: (path: ResponsePath) => void;
}

/**
 * Puts null at every denied position of `result.data` (through lists, skipping null parents),
 * with one error per concrete position, and propagates null from a non-null field to the nearest
 * nullable ancestor as GraphQL execution would. Does not mutate `result`.
 */
export function applyDenials(result: FormattedExecutionResult, denials: ReadonlyArray<Denial>): FormattedExecutionResult {
  if (denials.length === 0 || !isObject(result.data)) return result;
  const data = structuredClone(result.data);
  const errors: GraphQLFormattedError[] = [];
  const reported = new Set<string>();
  let dataNulled = false;
  for (const denial of denials) {
    if (dataNulled) break;
    const report = (path: ResponsePath) => {
      const id = JSON.stringify(path);
      if (!reported.has(id)) errors.push(errorFor(denial, path));
      reported.add(id);
    };
    const types = denial.types.map((type) => parseType(type, { noLocation: true }));
    dataNulled = applyToObject(data, { denial, types, report }, 0, []);
  }
  const allErrors = [...(result.errors ?? []), ...errors];
  return { ...result, data: dataNulled ? null : data, ...(allErrors.length > 0 ? { errors: allErrors } : {}) };
}

function errorFor(denial: Denial, path: ResponsePath): GraphQLFormattedError {
  const extensions: Record<string, unknown> = denial.reason ? { code: denial.code, reason: denial.reason } : { code: denial.code };
  if (denial.stepUp) Object.assign(extensions, { maxAge: denial.stepUp.maxAge, mfa: denial.stepUp.mfa });
  return { message: denial.message, path: [...path], extensions };
}

/** Returns true when `object` itself must become null (a non-null field under it became null). */
function applyToObject(object: Json, pass: Pass, depth: number, at: ResponsePath): boolean {
  const key = pass.denial.path[depth];
  if (key === undefined) return false;
  const type = pass.types[depth];
  if (depth === pass.denial.path.length - 1) return denyField(object, key, type, pass, at);
  const child = object[key];
  if (child === null || child === undefined) return false;
  if (!applyToValue(child, type, pass, depth + 1, [...at, key])) return false;
  object[key] = null;
  return isNonNull(type);
}

function applyToValue(value: unknown, type: TypeNode | undefined, pass: Pass, depth: number, at: ResponsePath): boolean {
  const nullable = type?.kind === Kind.NON_NULL_TYPE ? type.type : type;
  if (Array.isArray(value)) return applyToList(value, nullable?.kind === Kind.LIST_TYPE ? nullable.type : undefined, pass, depth, at);
  return isObject(value) ? applyToObject(value, pass, depth, at) : false;
}

function applyToList(list: unknown[], itemType: TypeNode | undefined, pass: Pass, depth: number, at: ResponsePath): boolean {
  for (const [index, item] of list.entries()) {
    if (item === null || item === undefined) continue;
    if (!applyToValue(item, itemType, pass, depth, [...at, index])) continue;
    if (isNonNull(itemType)) return true;
    list[index] = null;
  }
  return false;
}

/**
 * The denied field itself: only where its marker came back (where GraphQL would have resolved the
 * field: its type condition and `@include`/`@skip` held), and never over a value another, allowed
 * selection with the same response key produced.
 */
function denyField(object: Json, key: string, type: TypeNode | undefined, pass: Pass, at: ResponsePath): boolean {
  const marker = pass.denial.marker;
  if (pass.denial.omit) return omitField(object, marker, pass, at);
  if (!(marker in object)) return false;
  const hasValue = object[key] !== null && object[key] !== undefined;
  replaceKey(object, marker, hasValue ? undefined : key);
  if (hasValue) return false;
  pass.report([...at, key]);
  return isNonNull(type);
}

/** A field left out, as Router leaves out a fragment on a type the caller may not see. */
function omitField(object: Json, marker: string, pass: Pass, at: ResponsePath): boolean {
  if (!(marker in object)) return false;
  replaceKey(object, marker, undefined);
  pass.report(at);
  return false;
}

/** Removes `marker`, putting `key: null` in its place (keeping the response's key order). */
function replaceKey(object: Json, marker: string, key: string | undefined): void {
  const entries = Object.entries(object);
  for (const name of Object.keys(object)) delete object[name];
  for (const [name, value] of entries) {
    if (name !== marker) object[name] = value;
    else if (key !== undefined && !(key in object)) object[key] = null;
  }
}

function isNonNull(type: TypeNode | undefined): boolean {
  return type?.kind === Kind.NON_NULL_TYPE;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
