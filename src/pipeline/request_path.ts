export type ParsedPath =
  | { ok: true; path: string; segments: string[]; query: string }
  | { ok: false; detail: string };

/**
 * Splits the query off a request path and percent-decodes it per segment for routing.
 * Refuses what different servers could read differently: encoded `/` or `\`, `.`/`..`
 * segments, empty segments, NUL and control characters, undecodable escapes.
 */
export function parseRequestPath(raw: string): ParsedPath {
  const q = raw.indexOf('?');
  const beforeQuery = q === -1 ? raw : raw.slice(0, q);
  const hash = beforeQuery.indexOf('#');
  const pathPart = hash === -1 ? beforeQuery : beforeQuery.slice(0, hash);
  const afterQuery = q === -1 ? '' : raw.slice(q + 1);
  const query = afterQuery.includes('#') ? afterQuery.slice(0, afterQuery.indexOf('#')) : afterQuery;
  if (!pathPart.startsWith('/')) return { ok: false, detail: 'path must start with /' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) return { ok: false, detail: 'control character in path' };
  const rawSegments = pathPart.slice(1).split('/');
  const segments: string[] = new Array(rawSegments.length);
  for (let i = 0; i < rawSegments.length; i++) {
    const seg = rawSegments[i]!;
    let decoded: string;
    try {
      decoded = seg.includes('%') ? decodeURIComponent(seg) : seg;
    } catch {
      return { ok: false, detail: 'invalid percent-encoding' };
    }
    if (decoded === '' && i < rawSegments.length - 1) return { ok: false, detail: 'empty path segment' };
    if (decoded === '.' || decoded === '..') return { ok: false, detail: 'dot segment in path' };
    if (decoded !== seg && /[/\\\u0000-\u001f\u007f]/.test(decoded)) return { ok: false, detail: 'encoded separator or control character' };
    if (decoded.includes('\\')) return { ok: false, detail: 'backslash in path' };
    segments[i] = decoded;
  }
  return { ok: true, path: `/${segments.join('/')}`, segments, query };
}
