import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchFailure, fetchJson, maxAge, type FetchFailureReason } from '../../../src/tokens/http_fetch.js';

describe('maxAge', () => {
  it.each<[string | null, number | undefined]>([
    [null, undefined],
    ['', undefined],
    ['max-age=300', 300],
    ['public, max-age=60', 60],
    ['Public, MAX-AGE=120, must-revalidate', 120],
    ['max-age=0', 0],
    ['no-store', 0],
    ['max-age=300, no-cache', 0],
    ['private', undefined],
    ['max-age=abc', undefined],
    ['max-age=-5', undefined],
    ['s-maxage=30', undefined],
  ])('reads %j as %j', (header, expected) => {
    expect(maxAge(header)).toBe(expected);
  });
});

const big = JSON.stringify({ pad: 'x'.repeat(4096) });

/** One test server answering by path. */
const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/ok': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=123' });
    res.end(JSON.stringify({ keys: [] }));
  },
  '/no-cache-header': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('[1,2,3]');
  },
  '/accept': (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accept: req.headers.accept ?? null }));
  },
  '/error': (_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{}');
  },
  '/not-found': (_req, res) => {
    res.writeHead(404);
    res.end();
  },
  '/redirect': (_req, res) => {
    res.writeHead(302, { location: '/ok' });
    res.end();
  },
  '/garbage': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('<html>not json</html>');
  },
  '/large-declared': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) });
    res.end(big);
  },
  '/large-chunked': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }); // no content-length: chunked
    for (let i = 0; i < 8; i++) res.write(big);
    res.end();
  },
  '/hang': () => {
    // Never answers.
  },
  '/stall-body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"keys": ['); // and never finishes
  },
};

let server: Server;
let base: string;
let closedUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const handler = routes[req.url ?? ''];
    if (handler) handler(req, res);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nobody listens on any more.
  const gone = createServer();
  await new Promise<void>((done) => gone.listen(0, '127.0.0.1', done));
  closedUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/`;
  await new Promise<void>((done) => gone.close(() => done()));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((done) => server.close(() => done()));
});

const options = { timeoutMs: 2000, maxBytes: 1024 };

async function failure(path: string, opts = options): Promise<FetchFailure> {
  const err = await fetchJson(path.startsWith('http') ? path : `${base}${path}`, opts).then(
    () => new Error('expected a FetchFailure'),
    (e: unknown) => e,
  );
  if (err instanceof FetchFailure) return err;
  throw err;
}

describe('fetchJson', () => {
  it('returns the JSON body and the Cache-Control max-age', async () => {
    expect(await fetchJson(`${base}/ok`, options)).toEqual({ body: { keys: [] }, maxAgeSeconds: 123 });
  });

  it('returns no max-age without Cache-Control', async () => {
    expect(await fetchJson(`${base}/no-cache-header`, options)).toEqual({ body: [1, 2, 3], maxAgeSeconds: undefined });
  });

  it('asks for JSON', async () => {
    expect((await fetchJson(`${base}/accept`, options)).body).toEqual({ accept: 'application/json' });
  });

  it.each<[string, FetchFailureReason, string]>([
    ['/error', 'http_status', 'ERR_JWKS_FETCH'],
    ['/not-found', 'http_status', 'ERR_JWKS_FETCH'],
    ['/redirect', 'redirect', 'ERR_JWKS_FETCH'],
    ['/garbage', 'invalid_json', 'ERR_JWKS_INVALID'],
    ['/large-declared', 'too_large', 'ERR_JWKS_FETCH'],
    ['/large-chunked', 'too_large', 'ERR_JWKS_FETCH'],
  ])('fails %s with reason %s', async (path, reason, code) => {
    const err = await failure(path);
    expect(err.reason).toBe(reason);
    expect(err.code).toBe(code);
    expect(err.message).toContain(`${base}${path}`);
  });

  it('refuses a declared length over the cap before reading, and a chunked body once it passes the cap', async () => {
    expect((await failure('/large-declared')).message).toContain(`declares ${Buffer.byteLength(big)} bytes (limit 1024)`);
    expect((await failure('/large-chunked')).message).toContain('sent more than 1024 bytes');
  });

  it('names the HTTP status and does not follow redirects', async () => {
    expect((await failure('/error')).message).toContain('HTTP 500');
    expect((await failure('/redirect')).message).toContain('(302)');
  });

  it('accepts a body of exactly maxBytes and refuses one byte less of room', async () => {
    const size = Buffer.byteLength(big);
    expect((await fetchJson(`${base}/large-declared`, { timeoutMs: 2000, maxBytes: size })).body).toEqual(JSON.parse(big));
    expect((await failure('/large-declared', { timeoutMs: 2000, maxBytes: size - 1 })).reason).toBe('too_large');
  });

  it('times out a server that never answers within timeoutMs', async () => {
    const started = Date.now();
    const err = await failure('/hang', { timeoutMs: 200, maxBytes: 8192 });
    expect(err.reason).toBe('timeout');
    expect(err.code).toBe('ERR_JWKS_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('times out a body that stops arriving', async () => {
    const started = Date.now();
    expect((await failure('/stall-body', { timeoutMs: 200, maxBytes: 8192 })).reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('reports a refused connection as a network failure', async () => {
    const err = await failure(closedUrl);
    expect(err.reason).toBe('network');
    expect(err.code).toBe('ERR_JWKS_FETCH');
  });
});
