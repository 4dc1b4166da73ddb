import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_USAGE, parseBenchArgs, SCENARIO_NAMES } from '../../bench/lib/args.js';
import { npm, stageRepository } from '../helpers/builtGateway.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

describe('npm run bench: its command line', () => {
  it('--help and -h ask for the usage, whatever else is given', () => {
    for (const argv of [['--help'], ['-h'], ['--quick', '--help'], ['--bogus', '-h']]) {
      expect(parseBenchArgs(argv)).toEqual({ kind: 'help' });
    }
  });

  it('the usage lists every option and every scenario name', () => {
    for (const option of ['--quick', '--memory', '--no-memory', '--profile', '--gateway', '--no-gateway', '--login', '--no-login', '--realtime', '--no-realtime', '--duration=', '--rounds=', '--only=', '--help']) {
      expect(BENCH_USAGE).toContain(option);
    }
    for (const name of SCENARIO_NAMES) expect(BENCH_USAGE).toContain(name);
    expect(SCENARIO_NAMES).toContain('warmMeId');
  });

  it('no option: everything, with the defaults', () => {
    expect(parseBenchArgs([])).toEqual({
      kind: 'run',
      options: { quick: false, memoryOnly: false, noMemory: false, profile: false, gatewayOnly: false, noGateway: false, loginOnly: false, noLogin: false, realtimeOnly: false, noRealtime: false, durationSec: null, rounds: null, only: null },
    });
  });

  it('reads each option', () => {
    const parsed = parseBenchArgs(['--quick', '--no-memory', '--profile', '--duration=1.5', '--rounds=3', '--only=warmMeId,coldMeId']);
    expect(parsed).toEqual({
      kind: 'run',
      options: {
        quick: true,
        memoryOnly: false,
        noMemory: true,
        profile: true,
        gatewayOnly: false,
        noGateway: false,
        loginOnly: false,
        noLogin: false,
        realtimeOnly: false,
        noRealtime: false,
        durationSec: 1.5,
        rounds: 3,
        only: new Set(['warmMeId', 'coldMeId']),
      },
    });
    expect(parseBenchArgs(['--memory'])).toMatchObject({ kind: 'run', options: { memoryOnly: true } });
    expect(parseBenchArgs(['--login', '--quick'])).toMatchObject({ kind: 'run', options: { loginOnly: true, quick: true } });
    expect(parseBenchArgs(['--no-login'])).toMatchObject({ kind: 'run', options: { noLogin: true } });
    expect(parseBenchArgs(['--realtime'])).toMatchObject({ kind: 'run', options: { realtimeOnly: true } });
    expect(parseBenchArgs(['--no-realtime'])).toMatchObject({ kind: 'run', options: { noRealtime: true } });
  });

  it('refuses what it does not know, in one line naming it', () => {
    const refusals: [string[], RegExp][] = [
      [['--bogus'], /^unknown option "--bogus" /],
      [['quick'], /^unknown option "quick" /],
      [['--quick=yes'], /^unknown option "--quick=yes" /],
      [['--duration'], /^--duration needs a value /],
      [['--duration=0'], /^--duration must be a number of seconds above 0, not "0" /],
      [['--rounds=1.5'], /^--rounds must be a whole number above 0, not "1.5" /],
      [['--only=warmMeId,nope'], /^--only: no scenario "nope" /],
      [['--memory', '--no-memory'], /^--memory and --no-memory exclude each other /],
      [['--login', '--no-login'], /^--login and --no-login exclude each other /],
      [['--login', '--only=warmMeId'], /^--login runs the login step alone: it excludes --memory, --gateway and --only /],
      [['--realtime', '--no-realtime'], /^--realtime and --no-realtime exclude each other /],
      [['--realtime', '--gateway'], /^--realtime excludes --memory, --gateway, --login and --only /],
    ];
    for (const [argv, message] of refusals) {
      const parsed = parseBenchArgs(argv);
      expect(parsed.kind, argv.join(' ')).toBe('error');
      const text = parsed.kind === 'error' ? parsed.message : '';
      expect(text).toMatch(message);
      expect(text).toContain('npm run bench -- --help');
      expect(text).not.toContain('\n');
    }
  });
});

describe('the built bench (bench/run.ts)', () => {
  let build: string;
  let cleanup: string;
  beforeAll(async () => {
    // As `npm run bench` does: the workspace package built, then the bench, in a staged copy of the
    // repository (nothing is written into the working tree).
    const staged = await stageRepository({ all: true });
    await npm(staged, ['run', 'build', '--silent', '-w', '@tessera-gateway/subgraph']);
    build = join(staged, 'bench-results', 'build');
    await run(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(staged, 'bench', 'tsconfig.json'), '--outDir', build]);
    cleanup = staged;
  }, 180_000);
  afterAll(() => rm(cleanup, { recursive: true, force: true }));

  const bench = (...args: string[]) =>
    run(process.execPath, [join(build, 'bench', 'run.js'), ...args], { cwd: ROOT, timeout: 20_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('--help prints the usage and starts nothing', async () => {
    expect(await bench('--help')).toEqual({ code: 0, stdout: BENCH_USAGE, stderr: '' });
  });

  it('an unknown flag: one line on stderr, exit status 2, nothing run', async () => {
    const answer = await bench('--quik');
    expect(answer.code).toBe(2);
    expect(answer.stdout).toBe('');
    expect(answer.stderr).toMatch(/^bench: unknown option "--quik" \(npm run bench -- --help lists the options\)\n$/);
  });
});
