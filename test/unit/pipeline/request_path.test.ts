import { describe, expect, it } from 'vitest';
import { parseRequestPath } from '../../../src/pipeline/request_path.js';

describe('parseRequestPath', () => {
  it('splits off the query string and decodes each segment', () => {
    expect(parseRequestPath('/documents/d%201?x=%2F&y=2')).toEqual({ ok: true, path: '/documents/d 1', segments: ['documents', 'd 1'], query: 'x=%2F&y=2' });
  });

  it('keeps the root and a trailing slash', () => {
    expect(parseRequestPath('/')).toMatchObject({ ok: true, segments: [''] });
    expect(parseRequestPath('/a/')).toMatchObject({ ok: true, segments: ['a', ''], path: '/a/' });
  });

  it('decodes UTF-8 escapes', () => {
    expect(parseRequestPath('/caf%C3%A9')).toMatchObject({ ok: true, segments: ['café'] });
  });

  it('drops a fragment', () => {
    expect(parseRequestPath('/a#frag')).toMatchObject({ ok: true, path: '/a' });
  });

  it.each([
    ['/a%2Fb', 'encoded separator or control character'],
    ['/a%2fb', 'encoded separator or control character'],
    ['/a%5Cb', 'encoded separator or control character'],
    ['/a\\b', 'backslash in path'],
    ['/a/../b', 'dot segment in path'],
    ['/a/./b', 'dot segment in path'],
    ['/a/%2e%2e/b', 'dot segment in path'],
    ['/a/%2E/b', 'dot segment in path'],
    ['/a//b', 'empty path segment'],
    ['/a%00', 'encoded separator or control character'],
    ['/a\u0000', 'control character in path'],
    ['/a\nb', 'control character in path'],
    ['/a?x=\r', 'control character in path'],
    ['/%zz', 'invalid percent-encoding'],
    ['/%', 'invalid percent-encoding'],
    ['/%C3', 'invalid percent-encoding'],
    ['a/b', 'path must start with /'],
    ['http://evil/a', 'path must start with /'],
    ['*', 'path must start with /'],
    ['', 'path must start with /'],
  ])('refuses %j (%s)', (raw, detail) => {
    expect(parseRequestPath(raw)).toEqual({ ok: false, detail });
  });
});

describe('fragments', () => {
  it('drops a fragment that follows the query', () => {
    expect(parseRequestPath('/a?x=1#frag')).toMatchObject({ ok: true, path: '/a', query: 'x=1' });
  });
});
