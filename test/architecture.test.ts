import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Who may import what under src/ (docs/architecture.md): the libraries that shape a layer stay
 * inside it, so a domain module never depends on the transport that serves it.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

interface SourceFile {
  /** Relative to src/, with forward slashes: `store/redisStore.ts`. */
  path: string;
  /** What the file imports or re-exports, statically or with import(), types included. */
  imports: string[];
}

function sourceFiles(dir = SRC): SourceFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    if (!entry.name.endsWith('.ts')) return [];
    const info = ts.preProcessFile(readFileSync(full, 'utf8'), true, true);
    return [{ path: relative(SRC, full).split(sep).join('/'), imports: info.importedFiles.map((f) => f.fileName) }];
  });
}

const files = sourceFiles();

/** The files outside `allowed` (top-level folders of src/) that import a module `matching`. */
function importersOutside(matching: (specifier: string) => boolean, allowed: string[]): string[] {
  return files
    .filter((file) => !allowed.some((folder) => file.path.startsWith(`${folder}/`)))
    .filter((file) => file.imports.some(matching))
    .map((file) => file.path);
}

/** Files that import `specifier` at all (so each rule is seen to look at real imports). */
function importersOf(matching: (specifier: string) => boolean): string[] {
  return files.filter((file) => file.imports.some(matching)).map((file) => file.path);
}

const isGraphQL = (s: string) => s === 'graphql' || s.startsWith('graphql/') || s.startsWith('@apollo/');
const isRedisClient = (s: string) => s === 'ioredis';
const isJose = (s: string) => s === 'jose';

/** The folder (under src/) a relative import of `file` lands in. */
function targetFolder(file: SourceFile, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = relative(SRC, resolve(SRC, dirname(file.path), specifier)).split(sep).join('/');
  return target.includes('/') ? target.slice(0, target.indexOf('/')) : '';
}

describe('src layout', () => {
  it('reads the imports of every source file', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(importersOf(isGraphQL)).toContain('graphql/apolloServer.ts');
    expect(importersOf(isRedisClient)).toContain('store/redisStore.ts');
    expect(importersOf(isJose)).toContain('tokens/keys.ts');
  });

  it('only the GraphQL layers import graphql or @apollo/*: domain errors, the store, config, tokens and the CLI do not', () => {
    expect(importersOutside(isGraphQL, ['graphql', 'federation', 'subgraph', 'observability'])).toEqual([]);
  });

  it('only the store imports ioredis', () => {
    expect(importersOutside(isRedisClient, ['store'])).toEqual([]);
  });

  it('only the token module imports jose', () => {
    expect(importersOutside(isJose, ['tokens'])).toEqual([]);
  });

  it('the GraphQL layer does not reach into the HTTP layer (cookies are written by src/http)', () => {
    const graphqlToHttp = files
      .filter((file) => file.path.startsWith('graphql/'))
      .filter((file) => file.imports.some((specifier) => targetFolder(file, specifier) === 'http'))
      .map((file) => file.path);
    expect(graphqlToHttp).toEqual([]);
    // The rule sees relative imports: the HTTP layer does import the GraphQL one.
    const httpToGraphql = files
      .filter((file) => file.path.startsWith('http/'))
      .filter((file) => file.imports.some((specifier) => targetFolder(file, specifier) === 'graphql'));
    expect(httpToGraphql.length).toBeGreaterThan(0);
  });
});

describe('the docs the code points to', () => {
  const docs = resolve(SRC, '../docs');
  const contract = readFileSync(join(docs, 'contract.md'), 'utf8');
  const architecture = readFileSync(join(docs, 'architecture.md'), 'utf8');

  it('every "docs/contract.md section N" in src/ names a section the contract has', () => {
    const sections = new Set([...contract.matchAll(/^#{2,3} (\d+(?:\.\d+)?)[. ]/gm)].map((m) => m[1]));
    expect(sections).toContain('3.1');
    const cited = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
      .filter((path) => path.endsWith('.ts'))
      .flatMap((path) => [...readFileSync(join(SRC, path), 'utf8').matchAll(/docs\/contract\.md\s+(?:\*\s+)?section (\d+(?:\.\d+)?)/g)])
      .map((m) => m[1]);
    expect(cited.length).toBeGreaterThan(10);
    for (const section of cited) expect(sections, `section ${section}`).toContain(section);
  });

  it('docs/architecture.md describes every folder of src/', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders).toContain('store');
    for (const folder of folders) expect(architecture, folder).toContain(`| \`${folder}/\` |`);
  });
});
