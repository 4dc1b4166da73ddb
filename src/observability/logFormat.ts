import { destination, type DestinationStream } from 'pino';
import type { Logger } from '../logger.js';

/** What Apollo Server and Apollo Gateway log through: their `Logger` (a message, maybe more). */
export interface LibraryLogger {
  debug(message?: unknown, ...rest: unknown[]): void;
  info(message?: unknown, ...rest: unknown[]): void;
  warn(message?: unknown, ...rest: unknown[]): void;
  error(message?: unknown, ...rest: unknown[]): void;
}

/**
 * A library's message on one line: Apollo Gateway's "Gateway successfully loaded schema.\n\t*
 * Mode: unmanaged" becomes "Gateway successfully loaded schema. Mode: unmanaged". Each line is
 * trimmed and loses a leading list bullet.
 */
export function oneLine(message: string): string {
  if (!/[\r\n]/.test(message)) return message;
  return message
    .split(/\r?\n|\r/)
    .map((line) => line.trim().replace(/^[*•-]\s+/, ''))
    .filter((line) => line !== '')
    .join(' ');
}

/** The gateway's logger as the Apollo libraries are given it: every message they log on one line. */
export function libraryLogger(logger: Logger): LibraryLogger {
  const level =
    (name: 'debug' | 'info' | 'warn' | 'error') =>
    (message?: unknown, ...rest: unknown[]) => {
      if (!logger.isLevelEnabled(name)) return;
      if (typeof message === 'string') logger[name](oneLine(rest.length ? [message, ...rest].map(String).join(' ') : message));
      else if (message instanceof Error) logger[name]({ err: message }, oneLine(message.message));
      else logger[name]({ detail: message }, oneLine(rest.map(String).join(' ')));
    };
  return { debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') };
}

/**
 * LOG_FORMAT=pretty: log lines for people (pino-pretty, loaded only then): time, level, message,
 * and the line's fields on the same line; colours when standard output is a terminal.
 * Written synchronously, so nothing is lost when the process exits.
 */
export async function prettyDestination(out: DestinationStream & { flush?(cb: (err?: Error) => void): void } = destination({ fd: 1, sync: true })): Promise<DestinationStream> {
  const { prettyFactory } = await import('pino-pretty');
  const format = prettyFactory({
    colorize: Boolean(process.stdout.isTTY),
    singleLine: true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  return {
    write: (line: string) => out.write(format(line)),
    ...(out.flush ? { flush: (cb: (err?: Error) => void) => out.flush!(cb) } : {}),
  } as DestinationStream;
}
