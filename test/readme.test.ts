import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestServer } from './helpers/testServer.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
};

/** Every `npm …` command in the README's shell blocks. */
function npmCommands(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((block) => [...block.matchAll(/\bnpm (?:run )?[a-z:-]+/g)].map((m) => m[0]));
}

const NPM_BUILTINS = new Set(['install', 'ci']);

describe('README', () => {
  it('gives the two quick-start commands: npm install && npm start, and npm test', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toMatch(/```sh\nnpm test\n```/);
    expect(pkg.scripts.start).toBeDefined();
    expect(pkg.scripts.test).toMatch(/vitest run/);
  });

  it('only names npm scripts that package.json defines', () => {
    const commands = npmCommands();
    expect(commands.length).toBeGreaterThan(3);
    for (const command of commands) {
      const name = command.replace(/^npm (run )?/, '');
      if (NPM_BUILTINS.has(name)) continue;
      expect(pkg.scripts, `README runs "${command}"`).toHaveProperty(name);
    }
  });

  it('only names tessera commands the package ships', () => {
    expect(pkg.bin.tessera).toBe('dist/cli/tessera.js');
    const used = [...readme.matchAll(/npx tessera ([a-z]+ [a-z]+)/g)].map((m) => m[1]);
    expect(new Set(used)).toEqual(
      new Set(['keys generate', 'keys rotate', 'keys activate', 'users add', 'users list', 'users disable', 'users enable', 'users roles', 'users delete', 'sessions list', 'sessions revoke']),
    );
  });

  it('documents every configuration variable the gateway reads', () => {
    // loadConfig and the settings functions of the capabilities it calls.
    const source = ['../src/config.ts', '../src/mail/settings.ts'].map((file) => readFileSync(new URL(file, import.meta.url), 'utf8')).join('\n');
    const read = new Set([...source.matchAll(/\b(?:read\w*|env\.)\(?(?:env, )?'?([A-Z][A-Z0-9_]{2,})'?/g)].map((m) => m[1]!));
    for (const name of ['PORT', 'REDIS_URL', 'SIGNING_KEYS', 'TRUST_PROXY', ...read]) {
      expect(readme, name).toContain(`\`${name}\``);
    }
  });
});

/** The README's section under this `## ` heading. */
function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** A shown output line as a pattern: `…` stands for anything (ids, tokens, the stack trace). */
function shownLine(line: string): RegExp {
  const escaped = line.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*?')}$`);
}

/** Runs `script` as if pasted into an interactive shell with no startup files; its stdout and stderr. */
function pasteInto(shell: 'bash' | 'zsh', script: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const args = shell === 'bash' ? ['--norc', '--noprofile', '-i', '-s'] : ['-f', '-i', '-s'];
  const child = spawn(shell, args, {
    // node (for `field`) and curl, as a user has them; nothing else from this process.
    env: { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: '/nonexistent', TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  // No prompts in the output (prompts are the harness's, not the README's).
  child.stdin.end(`PS1=''; PS2=''\n${script}\nexit\n`);
  return new Promise((resolve) => child.on('close', (code) => resolve({ stdout, stderr, code })));
}

describe('README: Try it with curl', () => {
  const text = section('Try it with curl');
  const blocks = [...text.matchAll(/```(sh|text)\n([\s\S]*?)```/g)].map((m) => ({ kind: m[1]!, body: m[2]! }));
  const script = blocks.filter((b) => b.kind === 'sh').map((b) => b.body).join('\n');
  const shown = blocks
    .filter((b) => b.kind === 'text')
    .flatMap((b) => b.body.split('\n'))
    .filter((line) => line !== '');

  it('shows what each step prints', () => {
    expect(blocks.filter((b) => b.kind === 'sh').length).toBeGreaterThanOrEqual(4);
    expect(shown).toHaveLength(5);
    expect(script).toContain('localhost:4000');
  });

  for (const shell of ['bash', 'zsh'] as const) {
    it(`runs as written in ${shell}, printing what the README shows`, async () => {
      expect(spawnSync(shell, ['-c', 'exit 0']).status, `${shell} is not installed (Debian: apt-get install -y ${shell})`).toBe(0);
      expect(spawnSync('curl', ['--version']).status, 'curl is not installed').toBe(0);
      const server = await createTestServer({ store: 'memory' });
      try {
        const { stdout, stderr } = await pasteInto(shell, script.replaceAll('localhost:4000', new URL(server.url).host));
        // No shell complaint (a comment pasted into zsh, an unmatched quote, a bad substitution …).
        expect(stderr).not.toMatch(/command not found|not found:|unmatched|parse error|bad substitution|no matches found|event not found|syntax error/i);
        const printed = stdout.split('\n').filter((line) => line !== '');
        expect(printed).toHaveLength(shown.length);
        printed.forEach((line, i) => expect(line, `step ${i + 1} in ${shell}`).toMatch(shownLine(shown[i]!)));
      } finally {
        await server.close();
      }
    }, 30_000);
  }
});
