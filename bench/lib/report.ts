import { gatewayReport } from '../gateway/report.js';
import type { PerOperation, Results, ScenarioName } from './types.js';

const x = (ratio: number | undefined) => (ratio === undefined || Number.isNaN(ratio) ? '' : `${ratio.toFixed(2)}x`);
const ms = (value: number) => value.toFixed(2);
const int = (value: number) => Math.round(value).toLocaleString('en-US');
const met = (ok: boolean) => (ok ? 'met' : '**missed**');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Prints Markdown tables (the README's Performance section quotes them). */
export function printReport(results: Results): void {
  const out: string[] = [];
  const { environment: env, settings } = results;
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(' ');
  out.push(
    `\n\`${results.command}\` · Node ${env.node} · ${env.cpus} × ${env.cpuModel} · commit ${env.commit ?? '?'} · ${env.seconds} s · load average ${load(env.loadavgAtStart)} → ${load(env.loadavgAtEnd)}`,
  );
  if (results.http) {
    const { scenarios: s, ratios: r } = results.http;
    out.push(
      `\nHTTP: autocannon, ${settings.connections} connections unless noted, ${settings.durationSec} s per run, ${settings.rounds} alternating rounds, gateway at LOG_LEVEL=${settings.logLevel}. ` +
        'Ratios are to the Apollo baseline of the same run; server CPU is the server process\'s CPU time per request (all threads / main thread).\n',
    );
    const row = (label: string, name: ScenarioName, ratio: string, p99: string, target = '', ok?: boolean) => {
      const figure = s[name];
      if (!figure) return null;
      const cpu = figure.cpuUs === null ? '' : `${int(figure.cpuUs)} / ${int(figure.mainThreadUs!)}`;
      const failed = figure.failures ? ` (${figure.failures} failed)` : '';
      return [label, `${int(figure.rps)}${failed}`, ratio, ms(figure.p50), ms(figure.p99), p99, cpu, target, ok === undefined ? '' : met(ok)];
    };
    const rows = [
      row('baseline `me { id }` (Apollo, no auth)', 'baselineMeId', '1.00x', '1.00x'),
      row('Tessera `me { id }`, token seen before (warm)', 'warmMeId', x(r.warmMeId), x(r.warmMeIdP99), '>= 0.90x, p99 <= 1.25x', r.warmMeId! >= 0.9 && r.warmMeIdP99! <= 1.25),
      row('Tessera `me { id }` warm, metrics off (a pair of its own)', 'metricsOffMeId', '1.00x', '1.00x'),
      row('the same, Prometheus metrics on (vs the line above)', 'metricsOnMeId', x(r.metricsOnOverOff), x(r.metricsOnOverOffP99), '>= 0.97x', r.metricsOnOverOff! >= 0.97),
      row('Tessera `me { id }`, new token each request (cold)', 'coldMeId', x(r.coldMeId), x(r.coldMeIdP99), '>= 0.45x', r.coldMeId! >= 0.45),
      row('the same, ES256 signing key', 'coldMeIdEs256', x(r.coldMeIdEs256), x(r.coldMeIdEs256P99)),
      row('baseline `me { id email roles }`', 'baselineMeFull', '1.00x', '1.00x'),
      row('Tessera `me { id email roles }` (warm)', 'warmMeFull', x(r.warmMeFull), x(r.warmMeFullP99)),
      row('baseline `me { id }`, 1 connection', 'baselineMeIdSequential', '1.00x', '1.00x'),
      row('Tessera `refreshToken`, sequential (vs the line above)', 'refreshSequential', x(r.refreshSequential), x(r.refreshSequentialP99)),
      row(
        `Tessera \`refreshToken\`, ${settings.refreshInFlight} in flight (vs baseline \`me { id }\`)`,
        'refreshInFlight',
        x(r.refreshInFlight),
        '',
        '>= 0.35x',
        r.refreshInFlight! >= 0.35,
      ),
    ].filter((cells): cells is string[] => cells !== null);
    out.push(table(['scenario', 'req/s', 'throughput', 'p50 ms', 'p99 ms', 'p99', 'server CPU µs/req', 'target', ''], rows));
    const byRound = results.http.ratiosByRound;
    if (byRound.length > 1) {
      const list = (key: string) => byRound.map((q) => x(q[key])).join(' / ');
      out.push(
        `\nRound by round: warm ${list('warmMeId')} (p99 ${list('warmMeIdP99')}), metrics on over off ${list('metricsOnOverOff')}, cold ${list('coldMeId')}, refresh in flight ${list('refreshInFlight')}.`,
      );
    }
  }
  if (results.redisCommands) {
    out.push(
      '\nRedis commands per operation in steady state (MONITOR on the gateway\'s Redis; the commands a Lua script runs, `[0 lua]`, are inside its one round trip)\n',
    );
    const targets: Record<string, [string, (p: PerOperation) => boolean]> = {
      'me { id }, token seen before': ['0', (p) => p.commandsPerOperation === 0],
      'me { id }, new token': ['0', (p) => p.commandsPerOperation === 0],
      refreshToken: [
        '1 script for the rotation, <= 2 in all',
        (p) => (p.byCommandPerOperation.evalsha ?? 0) + (p.byCommandPerOperation.eval ?? 0) === 1 && p.commandsPerOperation <= 2,
      ],
    };
    const count = (n: number) => n.toFixed(2).replace(/\.00$/, '');
    out.push(
      table(
        ['operation', 'commands sent', 'which', 'run inside scripts', 'target', ''],
        Object.entries(results.redisCommands).map(([name, p]) => {
          const target = targets[name];
          const which = Object.entries(p.byCommandPerOperation).map(([c, k]) => `${count(k)} ${c.toUpperCase()}`);
          return [`\`${name}\``, count(p.commandsPerOperation), which.join(', ') || '—', count(p.scriptInternalPerOperation), target?.[0] ?? '', target ? met(target[1](p)) : ''];
        }),
      ),
    );
  }
  if (results.verify) {
    out.push('\nAccess-token verify, one call at a time (tinybench), against raw node:crypto verify of the same token\n');
    const label: Record<string, string> = {
      nodeCryptoVerify: 'node:crypto verify (the signature alone)',
      joseJwtVerify: 'jose.jwtVerify (the usual design)',
      serviceVerifyUncached: 'AccessTokenService.verify, not cached',
      serviceVerifyCached: 'AccessTokenService.verify, token seen before',
    };
    const rows: string[][] = [];
    for (const v of results.verify) {
      for (const [task, ops] of Object.entries(v.opsPerSec)) rows.push([v.alg, label[task] ?? task, int(ops), x(v.ratioToRaw[task as keyof typeof v.ratioToRaw])]);
      rows.push([v.alg, 'node:crypto verify, two threads at once (all verifies, over one thread alone)', '', x(v.twoThreadSpeedup)]);
    }
    out.push(table(['alg', 'verify', 'per second', 'vs node:crypto'], rows));
  }
  if (results.memory) {
    out.push('\nSession memory: 100k sessions through the real RedisStore into a redis-server of its own; INFO used_memory growth per session, the user\'s session index included\n');
    out.push(
      table(
        ['sessions', 'Redis settings', 'bytes/session, new', 'after one refresh', 'target', ''],
        results.memory.map((m) => [
          `${int(m.users)} users × ${m.sessionsPerUser}`,
          m.variant || 'defaults',
          int(m.bytesPerSession),
          int(m.bytesPerRefreshedSession),
          '<= 400',
          met(m.bytesPerSession <= 400),
        ]),
      ),
    );
  }
  if (results.login) {
    const l = results.login;
    const perCore = (value: number | null) => (value === null ? '' : value.toFixed(1));
    out.push(
      `\nLogin: \`login\` (argon2id m=19456 KiB, t=2, p=1) through the gateway, ${l.connections} in flight, against raw argon2id verifies at the same parameters (@node-rs/argon2, ${l.connections} in flight, a process of its own, run alternately on the same ${l.cpus} cores); \`refreshToken\`, ${l.connections} in flight. ` +
        'Per core: one second of CPU over the server process\'s CPU per operation (all threads); per vCPU by wall clock: the rate over the cores. Keycloak\'s published sizing, for context: 15 password logins/s and 120 refreshes/s per vCPU.\n',
    );
    const failed = (n: number) => (n ? ` (${n} failed)` : '');
    out.push(
      table(
        ['operation', 'per second', 'p50 ms', 'p99 ms', 'CPU µs/op', 'per core-second', 'per vCPU (wall)', 'Keycloak per vCPU', 'vs raw argon2id', 'target', ''],
        [
          ['raw argon2id verify (the limit)', int(l.argon2.verifiesPerSec), '', '', int(l.argon2.cpuUs), perCore(l.argon2PerCoreSecond), (l.argon2.verifiesPerSec / l.cpus).toFixed(1), '', '1.00x', '', ''],
          ['`login` through the gateway', `${int(l.login.rps)}${failed(l.login.failures)}`, ms(l.login.p50), ms(l.login.p99), l.login.cpuUs === null ? '' : int(l.login.cpuUs), perCore(l.loginsPerCoreSecond), (l.login.rps / l.cpus).toFixed(1), '15', x(l.loginOverArgon2), '>= 0.80x', met(l.loginOverArgon2 >= 0.8)],
          ...(l.loginOverArgon2ByCpu === null
            ? []
            : [['`login`, by CPU per operation (raw µs/verify over µs/login)', '', '', '', '', '', '', '', x(l.loginOverArgon2ByCpu), '>= 0.80x', met(l.loginOverArgon2ByCpu >= 0.8)]]),
          ['`refreshToken` through the gateway', `${int(l.refresh.rps)}${failed(l.refresh.failures)}`, ms(l.refresh.p50), ms(l.refresh.p99), l.refresh.cpuUs === null ? '' : int(l.refresh.cpuUs), perCore(l.refreshesPerCoreSecond), (l.refresh.rps / l.cpus).toFixed(1), '120', '', '', ''],
        ],
      ),
    );
  }
  if (results.gateway) out.push(gatewayReport(results.gateway, settings));
  process.stdout.write(`${out.join('\n')}\n`);
}
