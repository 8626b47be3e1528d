import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser } from '../../src/issuer/users.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

const ADMIN_KEY = 'audit-query-admin-key-0123456789';
let sidecar: Sidecar;
let admin = '';
let base = '';
let aliceId = '';

interface Page {
  events: Array<{ id: number; at: string; kind: string; outcome: string; actor: string | null; reason: string | null }>;
  next_cursor: string | null;
}

beforeAll(async () => {
  sidecar = await startSidecar({ admin: { api_key: ADMIN_KEY }, token_module: { rate_limit: { login_per_minute: 0 } } });
  admin = `http://127.0.0.1:${sidecar.server.adminPort}`;
  base = `http://127.0.0.1:${sidecar.server.httpPort}`;
  const ctx = sidecar.server.tokens!.ctx;
  aliceId = (await addUser(ctx, { username: 'audit-alice', password: 'audit-password-1', roles: [] })).id;
  await addUser(ctx, { username: 'audit-bob', password: 'audit-password-2', roles: [] });
  const login = (username: string, password: string) => fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  for (let i = 0; i < 3; i++) await login('audit-alice', 'wrong-password-x');
  await login('audit-alice', 'audit-password-1');
  await login('audit-bob', 'audit-password-2');
});
afterAll(() => sidecar.close());

const get = async (query: string) => fetch(`${admin}/admin/audit?${query}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
const page = async (query: string) => (await (await get(query)).json()) as Page;

describe('GET /admin/audit', () => {
  it('filters by kind and by user (matched through the keyed hash), newest first', async () => {
    const alice = await page(`kind=login.password&user_id=${aliceId}`);
    expect(alice.events.map((e) => e.outcome)).toEqual(['success', 'failure', 'failure', 'failure']);
    expect(alice.events.every((e) => e.actor === sidecar.server.tokens!.ctx.audit.userRef(aliceId))).toBe(true);
    expect(alice.events.map((e) => e.id)).toEqual([...alice.events.map((e) => e.id)].sort((a, b) => b - a));
    expect(JSON.stringify(alice)).not.toContain('audit-alice');
  });

  it('pages with an opaque cursor until the last page', async () => {
    const all = await page('limit=1000');
    const seen: number[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const p: Page = await page(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...p.events.map((e) => e.id));
      cursor = p.next_cursor;
    }
    expect(seen).toEqual(all.events.map((e) => e.id));
  });

  it('bounds by time with since and until', async () => {
    const all = (await page('limit=1000')).events;
    const middle = all[Math.floor(all.length / 2)]!.at;
    const after = (await page(`since=${encodeURIComponent(middle)}&limit=1000`)).events;
    const before = (await page(`until=${encodeURIComponent(middle)}&limit=1000`)).events;
    expect(after.every((e) => e.at >= middle)).toBe(true);
    expect(before.every((e) => e.at < middle)).toBe(true);
    expect(after.length + before.length).toBe(all.length);
  });

  it('names the bad parameter with a 400', async () => {
    for (const [query, name] of [
      ['limit=0', 'limit'],
      ['limit=abc', 'limit'],
      ['since=yesterday', 'since'],
      ['kind=DROP%20TABLE', 'kind'],
      ['cursor=!!', 'cursor'],
      [`cursor=${Buffer.from('x1').toString('base64url')}`, 'cursor'],
      ['since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z', 'since'],
      ['colour=blue', 'colour'],
    ] as const) {
      const res = await get(query);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { detail: string }).detail, query).toContain(name);
    }
  });
});
