import { ROOT_CONTEXT, createContextKey, type Context, type ContextManager } from '@opentelemetry/api';
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

/**
 * One AsyncLocalStorage for the whole process, holding an OpenTelemetry Context: the request
 * context is a value in it, and with tracing on, the SDK's active span lives in it too
 * (`requestContextManager` is registered as OpenTelemetry's context manager). With two storages,
 * every promise and async resource the process creates would pay for propagating both.
 */
const storage = new AsyncLocalStorage<Context>();
const REQUEST = createContextKey('portcullis.request_context');

export function withRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run((storage.getStore() ?? ROOT_CONTEXT).setValue(REQUEST, context), fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore()?.getValue(REQUEST) as RequestContext | undefined;
}

/**
 * OpenTelemetry's context manager over the same storage (what the SDK's AsyncLocalStorage manager
 * does, without its second storage). `bind` binds functions; event emitters are returned as they
 * are, as no instrumentation that binds them is installed. Disabling leaves the storage running:
 * the request context outlives the tracer provider.
 */
export const requestContextManager: ContextManager = {
  active: () => storage.getStore() ?? ROOT_CONTEXT,
  with: (context, fn, thisArg, ...args) => storage.run(context, thisArg === undefined ? fn : fn.bind(thisArg), ...args),
  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...a: unknown[]) => unknown;
    return function (this: unknown, ...args: unknown[]) {
      return storage.run(context, () => fn.apply(this, args));
    } as unknown as T;
  },
  enable() {
    return this;
  },
  disable() {
    return this;
  },
};

/** Request ids taken from callers are bounded and plain, so a log line cannot be stretched or forged. */
export function safeRequestId(value: string | undefined): string | undefined {
  return value && value.length <= 128 && /^[A-Za-z0-9._:-]+$/.test(value) ? value : undefined;
}
