import { destination, pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Secrets never reach the log: these paths are replaced wherever they appear. */
export const REDACTED_PATHS = [
  'authorization',
  'cookie',
  'password',
  'accessToken',
  'refreshToken',
  'token',
  '*.authorization',
  '*.cookie',
  '*.password',
  '*.accessToken',
  '*.refreshToken',
  '*.token',
  'headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  // A request id a client sent is logged only once checked (as requestId), never raw.
  '*.headers["x-request-id"]',
  'variables.*',
  '*.variables.*',
];

export function createLogger(options: { level?: string; production: boolean }, destination?: DestinationStream): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'tessera' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

/** Standard output written asynchronously (flush with `logger.flush` before exiting). */
export function asyncStdout(): DestinationStream {
  return destination({ fd: 1, sync: false });
}
