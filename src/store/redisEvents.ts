import calculateSlot from 'cluster-key-slot';
import { isSecurityEventType, LIVE_EVENT_TYPES, type EventDetails, type EventOrigin, type SecurityEvent, type StoredEvent } from '../events/types.js';
import type { RedisReply } from './redisRecords.js';

/**
 * Security events in Redis (docs/contract.md section 10). Each event is a stream entry of flat
 * fields (`id type time userId sessionId ip userAgent details`, the absent ones left out,
 * `details` as JSON), appended by the same Lua script as the change it records:
 * - to the audit stream (trimmed with `MAXLEN ~ AUDIT_STREAM_MAX`), which admins list and the
 *   webhook consumer group delivers from;
 * - with a user, also to the user's own list `{u:<id>}:events` (the newest USER_EVENTS_MAX),
 *   which `securityEvents` reads. A list, not a stream: a stream's first node preallocates 4 KiB
 *   (stream-node-max-bytes), so a one-event stream per user would cost ~4.7 KB where a list
 *   costs ~0.5 KB. Each element is `<seq>|<JSON array of the fields>`, newest first; `seq`
 *   counts the user's events (the head's plus one), so a page after `seq` starts at index
 *   `head - seq + 1`.
 *
 * One server (or Sentinel): one audit stream, `{prefix}audit`. A Redis Cluster: a script may
 * only touch its user's slot, so there is one audit stream per slot, `{prefix}audit:{<tag>}`,
 * where `<tag>` is a short string that hashes to that slot (auditTagForSlot); readers find the
 * streams by SCAN on each master and merge them (events/eventPages.ts).
 */

/** The event arguments every appending script takes (their Lua names: event_id, event_time, …). */
export const EVENT_ARGS = {
  /** The step's id (a ULID); its i-th event is `<id>-<i>`. */
  eventId: 'string',
  eventTime: 'number',
  /** '' for none. */
  eventUser: 'string',
  eventIp: 'string',
  eventUserAgent: 'string',
  /** The details every event of the step carries (JSON object: the request id). */
  eventDetails: 'string',
  /**
   * The pub/sub channel that live session events (LIVE_EVENT_TYPES) are published on, in the same
   * step as they are appended, for every instance's subscriptions (src/realtime); '' for none.
   */
  liveChannel: 'string',
} as const;


/** The trimming bounds (their Lua names: audit_max, user_events_max). */
export const AUDIT_MAX_ARG = { auditMax: 'number' } as const;
export const USER_EVENTS_MAX_ARG = { userEventsMax: 'number' } as const;

/**
 * Lua: building an event's fields, appending them, and keeping what was appended (`appended`),
 * which the script returns so the gateway logs exactly what was stored. `detail` is extra JSON
 * members (`"cause":"logout"`), made only of the script's own constants and numbers.
 */
export const EVENTS_LUA = `
local appended = {}
local event_seq = 0
local function event_fields(kind, session_id, detail)
  event_seq = event_seq + 1
  local details = event_details
  if detail then
    if event_details == '{}' then details = '{' .. detail .. '}'
    else details = '{' .. detail .. ',' .. string.sub(event_details, 2) end
  end
  local f = {'id', event_id .. '-' .. event_seq, 'type', kind, 'time', string.format('%d', event_time)}
  if event_user ~= '' then f[#f + 1] = 'userId'; f[#f + 1] = event_user end
  if session_id and session_id ~= '' then f[#f + 1] = 'sessionId'; f[#f + 1] = session_id end
  if event_ip ~= '' then f[#f + 1] = 'ip'; f[#f + 1] = event_ip end
  if event_user_agent ~= '' then f[#f + 1] = 'userAgent'; f[#f + 1] = event_user_agent end
  f[#f + 1] = 'details'
  f[#f + 1] = details
  return f
end
local function xadd_event(key, max, f)
  redis.call('XADD', key, 'MAXLEN', '~', string.format('%d', max), '*', unpack(f))
end
-- The user's own list: newest first, numbered, the newest max kept.
local function push_user_event(key, max, f)
  local head = redis.call('LINDEX', key, 0)
  local seq = 1
  if head then seq = (tonumber(string.match(head, '^(%d+)|')) or 0) + 1 end
  redis.call('LPUSH', key, string.format('%d', seq) .. '|' .. cjson.encode(f))
  redis.call('LTRIM', key, 0, max - 1)
end
-- To the audit stream and, with a user, the user's own list (scripts that declare both keys).
-- The live session events: published to every instance in the step that stores them.
local live_types = {${LIVE_EVENT_TYPES.map((type) => `['${type}'] = true`).join(', ')}}
local function publish_live(kind, f)
  if live_channel ~= '' and live_types[kind] then redis.call('PUBLISH', live_channel, cjson.encode(f)) end
end
local function append_event(kind, session_id, detail)
  local f = event_fields(kind, session_id, detail)
  xadd_event(audit_key, audit_max, f)
  if event_user ~= '' then push_user_event(user_events_key, user_events_max, f) end
  publish_live(kind, f)
  appended[#appended + 1] = f
end
`;

/** The named event arguments of a step, from who caused it. */
export function eventArgs(
  stepId: string,
  time: number,
  userId: string | null,
  origin: EventOrigin,
  liveChannel = '',
): { [k in keyof typeof EVENT_ARGS]: k extends 'eventTime' ? number : string } {
  return {
    liveChannel,
    eventId: stepId,
    eventTime: time,
    eventUser: userId ?? '',
    eventIp: origin.ipAddress ?? '',
    eventUserAgent: origin.userAgent ?? '',
    eventDetails: JSON.stringify(originDetails(origin)),
  };
}

/** What every event of a request carries in its details besides its own. */
export function originDetails(origin: EventOrigin): Record<string, string> {
  return origin.requestId ? { requestId: origin.requestId } : {};
}

const text = (value: RedisReply | undefined): string => (Buffer.isBuffer(value) ? value.toString('utf8') : String(value ?? ''));

/** An event from its stream fields (`[name, value, …]`); null for an entry that is not one. */
export function decodeEvent(fields: readonly RedisReply[]): SecurityEvent | null {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(text(fields[i]), text(fields[i + 1]));
  const type = f.get('type') ?? '';
  const id = f.get('id');
  const time = Number(f.get('time'));
  if (!id || !isSecurityEventType(type) || !Number.isFinite(time)) return null;
  return {
    id,
    type,
    time,
    userId: f.get('userId') ?? null,
    sessionId: f.get('sessionId') ?? null,
    ip: f.get('ip') ?? null,
    userAgent: f.get('userAgent') ?? null,
    details: parseDetails(f.get('details')),
  };
}

function parseDetails(json: string | undefined): EventDetails {
  if (!json) return {};
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as EventDetails) : {};
  } catch {
    return {};
  }
}

/** The events a script returned (`appended`: a list of field lists). */
export function decodeAppended(reply: RedisReply | undefined): SecurityEvent[] {
  if (!Array.isArray(reply)) return [];
  return reply.flatMap((fields) => {
    const event = Array.isArray(fields) ? decodeEvent(fields) : null;
    return event ? [event] : [];
  });
}

/** Elements of a user's list (`<seq>|<JSON fields>`), at positions `<seq>-0`. */
export function decodeUserEvents(reply: RedisReply | undefined): StoredEvent[] {
  if (!Array.isArray(reply)) return [];
  const out: StoredEvent[] = [];
  for (const element of reply) {
    const raw = text(element);
    const bar = raw.indexOf('|');
    if (bar <= 0) continue;
    let fields: unknown;
    try {
      fields = JSON.parse(raw.slice(bar + 1));
    } catch {
      continue;
    }
    const event = Array.isArray(fields) ? decodeEvent(fields.map(String)) : null;
    if (event) out.push({ position: { id: `${raw.slice(0, bar)}-0`, source: '' }, event });
  }
  return out;
}

/** A live event as published (the JSON array of its fields); null for a message that is not one. */
export function decodeLiveEvent(message: string): SecurityEvent | null {
  let fields: unknown;
  try {
    fields = JSON.parse(message);
  } catch {
    return null;
  }
  return Array.isArray(fields) ? decodeEvent(fields.map(String)) : null;
}

/** Entries of XRANGE / XREVRANGE / XREADGROUP (`[[id, [fields]], …]`) in the stream `source`. */
export function decodeEntries(reply: RedisReply | undefined, source: string): StoredEvent[] {
  if (!Array.isArray(reply)) return [];
  const out: StoredEvent[] = [];
  for (const entry of reply) {
    if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue;
    const event = decodeEvent(entry[1]);
    if (event) out.push({ position: { id: text(entry[0]), source }, event });
  }
  return out;
}

const SLOTS = 16_384;
let slotTags: string[] | undefined;

/**
 * A short hash tag for each Cluster slot: the first of `0`, `1`, … `zz…` (base 36) found to
 * hash to it. Made once (some 170 000 CRC16s, a few tens of ms) when a Cluster store needs it.
 */
export function auditTagForSlot(slot: number): string {
  if (!slotTags) {
    const tags = new Array<string>(SLOTS);
    let missing = SLOTS;
    for (let i = 0; missing > 0; i++) {
      const tag = i.toString(36);
      const s = calculateSlot(tag);
      if (tags[s] === undefined) {
        tags[s] = tag;
        missing -= 1;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** The Cluster slot of a key (of its hash tag, when it has one). */
export function slotOf(key: string): number {
  return calculateSlot(key);
}
