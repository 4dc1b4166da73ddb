import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { SupergraphManager } from '@apollo/gateway';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import { AUTH_SUBGRAPH } from './authSubgraph.js';

type SupergraphSdlHookOptions = Parameters<SupergraphManager['initialize']>[0];

export interface SupergraphFileOptions {
  path: string;
  logger: Logger;
  /** How often the file is checked for a change (a stat call). */
  pollIntervalMs?: number;
  /** Applied to every SDL read before the gateway sees it. */
  transform?: (supergraphSdl: string) => string;
}

/** The supergraph must contain the gateway's own subgraph. */
const JOINS_AUTH_SUBGRAPH = new RegExp(`@join__graph\\(\\s*name:\\s*"${AUTH_SUBGRAPH}"`);

/**
 * SUPERGRAPH_FILE: a supergraph composed ahead of time, read at start and read again whenever the
 * file changes (polled, so it works on any file system and with files replaced by rename, as
 * Kubernetes config maps are). A change that cannot be read or composed is logged and the running
 * supergraph keeps serving.
 */
export class SupergraphFileManager implements SupergraphManager {
  private current = '';
  private stopped = false;
  private reading: Promise<void> = Promise.resolve();

  constructor(private readonly options: SupergraphFileOptions) {}

  async initialize({ update }: SupergraphSdlHookOptions): Promise<{ supergraphSdl: string; cleanup: () => Promise<void> }> {
    const { path, logger } = this.options;
    let sdl: string;
    try {
      sdl = await this.read();
    } catch (error) {
      throw new ConfigError(`SUPERGRAPH_FILE: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.current = sdl;
    const onChange = (now: Stats, before: Stats) => {
      if (this.stopped || (now.mtimeMs === before.mtimeMs && now.size === before.size && now.ino === before.ino)) return;
      // One reload at a time, in order: a burst of writes ends with the last content applied.
      this.reading = this.reading.then(() => this.reload(update));
    };
    watchFile(path, { interval: this.options.pollIntervalMs ?? 500, persistent: false }, onChange);
    logger.info({ path }, 'serving the supergraph file; watching it for changes');
    return {
      supergraphSdl: this.transformed(sdl),
      cleanup: async () => {
        this.stopped = true;
        unwatchFile(path, onChange);
        await this.reading;
      },
    };
  }

  private async reload(update: SupergraphSdlHookOptions['update']): Promise<void> {
    const { path, logger } = this.options;
    if (this.stopped) return;
    let sdl: string;
    try {
      sdl = await this.read();
    } catch (error) {
      logger.error({ err: error, path }, 'the changed supergraph file cannot be used; still serving the previous supergraph');
      return;
    }
    if (sdl === this.current) return;
    try {
      update(this.transformed(sdl));
      this.current = sdl;
      logger.info({ path }, 'supergraph file changed: now serving the new supergraph');
    } catch (error) {
      logger.error({ err: error, path }, 'the changed supergraph file is not a valid supergraph; still serving the previous one');
    }
  }

  private async read(): Promise<string> {
    const { path } = this.options;
    let sdl: string;
    try {
      sdl = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new Error(`cannot read ${path}: ${code}`);
    }
    if (sdl.trim() === '') throw new Error(`${path} is empty`);
    if (!JOINS_AUTH_SUBGRAPH.test(sdl)) {
      throw new Error(
        `${path} has no subgraph named "${AUTH_SUBGRAPH}" (compose it with the auth schema: node examples/compose-supergraph.mjs)`,
      );
    }
    return sdl;
  }

  private transformed(sdl: string): string {
    return this.options.transform ? this.options.transform(sdl) : sdl;
  }
}
