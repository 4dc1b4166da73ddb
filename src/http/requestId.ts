import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestScope } from '../graphql/context.js';
import type { Logger } from '../logger.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client (or a proxy in front) may choose as a request id: 1 to 128 of these characters. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id of a request: the incoming `x-request-id` when it is a valid one, otherwise a new
 * random one. Anything else (too long, control characters, several headers) is replaced, and
 * never logged: it is the client's text.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && VALID_REQUEST_ID.test(header) ? header : randomUUID();
}

export type { RequestScope };

class Scope implements RequestScope {
  private child: Logger | undefined = undefined;

  constructor(
    readonly id: string,
    private readonly parent: Logger,
  ) {}

  get logger(): Logger {
    return (this.child ??= this.parent.child({ requestId: this.id }));
  }
}

const SCOPE = Symbol('tessera.requestScope');
type WithScope = IncomingMessage & { [SCOPE]?: RequestScope };

/**
 * Gives the request its id, echoes it in the response's `x-request-id`, and keeps it with the
 * request for `requestScope`. Call first thing in the request handler.
 */
export function beginRequest(req: IncomingMessage, res: ServerResponse, logger: Logger): RequestScope {
  const scope = new Scope(requestIdFrom(req.headers[REQUEST_ID_HEADER]), logger);
  (req as WithScope)[SCOPE] = scope;
  res.setHeader(REQUEST_ID_HEADER, scope.id);
  return scope;
}

/** The scope `beginRequest` gave this request. */
export function requestScope(req: IncomingMessage): RequestScope {
  const scope = (req as WithScope)[SCOPE];
  if (!scope) throw new Error('requestScope: beginRequest was not called for this request');
  return scope;
}
