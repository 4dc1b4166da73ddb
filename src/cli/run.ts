import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../errors.js';
import { CliError, type CliIO, oneLine, UsageError } from './common.js';
import { keysActivate, keysGenerate, keysRotate } from './keysCommands.js';
import { sessionsList, sessionsRevoke, usersChange, usersList, usersRoles } from './accountCommands.js';
import { usersAdd } from './usersCommand.js';

export const USAGE = `Usage: tessera <command> [options]

Commands:
  keys generate [--alg EdDSA|ES256]
      Print a JWK Set with one new private signing key (default EdDSA), for SIGNING_KEYS.
      Keep the file private, e.g.: (umask 077; tessera keys generate > signing-keys.json)

  keys rotate --file F [--alg EdDSA|ES256] [--stage]
      Put a new active key first in the JWK Set file F, keeping the old keys for
      verification, and print its kid. Restart every gateway that uses F. F is replaced
      atomically and keeps its owner, group and mode.
      --stage: add the new key last instead, verifying but not signing yet; once every
      gateway runs with F, make it active with keys activate (no instance ever meets a
      token signed with a key it lacks).

  keys activate --file F --kid K
      Make the key K of F the active (signing) key, keeping the others for verification.
      Restart every gateway that uses F.

  users add --email E [--roles a,b]
      Create a user in the gateway's Redis (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS,
      and REDIS_KEY_PREFIX), with the
      password read from standard input (its first line; asked for on a terminal).
      Roles default to "user". Prints the new user's id.
      e.g.: tessera users add --email ada@example.com --roles user,admin < password.txt

  users list [--email-prefix P]
      Every user (or those whose email starts with P) in email order, one line each:
      id, email, roles, flags (verified/unverified, disabled, no-password), tab-separated.

  users disable --email E | users enable --email E | users delete --email E
      Disable the account (every session ends at once, login refused), enable it again, or
      delete it and everything it holds (the email may sign up again).

  users roles --email E --set a,b
      Replace the user's roles; their tokens carry them from the next refresh.

  sessions list --email E
      The user's live sessions, newest first: id, created, last refresh, expires, IP, User-Agent.

  sessions revoke --email E [--id S]
      End one session (--id) or all of the user's sessions, on every gateway within a second.

  The users and sessions commands use the same Redis settings as users add.

Options:
  -h, --help   Show this help.

Exit status: 0 done, 1 failed, 2 bad usage.
`;

type Options = NonNullable<ParseArgsConfig['options']>;

interface Command {
  options: Options;
  run(values: Record<string, string | boolean | undefined>, io: CliIO): Promise<void>;
}

const ALG: Options = { alg: { type: 'string' } };

/** A string option's value (parseArgs gives booleans for boolean options only). */
const text = (value: string | boolean | undefined): string | undefined => (typeof value === 'string' ? value : undefined);

const COMMANDS: Record<string, Command> = {
  'keys generate': { options: ALG, run: (values, io) => keysGenerate({ alg: text(values.alg) }, io) },
  'keys rotate': {
    options: { ...ALG, file: { type: 'string' }, stage: { type: 'boolean' } },
    run: (values, io) => keysRotate({ file: text(values.file), alg: text(values.alg), stage: values.stage === true }, io),
  },
  'keys activate': {
    options: { file: { type: 'string' }, kid: { type: 'string' } },
    run: (values, io) => keysActivate({ file: text(values.file), kid: text(values.kid) }, io),
  },
  'users list': { options: { 'email-prefix': { type: 'string' } }, run: (values, io) => usersList({ 'email-prefix': text(values['email-prefix']) }, io) },
  'users disable': { options: { email: { type: 'string' } }, run: (values, io) => usersChange('disable')({ email: text(values.email) }, io) },
  'users enable': { options: { email: { type: 'string' } }, run: (values, io) => usersChange('enable')({ email: text(values.email) }, io) },
  'users delete': { options: { email: { type: 'string' } }, run: (values, io) => usersChange('delete')({ email: text(values.email) }, io) },
  'users roles': {
    options: { email: { type: 'string' }, set: { type: 'string' } },
    run: (values, io) => usersRoles({ email: text(values.email), set: text(values.set) }, io),
  },
  'sessions list': { options: { email: { type: 'string' } }, run: (values, io) => sessionsList({ email: text(values.email) }, io) },
  'sessions revoke': {
    options: { email: { type: 'string' }, id: { type: 'string' } },
    run: (values, io) => sessionsRevoke({ email: text(values.email), id: text(values.id) }, io),
  },
  'users add': {
    options: { email: { type: 'string' }, roles: { type: 'string' } },
    run: (values, io) => usersAdd({ email: text(values.email), roles: text(values.roles) }, io),
  },
};

const HELP = new Set(['-h', '--help', 'help']);

/** Parses `argv` (without `node` and the script), runs the command, and returns the exit status. */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const [group, name, ...rest] = argv;
  if (group === undefined || HELP.has(group)) {
    io.stdout.write(USAGE);
    return 0;
  }
  const commandName = `${group} ${name ?? ''}`.trim();
  const command = COMMANDS[commandName];
  if (!command || name === undefined) {
    io.stderr.write(`tessera: unknown command ${JSON.stringify(commandName)}\n\n${USAGE}`);
    return 2;
  }
  try {
    const values = parseCommandArgs(commandName, command.options, rest);
    if (values.help === true) {
      io.stdout.write(USAGE);
      return 0;
    }
    await command.run(values, io);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`tessera: ${error.message} (see tessera --help)\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof CliError) {
      io.stderr.write(`tessera: ${error.message}\n`);
      return 1;
    }
    io.stderr.write(`tessera: ${oneLine(error)}\n`);
    return 1;
  }
}

/**
 * `--id -Xy…` as `--id=-Xy…`: a string option takes the next word as its value even when it starts
 * with a dash (ids are base64url, so one in 64 does), unless that word is one of the command's
 * options. parseArgs alone refuses such a value as ambiguous.
 */
function joinStringValues(options: Options, args: string[]): string[] {
  const names = new Set(Object.keys(options).map((name) => `--${name}`));
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const name = word.startsWith('--') ? word.slice(2) : null;
    const next = args[i + 1];
    if (name !== null && options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && !names.has(next) && next !== '--help' && next !== '-h') {
      joined.push(`${word}=${next}`);
      i++;
    } else {
      joined.push(word);
    }
  }
  return joined;
}

function parseCommandArgs(commandName: string, options: Options, args: string[]): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({
      args: joinStringValues(options, args),
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    return values as Record<string, string | boolean | undefined>;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const quoted = /'([^']*)'/.exec(oneLine(error))?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted !== undefined) {
      throw new UsageError(`unknown option ${quoted} for ${commandName}`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && quoted !== undefined) {
      throw new UsageError(`unexpected argument ${JSON.stringify(quoted)} for ${commandName}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError(`${oneLine(error)} for ${commandName}`);
    }
    throw error;
  }
}
