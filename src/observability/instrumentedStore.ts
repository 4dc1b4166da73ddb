import type { Metrics } from './metrics.js';
import type { Tracing } from './tracing.js';

/**
 * The store, measured: every method call that returns a promise is timed into
 * `tessera_store_command_duration_seconds{command=<method name>}` and, with tracing on, runs in
 * a span `store <method>`. The store itself does not change (a Proxy at the composition root),
 * and methods the store gains later are measured too. Calls the store makes to its own methods
 * are not counted twice: each method runs with `this` the real store. Arguments (ids, hashes,
 * emails) are never recorded.
 */
export function instrumentStore<S extends object & { readonly kind?: string }>(store: S, metrics: Metrics, tracing: Tracing | null): S {
  if (!metrics.enabled && !tracing) return store;
  const wrapped = new Map<PropertyKey, unknown>();
  const kind = store.kind ?? 'unknown';
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'constructor' || typeof property !== 'string') return value;
      let measured = wrapped.get(property);
      if (measured === undefined) {
        measured = measure(target, property, value as (...args: unknown[]) => unknown, kind, metrics, tracing);
        wrapped.set(property, measured);
      }
      return measured;
    },
  });
}

function measure(
  target: object,
  command: string,
  method: (...args: unknown[]) => unknown,
  kind: string,
  metrics: Metrics,
  tracing: Tracing | null,
): (...args: unknown[]) => unknown {
  const timed = (args: unknown[]): unknown => {
    const started = performance.now();
    const result = method.apply(target, args);
    if (!(result instanceof Promise)) return result;
    const done = () => metrics.storeCommand(command, (performance.now() - started) / 1000);
    return result.finally(done);
  };
  if (!tracing) return (...args: unknown[]) => timed(args);
  // A Redis command is a call out (a client span); the embedded store's run in process.
  const remote = kind === 'redis';
  const attributes = { 'db.system.name': remote ? 'redis' : `tessera.${kind}`, 'db.operation.name': command };
  return (...args: unknown[]) => tracing.span(`store ${command}`, attributes, () => timed(args), remote ? 'client' : 'internal');
}
