import type { CedarValueJson } from '../policy/index.js';
import { toCedarRecord, toCedarValue } from './cedar_values.js';

export type ParsedBody = { ok: true; value: CedarValueJson | undefined } | { ok: false; detail: string; tooLarge?: boolean };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The request body Envoy forwarded (`with_request_body`) as a Cedar value for `context.body`:
 * JSON and form-urlencoded bodies are parsed, other types are left out. Invalid JSON, invalid
 * UTF-8 or a body over the limit is a bad request. Keys starting with `__` are dropped as for claims.
 */
export function parseRequestBody(body: Uint8Array | string | undefined, contentType: string | undefined, maxBytes: number): ParsedBody {
  if (body === undefined || body.length === 0) return { ok: true, value: undefined };
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  if (size > maxBytes) return { ok: false, detail: `request body of ${size} bytes exceeds the ${maxBytes}-byte limit (request_body.max_bytes)`, tooLarge: true };
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const isJson = type === 'application/json' || type.endsWith('+json');
  const isForm = type === 'application/x-www-form-urlencoded';
  if (!isJson && !isForm) return { ok: true, value: undefined };
  let text: string;
  try {
    text = typeof body === 'string' ? body : utf8.decode(body);
  } catch {
    return { ok: false, detail: 'request body is not valid UTF-8' };
  }
  if (isForm) {
    const fields: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(text)) if (!(k in fields)) fields[k] = v;
    return { ok: true, value: toCedarRecord(fields) };
  }
  try {
    return { ok: true, value: toCedarValue(JSON.parse(text)) };
  } catch (err) {
    return { ok: false, detail: `request body is not valid JSON: ${(err as Error).message}` };
  }
}
