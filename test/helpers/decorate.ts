/**
 * The real object with some members replaced: for watching or withholding one verb of a real
 * store (never a stand-in for Redis itself).
 */
export function decorate<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, name) {
      if (Object.prototype.hasOwnProperty.call(overrides, name)) return overrides[name as keyof T];
      const value: unknown = Reflect.get(object, name);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}
