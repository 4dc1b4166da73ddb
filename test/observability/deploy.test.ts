import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PrometheusMetrics } from '../../src/observability/metrics.js';

const root = new URL('../../', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('deploy/grafana-dashboard.json', root), 'utf8')) as Dashboard;
const alerts = parse(readFileSync(new URL('deploy/prometheus-alerts.yml', root), 'utf8')) as AlertFile;

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: string | { query: string } }[] };
}
interface AlertFile {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
}

/** PromQL words that are not metric names. */
const PROMQL = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'rate', 'irate', 'increase', 'delta', 'histogram_quantile', 'clamp_min', 'clamp_max',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'abs', 'absent',
  'label_values', 'topk', 'bottomk', 'vector', 'scalar', 'time',
]);

/** The metric names a PromQL expression selects (a Grafana query included). */
function metricsIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g, '$1') // grouping labels
    .replace(/\$\{?\w+\}?/g, ''); // Grafana variables
  const names = [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]);
  // label_values(metric, label): the second argument is a label.
  const labelValues = [...expr.matchAll(/label_values\(\s*[^,]+,\s*(\w+)\s*\)/g)].map((m) => m[1]);
  return names.filter((name) => !PROMQL.has(name) && !labelValues.includes(name));
}

function dashboardExprs(): string[] {
  const panels = (list: Panel[]): Panel[] => list.flatMap((panel) => [panel, ...panels(panel.panels ?? [])]);
  const fromPanels = panels(dashboard.panels).flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
  const fromVariables = dashboard.templating.list.flatMap((variable) =>
    typeof variable.query === 'object' ? [variable.query.query] : variable.name === 'datasource' ? [] : [variable.query],
  );
  return [...fromPanels, ...fromVariables];
}

/** What a scrape of a gateway shows: every series name (a histogram's _bucket, _sum and _count included). */
async function registered(): Promise<Set<string>> {
  const metrics = await new PrometheusMetrics().registry.getMetricsAsJSON();
  const names = new Set<string>();
  for (const metric of metrics) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
  }
  return names;
}

describe('deploy/ dashboards and alerts', () => {
  it('every metric the Grafana dashboard uses is one the gateway registers', async () => {
    const known = await registered();
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(15);
    const used = new Set(exprs.flatMap(metricsIn));
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(known.has(name), `${name} (dashboard)`).toBe(true);
    expect(dashboard).toMatchObject({ title: 'Tessera', uid: 'tessera-gateway' });
  });

  it('every metric the alert rules use is one the gateway registers, and the four alerts of the issue are there', async () => {
    const known = await registered();
    const rules = alerts.groups.flatMap((group) => group.rules);
    for (const rule of rules) {
      const used = metricsIn(rule.expr);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      for (const name of used) expect(known.has(name), `${name} (${rule.alert})`).toBe(true);
      expect(rule.labels.severity, rule.alert).toMatch(/^(warning|critical)$/);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
    }
    const byName = new Map(rules.map((rule) => [rule.alert, rule]));
    expect(byName.get('TesseraRefreshTokenReuseSpike')?.expr).toContain('tessera_refreshes_total{outcome="reused"}');
    expect(byName.get('TesseraRevocationFeedUnhealthy')?.expr).toBe('tessera_revocation_feed_healthy == 0');
    expect(byName.get('TesseraLoginFailureBurst')?.expr).toContain('invalid_credentials');
    expect(byName.get('TesseraAuditWebhookBacklog')?.expr).toContain('tessera_audit_webhook_backlog');
  });

  it('the check itself finds names and would catch one that is not registered', () => {
    expect(metricsIn('sum by (le, command) (rate(tessera_store_command_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval]))')).toEqual([
      'tessera_store_command_duration_seconds_bucket',
    ]);
    expect(metricsIn('label_values(tessera_revocation_feed_healthy, instance)')).toEqual(['tessera_revocation_feed_healthy']);
    expect(metricsIn('a_metric / clamp_min(other_metric, 1) > 0.5')).toEqual(['a_metric', 'other_metric']);
  });
});
