import { describe, expect, it } from 'vitest';
import { respond } from '../../../src/grpc/unary.js';

/** Settles one call and returns what the callback got. */
function settle<A>(work: Promise<A>, render: (a: A) => string): Promise<{ err: unknown; response: string | undefined }> {
  return new Promise((resolve) => {
    respond(work, render, (err, response) => resolve({ err, response: response ?? undefined }), (err) => ({ code: 13, details: `mapped: ${(err as Error).message}` }));
  });
}

describe('respond (a unary call settled from a promise)', () => {
  it('answers with the rendered value', async () => {
    expect(await settle(Promise.resolve(2), (n) => `n=${n}`)).toEqual({ err: null, response: 'n=2' });
  });

  it('turns a failed piece of work into the mapped error status', async () => {
    expect(await settle(Promise.reject(new Error('engine down')), String)).toEqual({ err: { code: 13, details: 'mapped: engine down' }, response: undefined });
  });

  it('turns a throw while rendering into the mapped error status, never a hanging call', async () => {
    const got = await settle(Promise.resolve({}), () => {
      throw new Error('render broke');
    });
    expect(got).toEqual({ err: { code: 13, details: 'mapped: render broke' }, response: undefined });
  });
});
