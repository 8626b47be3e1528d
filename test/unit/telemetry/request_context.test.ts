import { ROOT_CONTEXT, createContextKey } from '@opentelemetry/api';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { currentRequestContext, requestContextManager, withRequestContext } from '../../../src/telemetry/request_context.js';

const KEY = createContextKey('test.value');

describe('request context', () => {
  it('follows the request through awaits and timers, and nests', async () => {
    expect(currentRequestContext()).toBeUndefined();
    const seen = await withRequestContext({ request_id: 'outer' }, async () => {
      await sleep(1);
      const inner = await withRequestContext({ request_id: 'inner', decision_id: 'd1' }, async () => {
        await new Promise((r) => setImmediate(r));
        return currentRequestContext();
      });
      return [currentRequestContext()?.request_id, inner];
    });
    expect(seen).toEqual(['outer', { request_id: 'inner', decision_id: 'd1' }]);
    expect(currentRequestContext()).toBeUndefined();
  });

  it("is OpenTelemetry's context manager over the same storage: a span's context and the request context are one", async () => {
    const m = requestContextManager;
    expect(m.active()).toBe(ROOT_CONTEXT);
    const traced = ROOT_CONTEXT.setValue(KEY, 'span-ish');
    const out = await m.with(traced, async () => {
      // The request context is set inside what the tracer made active, and both are visible.
      return withRequestContext({ request_id: 'r1' }, async () => {
        await sleep(1);
        return [m.active().getValue(KEY), currentRequestContext()?.request_id];
      });
    });
    expect(out).toEqual(['span-ish', 'r1']);
    // And a context the tracer activates inside a request keeps the request context.
    withRequestContext({ request_id: 'r2' }, () => {
      m.with(m.active().setValue(KEY, 'child'), () => {
        expect(currentRequestContext()?.request_id).toBe('r2');
        expect(m.active().getValue(KEY)).toBe('child');
      });
    });
    expect(m.active()).toBe(ROOT_CONTEXT);
  });

  it('passes this and the arguments through with(), and binds functions to a context for later calls', async () => {
    const m = requestContextManager;
    const self = { name: 'self' };
    const r = m.with(ROOT_CONTEXT.setValue(KEY, 1), function (this: typeof self, a: number, b: number) {
      return [this.name, a + b, m.active().getValue(KEY)];
    }, self, 2, 3);
    expect(r).toEqual(['self', 5, 1]);
    const bound = m.bind(ROOT_CONTEXT.setValue(KEY, 'bound'), (x: number) => [x, m.active().getValue(KEY)]);
    await sleep(1);
    expect(bound(7)).toEqual([7, 'bound']);
    const emitter = { on: () => undefined };
    expect(m.bind(ROOT_CONTEXT, emitter)).toBe(emitter);
  });

  it('keeps working after the tracer provider disables it (the request context outlives tracing)', () => {
    requestContextManager.disable();
    expect(withRequestContext({ request_id: 'after' }, () => currentRequestContext()?.request_id)).toBe('after');
  });
});
