import { describe, expect, it } from 'vitest';
import { toCedarRecord, toCedarValue } from '../../../src/pipeline/cedar_values.js';

describe('claims as Cedar values', () => {
  it('keeps strings, booleans, safe integers, arrays and records', () => {
    expect(toCedarValue({ a: 'x', b: true, c: 42, d: [1, 'y'], e: { f: 'g' } })).toEqual({ a: 'x', b: true, c: 42, d: [1, 'y'], e: { f: 'g' } });
  });

  it('drops what Cedar cannot hold: null, fractions, unsafe integers', () => {
    expect(toCedarValue({ a: null, b: 1.5, c: 2 ** 60, d: [null, 2.5, 3] })).toEqual({ d: [3] });
  });

  it('drops keys starting with __ at every depth, so __entity and __extn cannot be smuggled in', () => {
    const claims = { __entity: { type: 'User', id: 'admin' }, boss: { __entity: { type: 'User', id: 'admin' } }, list: [{ __extn: { fn: 'ip', arg: '1.1.1.1' }, ok: 1 }] };
    expect(toCedarRecord(claims)).toEqual({ boss: {}, list: [{ ok: 1 }] });
  });

  it('keeps only allow-listed top-level keys when given', () => {
    expect(toCedarRecord({ email: 'a@b', name: 'A', secret: 'x' }, 0, new Set(['email', 'name']))).toEqual({ email: 'a@b', name: 'A' });
  });

  it('stops at the depth limit', () => {
    expect(toCedarValue({ a: { b: { c: { d: { e: 1 } } } } })).toEqual({ a: { b: { c: {} } } });
  });
});
