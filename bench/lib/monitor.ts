import { connect, type Socket } from 'node:net';
import { sleep } from './processes.js';

/**
 * Redis MONITOR over a raw connection: every command the server runs, as Redis prints it, e.g.
 * `1718000000.123456 [0 127.0.0.1:50412] "evalsha" "…"`. Commands a Lua script runs print as
 * `[0 lua]`: they run inside the one EVALSHA round trip and are counted apart.
 */
export class RedisMonitor {
  private buffer = '';
  private lines: string[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        if (line.startsWith('+') && line !== '+OK') this.lines.push(line.slice(1));
      }
    });
  }

  static async open(port: number): Promise<RedisMonitor> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const monitor = new RedisMonitor(socket);
    socket.write('MONITOR\r\n');
    await sleep(50);
    return monitor;
  }

  /** Runs `work`, then returns what Redis ran meanwhile, minus the clients in `ignore` (ip:port). */
  async capture(work: () => Promise<void>, ignore: ReadonlySet<string>): Promise<CapturedCommands> {
    this.lines = [];
    await work();
    // MONITOR lines trail the replies a little.
    await sleep(200);
    const captured: CapturedCommands = { commands: 0, scriptInternal: 0, byCommand: {}, samples: [] };
    for (const line of this.lines) {
      const match = /^\d+\.\d+ \[(\d+) ([^\]]+)\] "([^"]*)"/.exec(line);
      if (!match) continue;
      const [, , source, command] = match as unknown as [string, string, string, string];
      if (ignore.has(source)) continue;
      if (source === 'lua') {
        captured.scriptInternal++;
        continue;
      }
      captured.commands++;
      const name = command.toLowerCase();
      captured.byCommand[name] = (captured.byCommand[name] ?? 0) + 1;
      if (captured.samples.length < 3) captured.samples.push(line.slice(0, 160));
    }
    return captured;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface CapturedCommands {
  /**
   * Commands clients sent: each EVALSHA is one, however many commands its script runs. (A pipeline
   * of n commands would be n here in one round trip; the gateway's per-request pipelines hold one.)
   */
  commands: number;
  /** Commands run inside scripts (`[0 lua]`). */
  scriptInternal: number;
  byCommand: Record<string, number>;
  samples: string[];
}
