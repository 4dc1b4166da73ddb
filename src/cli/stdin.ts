import type { Readable } from 'node:stream';
import { CliError, type OutputStream } from './common.js';

/** Enough for any password the gateway accepts (1024 bytes), with room to tell "too long". */
const MAX_READ_BYTES = 8 * 1024;

/** Reads `stream` up to its first line end, its end, or MAX_READ_BYTES, whichever comes first. */
export async function readFirstLineOf(stream: Readable): Promise<string> {
  stream.setEncoding('utf8');
  let text = '';
  for await (const chunk of stream) {
    text += chunk as string;
    if (text.includes('\n') || Buffer.byteLength(text, 'utf8') > MAX_READ_BYTES) break;
  }
  return text;
}

interface TerminalInput extends Readable {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/**
 * Standard input for `users add`: piped, its first line; a terminal, a prompt (on `prompts`)
 * that does not echo, asked twice.
 */
export async function readPassword(stdin: TerminalInput, prompts: OutputStream): Promise<string> {
  if (!stdin.isTTY || typeof stdin.setRawMode !== 'function') return readFirstLineOf(stdin);
  const first = await promptHidden(stdin, prompts, 'Password: ');
  if (first === '') return '';
  const again = await promptHidden(stdin, prompts, 'Password (again): ');
  if (again !== first) throw new CliError('the passwords do not match');
  return first;
}

function promptHidden(stdin: TerminalInput, prompts: OutputStream, prompt: string): Promise<string> {
  prompts.write(prompt);
  stdin.setRawMode?.(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      prompts.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new CliError('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
