/** What the command modules share: their inputs and outputs, and the errors they end with. */

export interface OutputStream {
  write(text: string): unknown;
}

/** Everything a command reads or writes, passed in so that commands run in-process in tests. */
export interface CliIO {
  stdout: OutputStream;
  stderr: OutputStream;
  /** The environment the server would read (`process.env`). */
  env: Record<string, string | undefined>;
  /** Relative paths are resolved from here. */
  cwd: string;
  /**
   * Standard input as text, at least up to its first line end (more may follow; commands use
   * the first line). Called only by commands that need it, at most once.
   */
  readStdin: () => Promise<string>;
}

/** A failure reported as one line, `tessera: <message>`, with exit status 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(oneLine(message));
    this.name = 'CliError';
  }
}

/** Bad arguments: one line, then exit status 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Keeps an error message on one line. */
export function oneLine(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** The text before the first line end, without the `\n` or `\r\n`. */
export function firstLine(text: string): string {
  const end = text.indexOf('\n');
  const line = end === -1 ? text : text.slice(0, end);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
