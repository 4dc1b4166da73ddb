import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { libraryLogger, oneLine, prettyDestination } from '../../src/observability/logFormat.js';
import { testKeySet } from '../helpers/keys.js';
import { createTestServer } from '../helpers/testServer.js';
import { ISSUER, startRecordingOrders } from '../federation/support.js';

/** A destination that keeps what is written (a sonic-boom-like stream for pino). */
function sink() {
  const written: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      written.push(String(chunk));
      done();
    },
  });
  return { stream, written, text: () => written.join('') };
}

describe('oneLine', () => {
  it("makes Apollo Gateway's multi-line message one readable line", () => {
    expect(oneLine('Gateway successfully loaded schema.\n\t* Mode: unmanaged')).toBe('Gateway successfully loaded schema. Mode: unmanaged');
    expect(oneLine('a\r\n  - b\n\n c')).toBe('a b c');
    expect(oneLine('already one line')).toBe('already one line');
  });
});

describe('the logger given to Apollo Server and Apollo Gateway', () => {
  it('writes each message as one JSON line with a one-line msg, at the level asked, and honours the level', () => {
    const out = sink();
    const logger = libraryLogger(createLogger({ production: false, level: 'info' }, out.stream));
    logger.info('Gateway successfully loaded schema.\n\t* Mode: unmanaged');
    logger.warn('two', 'parts');
    logger.error(new Error('broke\nbadly'));
    logger.debug('not at info');
    const lines = out.text().trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [30, 'Gateway successfully loaded schema. Mode: unmanaged'],
      [40, 'two parts'],
      [50, 'broke badly'],
    ]);
    expect(lines[2]!.err.type).toBe('Error');
  });

  it('a real gateway (SUBGRAPHS) logs "Mode: unmanaged" on one line', async () => {
    const orders = await startRecordingOrders();
    const gateway = await createTestServer({ store: 'memory', keys: await testKeySet(), env: { AUTH_ISSUER: ISSUER, SUBGRAPHS: `orders=${orders.url}` } });
    try {
      const lines = gateway.logs.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((line) => JSON.parse(line) as { msg: string });
      const loaded = lines.filter((line) => line.msg.includes('Mode: unmanaged'));
      expect(loaded.map((line) => line.msg)).toEqual(['Gateway successfully loaded schema. Mode: unmanaged']);
      for (const line of lines) expect(line.msg, line.msg).not.toMatch(/[\r\n]/);
    } finally {
      await gateway.close();
      await orders.stop();
    }
  });
});

describe('LOG_FORMAT=pretty', () => {
  it('writes one line per entry for people: time, level, message, then the fields, with secrets still redacted', async () => {
    const out = sink();
    const logger = createLogger({ production: false, level: 'info' }, await prettyDestination(out.stream));
    logger.child({ requestId: 'req-42' }).info({ method: 'POST', path: '/graphql', status: 200, headers: { authorization: 'Bearer abc.def.ghi' } }, 'request done');
    libraryLogger(logger).info('Gateway successfully loaded schema.\n\t* Mode: unmanaged');
    const lines = out.text().split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: request done \{.*\}$/);
    expect(lines[0]).toContain('"requestId":"req-42"');
    expect(lines[0]).toContain('"status":200');
    expect(lines[0]).toContain('[redacted]');
    expect(lines[0]).not.toContain('abc.def.ghi');
    expect(lines[0]).not.toContain('"level"');
    expect(lines[1]).toMatch(/INFO: Gateway successfully loaded schema\. Mode: unmanaged$/);
  });
});
