import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/builtGateway.js';

/*
 * `npm install` on a fresh clone must leave package-lock.json as committed (it once rewrote the
 * root's `2.14.4` specs back to `^2.14.4`). npm settles the lockfile from the manifests and the
 * lockfile alone, so a folder with just those is a fresh clone as far as npm is concerned.
 */

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

describe('package-lock.json', () => {
  it('is what `npm install` on a fresh clone leaves it (no rewrite)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-lock-'));
    dirs.push(dir);
    await cp(join(ROOT, 'package.json'), join(dir, 'package.json'));
    await cp(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
    for (const name of await readdir(join(ROOT, 'packages'))) {
      await cp(join(ROOT, 'packages', name, 'package.json'), join(dir, 'packages', name, 'package.json'));
    }
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    await promisify(execFile)('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, env });
    const committed = await readFile(join(ROOT, 'package-lock.json'), 'utf8');
    expect(await readFile(join(dir, 'package-lock.json'), 'utf8')).toBe(committed);
  }, 120_000);

  it('names the workspace packages and the root as the manifests do', async () => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8'));
    const root = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    expect(lock.name).toBe(root.name);
    expect(lock.packages[''].workspaces).toEqual(root.workspaces);
    for (const workspace of root.workspaces as string[]) {
      const manifest = JSON.parse(await readFile(join(ROOT, workspace, 'package.json'), 'utf8'));
      expect(lock.packages[workspace]).toMatchObject({ name: manifest.name, version: manifest.version });
      // A package without runtime dependencies (the client) has none in the lockfile either.
      expect(lock.packages[workspace].dependencies).toEqual(manifest.dependencies);
      expect(lock.packages[`node_modules/${manifest.name}`]).toEqual({ resolved: workspace, link: true });
    }
  });
});
