import { ConfigError } from './errors.js';

/** The environment settings are read from (docs/contract.md section 1). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Stops the start with one line (main.ts prints it). */
export function fail(message: string): never {
  throw new ConfigError(message);
}

/** An empty value counts as unset (as `FOO=` in a compose file or .env means). */
export function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Quotes a value for a message, escaped so the message stays on one line, and shortened. */
export function show(value: string): string {
  const short = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return JSON.stringify(short).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
