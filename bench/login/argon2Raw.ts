/**
 * The physical limit of a password login, in a process of its own: argon2id `verify` of one
 * password against its hash, with the gateway's own parameters (ARGON2_OPTIONS of
 * src/users/passwords.ts) and the same library (@node-rs/argon2, on libuv's thread pool as in the
 * gateway), `IN_FLIGHT` at a time for `ARGON2_SECONDS`. Prints one JSON line: verifies, seconds, and the
 * process's CPU time over the timed part (all threads).
 */
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_OPTIONS } from '../../src/users/passwords.js';

const seconds = Number(process.env.ARGON2_SECONDS ?? '6');
const inFlight = Number(process.env.IN_FLIGHT ?? '10');
const password = 'bench correct horse battery';

async function main(): Promise<void> {
  const stored = await hash(password, ARGON2_OPTIONS);
  // Warm: the first calls start the pool's threads and allocate their memory.
  await Promise.all(Array.from({ length: inFlight }, () => verify(stored, password)));
  let verifies = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      if (!(await verify(stored, password))) throw new Error('argon2 verify failed');
      verifies += 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(`${JSON.stringify({ verifies, seconds: elapsed, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
