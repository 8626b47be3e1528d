import { describe, expect, it } from 'vitest';
import { parseRequestPath } from '../../../src/pipeline/request_path.js';

// Cases beyond request_path.test.ts.
describe('parseRequestPath edge cases', () => {
  it('keeps the query raw and splits on the first ? only', () => {
    expect(parseRequestPath('/a?')).toEqual({ ok: true, path: '/a', segments: ['a'], query: '' });
    expect(parseRequestPath('/a?b?c=%41')).toEqual({ ok: true, path: '/a', segments: ['a'], query: 'b?c=%41' });
  });

  it('does not check the query for path rules: encoded slashes, backslashes and dots are fine there', () => {
    expect(parseRequestPath('/a?p=%2F..%5C&q=\\')).toMatchObject({ ok: true, segments: ['a'], query: 'p=%2F..%5C&q=\\' });
  });

  it('decodes an encoded ? or # into the segment instead of splitting on it', () => {
    expect(parseRequestPath('/a%3Fb%23c')).toEqual({ ok: true, path: '/a?b#c', segments: ['a?b#c'], query: '' });
  });

  it('decodes once: a double-encoded slash stays a literal %2F inside one segment', () => {
    expect(parseRequestPath('/a%252Fb/c')).toEqual({ ok: true, path: '/a%2Fb/c', segments: ['a%2Fb', 'c'], query: '' });
  });

  it('decodes %20 but leaves + alone', () => {
    expect(parseRequestPath('/a%20b/c+d')).toMatchObject({ ok: true, segments: ['a b', 'c+d'] });
  });

  it('accepts segments that merely contain dots', () => {
    expect(parseRequestPath('/.../.a/a..b/v1.2')).toMatchObject({ ok: true, segments: ['...', '.a', 'a..b', 'v1.2'] });
  });

  it('accepts multi-byte UTF-8 escapes in either case and raw non-ASCII characters', () => {
    expect(parseRequestPath('/%e2%82%ac/%E2%82%AC/ü')).toMatchObject({ ok: true, segments: ['€', '€', 'ü'] });
  });

  it.each([
    ['/a%5cb', 'encoded separator or control character'],
    ['/a%7F', 'encoded separator or control character'],
    ['/a%09b', 'encoded separator or control character'],
    ['/a%0D%0Ab', 'encoded separator or control character'],
    ['/a\u007fb', 'control character in path'],
    ['/a\tb', 'control character in path'],
    ['/a#\u0001', 'control character in path'],
    ['/%C0%AE%C0%AE/x', 'invalid percent-encoding'], // overlong UTF-8 for ".."
    ['/a%C0%AFb', 'invalid percent-encoding'], // overlong UTF-8 for "/"
    ['/a%2', 'invalid percent-encoding'],
    ['//', 'empty path segment'],
    ['//a', 'empty path segment'],
    ['/a//', 'empty path segment'],
    ['/..', 'dot segment in path'],
    ['/.', 'dot segment in path'],
    ['/a/..', 'dot segment in path'],
    ['/a/%2E%2e', 'dot segment in path'],
    ['/a/.%2E/b', 'dot segment in path'],
    ['/a/./', 'dot segment in path'],
    ['#/a', 'path must start with /'],
    ['?/a', 'path must start with /'],
    ['https://host/a?x', 'path must start with /'],
  ])('refuses %j (%s)', (raw, detail) => {
    expect(parseRequestPath(raw)).toEqual({ ok: false, detail });
  });
});

describe('parseRequestPath splits like String.prototype.split', () => {
  it('gives the segments split("/") gives for paths of every shape', () => {
    for (const path of ['/', '/a', '/a/', '/a/b', '/a/b/', '/documents/d1', '/x/y/z/w', '/a/b/c/']) {
      const parsed = parseRequestPath(path);
      expect(parsed).toEqual({ ok: true, path, segments: path.slice(1).split('/'), query: '' });
    }
    expect(parseRequestPath('/a//b')).toEqual({ ok: false, detail: 'empty path segment' });
  });
});
