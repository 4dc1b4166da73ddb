import type { SecurityEvent } from './types.js';

/** An event as the log and webhook receivers see it: the contract's schema, its time in ISO-8601. */
export interface WireEvent {
  id: string;
  type: string;
  time: string;
  userId: string | null;
  sessionId: string | null;
  ip: string | null;
  userAgent: string | null;
  details: SecurityEvent['details'];
}

export function toWire(event: SecurityEvent): WireEvent {
  return {
    id: event.id,
    type: event.type,
    time: new Date(event.time).toISOString(),
    userId: event.userId,
    sessionId: event.sessionId,
    ip: event.ip,
    userAgent: event.userAgent,
    details: event.details,
  };
}

/** The body of a webhook delivery, in the Standard Webhooks shape: `{ type, timestamp, data }`. */
export function webhookPayload(event: SecurityEvent): { type: string; timestamp: string; data: WireEvent } {
  const data = toWire(event);
  return { type: event.type, timestamp: data.time, data };
}
