/**
 * A Lua script of the Redis store, with its keys and arguments declared once, by name. The
 * positional KEYS and ARGV arrays are built from an object of named values (`argv`), and the Lua
 * side reads them through locals generated from the same names (camelCase in TypeScript,
 * snake_case in Lua: `idleMs` is `idle_ms`), so no argument is matched by position by hand.
 *
 * Every script also takes, as its last argument, a deadline in Redis's own clock (ms): a command
 * that waited past the caller's timeout (a hung or paused server) must not write when it finally
 * runs, since the caller has already answered SERVICE_UNAVAILABLE. It then fails with
 * TESSERA_DEADLINE having changed nothing.
 */

/** How an argument reaches the script: `number` arguments are read with tonumber. */
export type ArgType = 'number' | 'string';
export type ArgSpec = Readonly<Record<string, ArgType>>;
export type ScriptArg = string | number | Buffer;

/** The named values a call passes: each key a string, each argument of its declared type. */
export type ScriptInput<K extends string, A extends ArgSpec> = { readonly [k in K]: string } & {
  readonly [a in keyof A]: A[a] extends 'number' ? number : string | Buffer;
};

export interface ScriptDefinition<K extends string, A extends ArgSpec> {
  /** The command name ioredis defines for it. */
  name: string;
  /** KEYS, in order. */
  keys: readonly K[];
  /** ARGV, in order, and their types. */
  args: A;
  /** Lua placed after the generated locals (so it may read them): functions the body calls. */
  library?: string;
  /** The body, which reads the keys and arguments by their Lua names. */
  lua: string;
  /** Its replies carry binary values (packed session records): read them as Buffers. */
  buffers?: boolean;
}

export interface RedisScript<K extends string = string, A extends ArgSpec = ArgSpec> {
  readonly name: string;
  readonly numberOfKeys: number;
  /** The whole script: generated locals, library, the deadline check, the body. */
  readonly lua: string;
  readonly buffers: boolean;
  /** KEYS then ARGV, in the declared order, from named values; the deadline last. */
  argv(input: ScriptInput<K, A>, deadline: number): ScriptArg[];
}

const LUA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LUA_RESERVED = new Set(
  'and break do else elseif end false for function goto if in local nil not or repeat return then true until while'.split(' '),
);
/** Locals every script defines itself. */
const BUILT_IN = new Set(['deadline', 'clock']);

/** `idleMs` → `idle_ms`: the Lua name of a key or argument. */
export function luaName(name: string): string {
  const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  if (!LUA_NAME.test(snake) || LUA_RESERVED.has(snake) || BUILT_IN.has(snake)) {
    throw new Error(`script argument ${JSON.stringify(name)} has no usable Lua name`);
  }
  return snake;
}

export function defineScript<const K extends string, const A extends ArgSpec>(
  definition: ScriptDefinition<K, A>,
): RedisScript<K, A> {
  const argNames = Object.keys(definition.args) as (keyof A & string)[];
  const names = [...definition.keys, ...argNames].map(luaName);
  if (new Set(names).size !== names.length) throw new Error(`script ${definition.name} names a key or argument twice`);
  const locals = [
    ...definition.keys.map((key, i) => `local ${luaName(key)} = KEYS[${i + 1}]`),
    ...argNames.map((arg, i) => {
      const value = `ARGV[${i + 1}]`;
      return `local ${luaName(arg)} = ${definition.args[arg] === 'number' ? `tonumber(${value})` : value}`;
    }),
    `local deadline = tonumber(ARGV[${argNames.length + 1}])`,
  ];
  const lua = [
    locals.join('\n'),
    definition.library ?? '',
    `local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > deadline then
  return redis.error_reply('TESSERA_DEADLINE the command ran after its caller gave up')
end`,
    definition.lua.trim(),
  ]
    .filter(Boolean)
    .join('\n');
  return {
    name: definition.name,
    numberOfKeys: definition.keys.length,
    lua,
    buffers: definition.buffers ?? false,
    argv(input, deadline) {
      const values = input as Record<string, ScriptArg>;
      return [...definition.keys.map((key) => values[key]!), ...argNames.map((arg) => values[arg]!), deadline];
    },
  };
}
