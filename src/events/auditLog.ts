import type { Logger } from '../logger.js';
import type { EventListener } from './types.js';
import { toWire } from './wire.js';

/**
 * The audit log: every event a store step appended, once that step succeeded, as one log line
 * `{"audit": true, "event": {…}, "msg": "security event <type>"}` (the same id as in the stream
 * and the webhook delivery).
 */
export function auditLogger(logger: Logger): EventListener {
  return (events) => {
    for (const event of events) logger.info({ audit: true, event: toWire(event) }, `security event ${event.type}`);
  };
}
