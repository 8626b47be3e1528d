import { PortcullisError } from '../lib/errors.js';

/** Bounded reasons, usable as metric labels. */
export type FetchFailureReason = 'timeout' | 'network' | 'redirect' | 'http_status' | 'too_large' | 'invalid_json' | 'invalid_document';

export class FetchFailure extends PortcullisError {
  readonly reason: FetchFailureReason;
  constructor(reason: FetchFailureReason, message: string, cause?: unknown) {
    super(reason === 'timeout' ? 'ERR_JWKS_TIMEOUT' : reason === 'invalid_document' || reason === 'invalid_json' ? 'ERR_JWKS_INVALID' : 'ERR_JWKS_FETCH', message, { cause });
    this.reason = reason;
  }
}

export interface FetchJsonOptions {
  timeoutMs: number;
  maxBytes: number;
}

export interface FetchedJson {
  body: unknown;
  /** `max-age` of the response's Cache-Control, when present and not `no-store`/`no-cache`. */
  maxAgeSeconds: number | undefined;
}

/** GET a JSON document: no redirects, a hard timeout and a size cap on the body read. */
export async function fetchJson(url: string, options: FetchJsonOptions): Promise<FetchedJson> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'manual', signal, headers: { accept: 'application/json' } });
  } catch (cause) {
    if (signal.aborted) throw new FetchFailure('timeout', `fetching ${url} timed out after ${options.timeoutMs} ms`, cause);
    throw new FetchFailure('network', `fetching ${url} failed: ${(cause as Error).message}`, cause);
  }
  try {
    if (response.status >= 300 && response.status < 400) throw new FetchFailure('redirect', `${url} answered a redirect (${response.status}); redirects are not followed`);
    if (response.status !== 200) throw new FetchFailure('http_status', `${url} answered HTTP ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > options.maxBytes) throw new FetchFailure('too_large', `${url} declares ${declared} bytes (limit ${options.maxBytes})`);
    const text = await readCapped(response, options.maxBytes, url, signal);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      throw new FetchFailure('invalid_json', `${url} did not return JSON`, cause);
    }
    return { body, maxAgeSeconds: maxAge(response.headers.get('cache-control')) };
  } finally {
    if (!response.bodyUsed) await response.body?.cancel().catch(() => {});
  }
}

async function readCapped(response: Response, maxBytes: number, url: string, signal: AbortSignal): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw new FetchFailure('too_large', `${url} sent more than ${maxBytes} bytes`);
      chunks.push(value);
    }
  } catch (cause) {
    if (cause instanceof FetchFailure) throw cause;
    if (signal.aborted) throw new FetchFailure('timeout', `reading ${url} timed out`, cause);
    throw new FetchFailure('network', `reading ${url} failed: ${(cause as Error).message}`, cause);
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function maxAge(header: string | null): number | undefined {
  if (!header) return undefined;
  const directives = header.toLowerCase().split(',').map((d) => d.trim());
  if (directives.includes('no-store') || directives.includes('no-cache')) return 0;
  for (const d of directives) {
    const m = /^max-age=(\d+)$/.exec(d);
    if (m) return Number(m[1]);
  }
  return undefined;
}
