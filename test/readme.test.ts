import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

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
    expect(new Set(used)).toEqual(new Set(['keys generate', 'keys rotate', 'keys activate', 'users add']));
  });

  it('documents every configuration variable the gateway reads', () => {
    const source = readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/\b(?:read\w*|env\.)\(?(?:env, )?'?([A-Z][A-Z0-9_]{2,})'?/g)].map((m) => m[1]!));
    for (const name of ['PORT', 'REDIS_URL', 'SIGNING_KEYS', 'TRUST_PROXY', ...read]) {
      expect(readme, name).toContain(`\`${name}\``);
    }
  });
});
