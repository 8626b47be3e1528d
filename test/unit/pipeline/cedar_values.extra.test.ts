import { describe, expect, it } from 'vitest';
import { toCedarRecord, toCedarValue } from '../../../src/pipeline/cedar_values.js';

// Cases beyond cedar_values.test.ts.
describe('claims as Cedar values: edge cases', () => {
  it('keeps primitive values, including zero, negatives and the largest safe integers', () => {
    expect(toCedarValue('')).toBe('');
    expect(toCedarValue(false)).toBe(false);
    expect(toCedarValue(0)).toBe(0);
    expect(toCedarValue(-7)).toBe(-7);
    expect(toCedarValue(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
    expect(toCedarValue(Number.MIN_SAFE_INTEGER)).toBe(Number.MIN_SAFE_INTEGER);
  });

  it('drops what JSON or Cedar cannot hold', () => {
    for (const v of [undefined, null, NaN, Infinity, -Infinity, 0.1, Number.MAX_SAFE_INTEGER + 1, 10n, Symbol('s'), () => 1]) {
      expect(toCedarValue(v)).toBeUndefined();
    }
  });

  it('keeps empty arrays and records, and array order', () => {
    expect(toCedarValue({ a: [], b: {}, c: ['z', 'a', 'm'] })).toEqual({ a: [], b: {}, c: ['z', 'a', 'm'] });
  });

  it('drops every key starting with __ but keeps single-underscore keys', () => {
    expect(toCedarRecord({ __entity: 1, __extn: 2, __expr: 3, __: 4, _private: 5, a__b: 6 })).toEqual({ _private: 5, a__b: 6 });
  });

  it('drops a parsed __proto__ key without touching the prototype of the result', () => {
    const result = toCedarRecord(JSON.parse('{"__proto__": {"admin": true}, "a": 1}') as Record<string, unknown>);
    expect(result).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect((result as Record<string, unknown>).admin).toBeUndefined();
  });

  it('drops __ keys inside arrays nested in arrays', () => {
    expect(toCedarValue([[{ __entity: { type: 'User', id: 'root' }, ok: true }]])).toEqual([[{ ok: true }]]);
  });

  it('counts arrays towards the depth limit like records', () => {
    expect(toCedarValue([[1, [2, [3, [4]]]]])).toEqual([[1, [2, [3]]]]);
    expect(toCedarValue({ a: [{ b: [5] }] })).toEqual({ a: [{ b: [5] }] });
    expect(toCedarValue({ a: [{ b: [[5]] }] })).toEqual({ a: [{ b: [] }] });
  });

  it('starts counting depth from the given level', () => {
    expect(toCedarRecord({ a: { b: 1 }, c: 1 }, 3)).toEqual({ a: { b: 1 }, c: 1 });
    expect(toCedarRecord({ a: { b: 1 }, c: 1 }, 4)).toEqual({ c: 1 });
  });

  it('applies the allow-list to top-level keys only, and never lets a __ key through it', () => {
    const only = new Set(['profile', '__entity']);
    expect(toCedarRecord({ profile: { email: 'a@b', secret: 'x' }, other: 1, __entity: { type: 'User', id: 'admin' } }, 0, only)).toEqual({ profile: { email: 'a@b', secret: 'x' } });
    expect(toCedarRecord({ a: 1 }, 0, new Set())).toEqual({});
  });

  it('leaves the input untouched', () => {
    const claims = { a: null, __entity: 1, b: { c: 1.5 } };
    toCedarRecord(claims);
    expect(claims).toEqual({ a: null, __entity: 1, b: { c: 1.5 } });
  });
});
