import { type RedisProcess, startRedisProcess } from './redisProcess.js';

/**
 * A redis-server process of the test's own, on its own port and directory, for fault tests that
 * kill and restart Redis. Never the shared Redis at 127.0.0.1:6379.
 */
export type PrivateRedis = RedisProcess;

export interface PrivateRedisOptions {
  appendonly?: boolean;
  /** With appendonly: `always` (the default here, so a SIGKILL loses no acknowledged write), `everysec` or `no`. */
  appendfsync?: 'always' | 'everysec' | 'no';
  port?: number;
  dir?: string;
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  return startRedisProcess({
    port: options.port,
    dir: options.dir,
    args: (port, dir) => [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--daemonize', 'no',
      '--logfile', '',
      '--appendonly', options.appendonly ? 'yes' : 'no',
      ...(options.appendonly ? ['--appendfsync', options.appendfsync ?? 'always'] : []),
    ],
  });
}
