import { GraphQLError } from 'graphql';
import { StoreUnavailableError, TesseraError } from '../errors.js';

/**
 * Where domain errors (src/errors.ts) become GraphQL errors: as a resolver throws them. The
 * extensions are those of the contract (docs/contract.md section 4): `code`, `reason` when there
 * is one, the error's extra fields (`retryAfter`, …), and `http` when it asks for a status,
 * which Apollo Server applies to the response.
 */
export function toGraphQLError(error: TesseraError): GraphQLError {
  const extensions: Record<string, unknown> = { code: error.code };
  if (error.reason !== undefined) extensions.reason = error.reason;
  Object.assign(extensions, error.extra);
  if (error.httpStatus !== undefined) extensions.http = { status: error.httpStatus };
  return new GraphQLError(error.message, { extensions, originalError: error });
}

function rethrow(error: unknown): never {
  throw error instanceof TesseraError ? toGraphQLError(error) : error;
}

type Resolver = (this: unknown, ...args: never[]) => unknown;

/** A resolver whose domain errors, thrown or rejected, leave it as GraphQL errors. */
export function guarded<F extends Resolver>(resolve: F): F {
  return function (this: unknown, ...args: Parameters<F>) {
    try {
      const result = resolve.apply(this, args);
      return result instanceof Promise ? result.then(undefined, rethrow) : result;
    } catch (error) {
      return rethrow(error);
    }
  } as F;
}

/**
 * A resolver map with every field resolver `guarded` (for a field given as an object, such as a
 * subscription's `{ subscribe, resolve }`, each of its functions). Scalars and other class instances (a
 * GraphQLScalarType) are left as they are.
 */
export function withGraphQLErrors<T extends object>(map: T): T {
  const out: Record<string, unknown> = {};
  for (const [typeName, fields] of Object.entries(map)) {
    if (!isPlainObject(fields)) {
      out[typeName] = fields;
      continue;
    }
    const wrapped: Record<string, unknown> = {};
    for (const [field, resolve] of Object.entries(fields)) {
      wrapped[field] = typeof resolve === 'function' ? guarded(resolve as Resolver) : isPlainObject(resolve) ? guardedMembers(resolve) : resolve;
    }
    out[typeName] = wrapped;
  }
  return out as T;
}

/** A field given as `{ subscribe, resolve }` (a subscription's root field): each function guarded. */
function guardedMembers(field: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(field)) out[name] = typeof value === 'function' ? guarded(value as Resolver) : value;
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * The domain error behind a GraphQL error (graphql-js and @apollo/gateway each wrap what a
 * resolver threw, keeping it as `originalError`), or null when there is none.
 */
export function domainErrorOf(error: unknown): TesseraError | StoreUnavailableError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (current instanceof TesseraError || current instanceof StoreUnavailableError) return current;
    current = (current as { originalError?: unknown }).originalError;
  }
  return null;
}
