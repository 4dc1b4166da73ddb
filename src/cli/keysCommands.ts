import type { Stats } from 'node:fs';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { newId } from '../ids.js';
import { activateKeySetJson, generateSigningJwk, keySetJson, rotateKeySetJson, SIGNING_ALGORITHMS } from '../tokens/keys.js';
import type { SigningAlgorithm } from '../tokens/types.js';
import { CliError, type CliIO, oneLine, UsageError } from './common.js';

/** `--alg`, spelled as in the contract (any case); EdDSA when absent. */
export function parseAlgorithm(raw: string | undefined): SigningAlgorithm {
  if (raw === undefined) return 'EdDSA';
  const alg = SIGNING_ALGORITHMS.find((name) => name.toLowerCase() === raw.toLowerCase());
  if (!alg) throw new UsageError(`--alg must be EdDSA or ES256, not ${JSON.stringify(raw)}`);
  return alg;
}

/** `tessera keys generate [--alg EdDSA|ES256]`: prints a JWK Set with one new private key. */
export async function keysGenerate(args: { alg?: string | undefined }, io: Pick<CliIO, 'stdout'>): Promise<void> {
  const alg = parseAlgorithm(args.alg);
  io.stdout.write(keySetJson([await generateSigningJwk(alg)]));
}

/**
 * `tessera keys rotate --file F [--alg EdDSA|ES256] [--stage]`: puts a new active key first in
 * the JWK Set file F, keeps the old keys after it (for verification), and prints the new kid.
 * With --stage the new key goes last instead: published in the JWKS and trusted for verification,
 * but not signing until `keys activate`, so no instance still on the old file ever sees a token
 * signed with a key it does not have.
 */
export async function keysRotate(
  args: { file?: string | undefined; alg?: string | undefined; stage?: boolean | undefined },
  io: Pick<CliIO, 'stdout' | 'stderr' | 'cwd'>,
): Promise<void> {
  const alg = parseAlgorithm(args.alg);
  const stage = args.stage === true;
  await rewriteKeyFile('keys rotate', args.file, io, async (text, shown) => {
    // A bad set is a ConfigError naming the file, printed as it is.
    const { json, kid, kept } = await rotateKeySetJson(text, alg, shown, { stage });
    io.stdout.write(`${kid}\n`);
    io.stderr.write(
      stage
        ? `${shown}: staged ${alg} key ${kid} (verifies, does not sign yet), ${kept} older key(s) kept; restart every gateway that uses this file, then run: tessera keys activate --file ${shown} --kid ${kid}\n`
        : `${shown}: new active ${alg} key ${kid}, ${kept} older key(s) kept; restart every gateway that uses this file\n`,
    );
    return json;
  });
}

/**
 * `tessera keys activate --file F --kid K`: makes the key K of F the active one (first), keeping
 * every other key for verification. The second step of a staged rotation.
 */
export async function keysActivate(
  args: { file?: string | undefined; kid?: string | undefined },
  io: Pick<CliIO, 'stdout' | 'stderr' | 'cwd'>,
): Promise<void> {
  const kid = args.kid;
  if (kid === undefined || kid === '') throw new UsageError('keys activate needs --kid K (the key to make active)');
  await rewriteKeyFile('keys activate', args.file, io, async (text, shown) => {
    const activated = activateKeySetJson(text, kid, shown);
    if (!activated) throw new CliError(`${shown} has no key ${JSON.stringify(kid)}`);
    io.stderr.write(
      activated.previous === kid
        ? `${shown}: ${kid} was already the active key\n`
        : `${shown}: ${kid} is now the active key (${activated.previous} still verifies); restart every gateway that uses this file\n`,
    );
    return activated.json;
  });
}

/**
 * Reads the JWK Set file, lets `change` make the new text, and replaces the file atomically (a
 * temporary file next to it, then a rename): a gateway starting meanwhile reads the old set or the
 * new one, never half of one. The new file keeps the old one's owner, group and mode (the gateway
 * may run as another user, as the Docker image's `node` does, and must still read it); when they
 * cannot be kept (not root, and the file is someone else's), nothing is replaced. Through a
 * symlink, the file it points to is replaced.
 */
async function rewriteKeyFile(
  command: string,
  file: string | undefined,
  io: Pick<CliIO, 'cwd'>,
  change: (text: string, shown: string) => Promise<string>,
): Promise<void> {
  if (file === undefined || file === '') throw new UsageError(`${command} needs --file F (the JWK Set file)`);
  const target = await realpath(resolve(io.cwd, file)).catch((err: unknown) => {
    throw new CliError(`cannot read ${file}: ${errorCode(err)}`);
  });
  const text = await readFile(target, 'utf8').catch((err: unknown) => {
    throw new CliError(`cannot read ${file}: ${errorCode(err)}`);
  });
  const original = await stat(target);
  const changed = await change(text, file);
  await replaceFile(target, changed, original, file).catch((err: unknown) => {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot write ${file}: ${errorCode(err)}`);
  });
}

/**
 * Writes `text` to a temporary file in the same directory (created 0600, so no one else can read
 * it meanwhile), gives it `like`'s owner, group and permission bits, flushes it, then renames it
 * over `path`.
 */
async function replaceFile(path: string, text: string, like: Stats, shown: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${newId()}.tmp`);
  let renamed = false;
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.chmod(0o600); // whatever the umask
      await handle.writeFile(text, 'utf8');
      const made = await handle.stat();
      if (made.uid !== like.uid || made.gid !== like.gid) {
        await handle.chown(like.uid, like.gid).catch((err: unknown) => {
          throw new CliError(
            `cannot keep the owner of ${shown} (uid ${like.uid}, gid ${like.gid}): ${errorCode(err)}; run this as that user or as root (the file was left as it was)`,
          );
        });
      }
      // After chown, which may clear the set-id bits.
      await handle.chmod(like.mode & 0o7777);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) await unlink(tmp).catch(() => undefined);
  }
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  EROFS: 'read-only file system',
};

/** A file-system error in a few words: `no such file (ENOENT)`. */
function errorCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') return oneLine(err);
  const words = FILE_ERRORS[code];
  return words ? `${words} (${code})` : code;
}
