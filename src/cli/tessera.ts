#!/usr/bin/env node
/** The `tessera` command-line tool (docs/contract.md section 1): runs one command and sets the exit status. */
import { runCli } from './run.js';
import { readPassword } from './stdin.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  readStdin: () => readPassword(process.stdin, process.stderr),
});
