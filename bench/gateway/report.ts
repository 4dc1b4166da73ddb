import { type GatewayFigures, type GatewayName, type GatewayScenario, type Shape } from './types.js';

const x = (ratio: number | undefined) => (ratio === undefined || Number.isNaN(ratio) ? '' : `${ratio.toFixed(2)}x`);
const int = (value: number | null | undefined) => (value === null || value === undefined ? '' : Math.round(value).toLocaleString('en-US'));
const met = (ok: boolean) => (ok ? 'met' : '**missed**');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const SHAPE_LABELS: Record<Shape, string> = {
  viewer: '`viewer`, one subgraph call, same token',
  viewerFresh: 'the same, a fresh token each request',
  me: 'the caller\'s user with a field of the other subgraph (Tessera: its `me`, then `_entities`; the others: `me` in the subgraph, one call)',
};

/** The gateway-mode section of the report, in Markdown (the README's Performance section quotes it). */
export function gatewayReport(figures: GatewayFigures, settings: { durationSec: number; rounds: number; connections: number }): string {
  const out: string[] = [];
  const { scenarios: s, ratios: r, ratiosByRound } = figures;
  const rounds = (key: GatewayScenario) => (ratiosByRound.length > 1 ? ` (${ratiosByRound.map((q) => x(q[key])).join(' / ')})` : '');
  out.push(
    `\nGateway mode: autocannon, ${settings.connections} connections, ${settings.durationSec} s per run, ${settings.rounds} alternating rounds; ` +
      'each gateway and each subgraph a process of its own. Medians over the rounds; throughput over @apollo/gateway with no auth in the same run (each round\'s own in brackets).\n',
  );
  const peers: GatewayName[] = ['jose', 'hive', 'tessera'];
  out.push(
    table(
      ['gateway', ...(['viewer', 'viewerFresh', 'me'] as Shape[]).map((shape) => SHAPE_LABELS[shape])],
      peers.map((name) => [figures.gateways[name].label, ...(['viewer', 'viewerFresh', 'me'] as Shape[]).map((shape) => `${x(r[`${name}.${shape}`])}${rounds(`${name}.${shape}`)}`)]),
    ),
  );

  out.push(
    '\nPer scenario: CPU time per request of the gateway process (all threads / main thread; over the ceiling\'s, all threads) and of its subgraph process (all threads). ' +
      'CPU per request moves less than throughput when other work shares the machine.\n',
  );
  const rows: string[][] = [];
  for (const name of ['ceiling', ...peers] as GatewayName[]) {
    for (const shape of ['viewer', 'viewerFresh', 'me'] as Shape[]) {
      const figure = s[`${name}.${shape}`];
      if (!figure) continue;
      const ceilingCpu = s[shape === 'me' ? 'ceiling.me' : 'ceiling.viewer']?.gatewayCpuUs;
      rows.push([
        `${figures.gateways[name].label}: ${shape}`,
        figures.gateways[name].identity,
        int(figure.rps),
        name === 'ceiling' ? '1.00x' : x(r[`${name}.${shape}`]),
        figure.p50.toFixed(2),
        figure.p99.toFixed(2),
        figure.gatewayCpuUs === null ? '' : `${int(figure.gatewayCpuUs)} / ${int(figure.gatewayMainThreadUs)}`,
        figure.gatewayCpuUs === null || !ceilingCpu ? '' : x(figure.gatewayCpuUs / ceilingCpu),
        int(figure.subgraphCpuUs),
        figure.subgraphCallsPerRequest.toFixed(2),
      ]);
    }
  }
  out.push(table(['scenario', 'subgraph reads the caller from', 'req/s', 'throughput', 'p50 ms', 'p99 ms', 'gateway CPU µs/req', 'gateway CPU vs ceiling', 'subgraph CPU µs/req', 'subgraph calls/req'], rows));

  const cost = figures.subgraphCost;
  const costLine = (['viewer', 'viewerFresh', 'me'] as Shape[])
    .filter((shape) => cost[shape])
    .map((shape) => `${shape} ${int(cost[shape]!.tesseraUs)} vs ${int(cost[shape]!.headerUs)} µs (${x(cost[shape]!.ratio)})`);
  if (costLine.length) out.push(`\nSubgraph cost, verifying \`x-tessera-context\` vs reading \`x-user-id\` (CPU per request of the same subgraph): ${costLine.join('; ')}.`);

  const ratio = (key: GatewayScenario) => r[key] ?? NaN;
  const targets: [string, string, boolean][] = [
    [
      'warm, one-call plan: >= 0.90x of the ceiling and ahead of both peers',
      `${x(ratio('tessera.viewer'))} vs ${x(ratio('jose.viewer'))} / ${x(ratio('hive.viewer'))}`,
      ratio('tessera.viewer') >= 0.9 && ratio('tessera.viewer') > ratio('jose.viewer') && ratio('tessera.viewer') > ratio('hive.viewer'),
    ],
    [
      'fresh token: ahead of both peers',
      `${x(ratio('tessera.viewerFresh'))} vs ${x(ratio('jose.viewerFresh'))} / ${x(ratio('hive.viewerFresh'))}`,
      ratio('tessera.viewerFresh') > ratio('jose.viewerFresh') && ratio('tessera.viewerFresh') > ratio('hive.viewerFresh'),
    ],
  ];
  if (figures.meOverViewer) {
    const { ratio, byRound } = figures.meOverViewer;
    targets.push([
      '`me` extended by another subgraph: within 10% of the one-call plan (Tessera `me` req/s over its `viewer` req/s)',
      `${x(ratio)}${byRound.length > 1 ? ` (${byRound.map(x).join(' / ')})` : ''}`,
      ratio >= 0.9,
    ]);
  }
  if (cost.viewer) targets.push(['subgraph cost: within 10% of a subgraph reading a plain header (`viewer`, same token)', x(cost.viewer.ratio), cost.viewer.ratio <= 1.1]);
  out.push('\nIssue 16\'s targets, from this run\n');
  out.push(table(['target', 'measured', ''], targets.map(([label, measured, ok]) => [label, measured, met(ok)])));
  if (figures.freshTokens.wrapped.length) {
    out.push(`\nNote: ${figures.freshTokens.wrapped.join(', ')} ran out of fresh tokens in a round and sent some twice.`);
  }
  return out.join('\n');
}
