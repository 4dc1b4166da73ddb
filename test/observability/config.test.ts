import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const observability = (env: Record<string, string>) => loadConfig(env).observability;

describe('observability settings', () => {
  it('default to metrics on 9464 at HOST, JSON logs, no tracing', () => {
    expect(observability({})).toEqual({ metricsPort: 9464, metricsHost: '0.0.0.0', logFormat: 'json', otlpEndpoint: null });
    expect(observability({ HOST: '127.0.0.1' }).metricsHost).toBe('127.0.0.1');
  });

  it('read METRICS_PORT (0: off), METRICS_HOST, LOG_FORMAT and OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    expect(
      observability({ METRICS_PORT: '9100', METRICS_HOST: '10.0.0.5', LOG_FORMAT: 'Pretty', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }),
    ).toEqual({ metricsPort: 9100, metricsHost: '10.0.0.5', logFormat: 'pretty', otlpEndpoint: 'http://collector:4318' });
    expect(observability({ METRICS_PORT: '0' }).metricsPort).toBe(0);
    expect(observability({ METRICS_PORT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toMatchObject({ metricsPort: 9464, otlpEndpoint: null });
  });

  it('refuse bad values with one line naming the variable', () => {
    for (const value of ['abc', '70000', '-1', '9464.5']) {
      expect(() => loadConfig({ METRICS_PORT: value })).toThrow(new RegExp(`^METRICS_PORT: "${value.replace('.', '\\.')}" is not a port number \\(1 to 65535, or 0 for no metrics\\)$`));
    }
    expect(() => loadConfig({ METRICS_HOST: 'a b' })).toThrow(/^METRICS_HOST: "a b" is not a host name or address$/);
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(/^LOG_FORMAT: "xml" is not one of json, pretty$/);
    for (const value of ['collector:4318', 'ftp://collector', 'http://user:secret@exa mple']) {
      let message = '';
      try {
        loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: value });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toBe("OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL (the collector's OTLP/HTTP base, e.g. http://localhost:4318)");
    }
  });
});
