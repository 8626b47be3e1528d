import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request being handled, for log correlation: every line logged while handling it (by any
 * module, however deep) carries these ids through the logger's mixin. `decision_id` is set once
 * the decision has one; a batch sets it per item.
 */
export interface RequestContext {
  request_id: string;
  decision_id?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function withRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

/** Request ids taken from callers are bounded and plain, so a log line cannot be stretched or forged. */
export function safeRequestId(value: string | undefined): string | undefined {
  return value && value.length <= 128 && /^[A-Za-z0-9._:-]+$/.test(value) ? value : undefined;
}
