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
  const segments = splitSegments(pathPart);
  let decodedAny = false;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    let decoded: string;
    try {
      decoded = seg.includes('%') ? decodeURIComponent(seg) : seg;
    } catch {
      return { ok: false, detail: 'invalid percent-encoding' };
    }
    if (decoded === '' && i < segments.length - 1) return { ok: false, detail: 'empty path segment' };
    if (decoded === '.' || decoded === '..') return { ok: false, detail: 'dot segment in path' };
    if (decoded !== seg) {
      if (/[/\\\u0000-\u001f\u007f]/.test(decoded)) return { ok: false, detail: 'encoded separator or control character' };
      segments[i] = decoded;
      decodedAny = true;
    }
    if (decoded.includes('\\')) return { ok: false, detail: 'backslash in path' };
  }
  // Nothing decoded: the segments joined again are the path as it came.
  return { ok: true, path: decodedAny ? `/${segments.join('/')}` : pathPart, segments, query };
}

/**
 * `path.slice(1).split('/')` by indexOf: String.prototype.split goes through the runtime for a
 * string made per request, ~0.5 µs against ~0.15 µs here for a two-segment path.
 */
function splitSegments(path: string): string[] {
  const segments: string[] = [];
  let start = 1;
  for (;;) {
    const slash = path.indexOf('/', start);
    if (slash === -1) {
      segments.push(path.slice(start));
      return segments;
    }
    segments.push(path.slice(start, slash));
    start = slash + 1;
  }
}
