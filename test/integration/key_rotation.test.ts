import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { addUser } from '../../src/issuer/users.js';
import { createManualClock } from '../../src/lib/clock.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * Signing-key rotation and refresh-token lifetimes over real HTTP, with a manual clock so the
 * prepublication, activation, token expiry and retirement times are crossed without sleeping.
 */

const ADMIN_KEY = 'rotation-test-admin-key-0123456789';
const PASSWORD = 'correct horse battery staple';
const PREPUBLISH_S = 3600;
const ACCESS_TTL_S = 600;
const SKEW_S = 30; // the in-process verifier's clock_skew_seconds for the token module

interface KeyView {
  kid: string;
  state: string;
  activatesAt: string;
  retiresAt: string | null;
}

function sidecarHttp(sidecar: Sidecar) {
  const base = `http://127.0.0.1:${sidecar.server.httpPort}`;
  const admin = `http://127.0.0.1:${sidecar.server.adminPort}`;
  const bearer = { authorization: `Bearer ${ADMIN_KEY}` };
  return {
    async login(username: string): Promise<Record<string, string>> {
      const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }) });
      expect(res.status).toBe(200);
      return (await res.json()) as Record<string, string>;
    },
    async jwksKids(): Promise<string[]> {
      const res = await fetch(`${base}/jwks.json`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();
    },
    async keys(): Promise<KeyView[]> {
      const res = await fetch(`${admin}/admin/keys`, { headers: bearer });
      expect(res.status).toBe(200);
      return ((await res.json()) as { keys: KeyView[] }).keys;
    },
    async rotate(immediate = false): Promise<{ rotated: string; activates_at: string; keys: KeyView[] }> {
      const res = await fetch(`${admin}/admin/keys/rotate${immediate ? '?immediate=true' : ''}`, { method: 'POST', headers: bearer });
      expect(res.status).toBe(200);
      return (await res.json()) as { rotated: string; activates_at: string; keys: KeyView[] };
    },
    async audit(type: string): Promise<Array<Record<string, unknown>>> {
      const res = await fetch(`${admin}/admin/audit?kind=${type}`, { headers: bearer });
      expect(res.status).toBe(200);
      return ((await res.json()) as { events: Array<Record<string, unknown>> }).events;
    },
    async refresh(refreshToken: string): Promise<{ status: number; body: Record<string, string>; cacheControl: string | null }> {
      const res = await fetch(`${base}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'portcullis-login' }).toString(),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string>, cacheControl: res.headers.get('cache-control') };
    },
    admin,
  };
}

const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid;

async function checkStatus(sidecar: Sidecar, token: string): Promise<number> {
  const res: CheckResponse = await sidecar.client.check(httpCheckRequest('GET', '/documents/d1', { authorization: `Bearer ${token}` }));
  if (res.httpResponse.case === 'okResponse') return 200;
  if (res.httpResponse.case === 'deniedResponse') return res.httpResponse.value.status?.code ?? 403;
  return -1;
}

describe('signing key rotation with prepublication', () => {
  const clock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  let sidecar: Sidecar;
  let http: ReturnType<typeof sidecarHttp>;
  let oldKid: string;
  let newKid: string;
  let activatesAt: number;
  /** Signed by the old key five minutes, and ten seconds, before the new one activates. */
  let earlyOldToken: string;
  let lastOldToken: string;

  beforeAll(async () => {
    sidecar = await startSidecar(
      {
        admin: { api_key: ADMIN_KEY },
        token_module: { key_rotation: { prepublish_seconds: PREPUBLISH_S }, access_token_ttl_seconds: ACCESS_TTL_S, id_token_ttl_seconds: 300, rate_limit: { login_per_minute: 0 } },
      },
      clock,
    );
    http = sidecarHttp(sidecar);
    await addUser(sidecar.server.tokens!.ctx, { username: 'vic', password: PASSWORD, roles: ['viewer'] });
  });

  afterAll(async () => {
    await sidecar?.close();
  });

  it('refuses /admin/keys and /admin/keys/rotate without the admin key (401), and rotates nothing', async () => {
    const before = await http.keys();
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-key-wrong-key-wrong' }, { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` }, { authorization: ADMIN_KEY }];
    for (const headers of attempts) {
      const list = await fetch(`${http.admin}/admin/keys`, { headers });
      expect(list.status).toBe(401);
      expect(list.headers.get('www-authenticate')).toBe('Bearer realm="portcullis-admin"');
      expect(await list.json()).toEqual({ error: 'unauthorized' });
      const rotate = await fetch(`${http.admin}/admin/keys/rotate?immediate=true`, { method: 'POST', headers });
      expect(rotate.status).toBe(401);
    }
    expect(await http.keys()).toEqual(before);
    expect(await metricValue(sidecar.metrics, 'auth_key_rotation_total')).toBe(0);
    // Basic auth with the key as password is the documented alternative.
    const basic = await fetch(`${http.admin}/admin/keys`, { headers: { authorization: `Basic ${Buffer.from(`any:${ADMIN_KEY}`).toString('base64')}` } });
    expect(basic.status).toBe(200);
  });

  it('publishes the new key in /jwks.json at once while tokens are still signed by the old kid', async () => {
    const [first] = await http.keys();
    expect(first).toMatchObject({ state: 'active', retiresAt: null });
    oldKid = first!.kid;
    expect(await http.jwksKids()).toEqual([oldKid]);
    expect(kidOf((await http.login('vic')).access_token!)).toBe(oldKid);

    const rotated = await http.rotate();
    newKid = rotated.rotated;
    activatesAt = clock.now() + PREPUBLISH_S * 1000;
    expect(newKid).not.toBe(oldKid);
    expect(rotated.activates_at).toBe(new Date(activatesAt).toISOString());
    expect(await http.jwksKids()).toEqual([oldKid, newKid].sort());

    const tokens = await http.login('vic');
    expect(kidOf(tokens.access_token!)).toBe(oldKid);
    expect(kidOf(tokens.id_token!)).toBe(oldKid);
    const states = Object.fromEntries((await http.keys()).map((k) => [k.kid, k]));
    expect(states[oldKid]).toMatchObject({ state: 'active', retiresAt: new Date(activatesAt + ACCESS_TTL_S * 1000).toISOString() });
    expect(states[newKid]).toMatchObject({ state: 'pending', activatesAt: new Date(activatesAt).toISOString(), retiresAt: null });
  });

  it('counts the rotation in auth_key_rotation_total and audits it as key.rotated', async () => {
    expect(await metricValue(sidecar.metrics, 'auth_key_rotation_total', { trigger: 'admin' })).toBe(1);
    const events = await http.audit('key.rotated');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'key.rotated', outcome: 'success', actor: null, details: { trigger: 'admin', kid: newKid, activates_at: new Date(activatesAt).toISOString(), immediate: false } });
  });

  it('signs with the new kid after the prepublish time, and the ext_authz Check accepts those tokens', async () => {
    clock.set(activatesAt - 300_000);
    earlyOldToken = (await http.login('vic')).access_token!;
    clock.set(activatesAt - 10_000);
    lastOldToken = (await http.login('vic')).access_token!;
    expect([kidOf(earlyOldToken), kidOf(lastOldToken)]).toEqual([oldKid, oldKid]);
    clock.set(activatesAt);
    const fresh = (await http.login('vic')).access_token!;
    expect(kidOf(fresh)).toBe(newKid);
    expect(await checkStatus(sidecar, fresh)).toBe(200);
    const states = Object.fromEntries((await http.keys()).map((k) => [k.kid, k.state]));
    expect(states).toEqual({ [oldKid]: 'previous', [newKid]: 'active' });
  });

  it('keeps accepting tokens signed by the old key until they expire', async () => {
    const earlyExp = decodeJwt(earlyOldToken).exp! * 1000;
    const lastExp = decodeJwt(lastOldToken).exp! * 1000;
    expect(lastExp).toBe(activatesAt - 10_000 + ACCESS_TTL_S * 1000);
    clock.set(activatesAt + 1000);
    expect(await checkStatus(sidecar, earlyOldToken)).toBe(200);
    expect(await checkStatus(sidecar, lastOldToken)).toBe(200);
    clock.set(earlyExp - 1000);
    expect(await checkStatus(sidecar, earlyOldToken)).toBe(200);
    // Past its expiry (and the verifier's skew) while the old key is still published: refused
    // for being expired, not for its key.
    clock.set(earlyExp + (SKEW_S + 1) * 1000);
    expect(await http.jwksKids()).toContain(oldKid);
    expect(await checkStatus(sidecar, earlyOldToken)).toBe(401);
    expect(await checkStatus(sidecar, lastOldToken)).toBe(200);
    clock.set(lastExp - 1000);
    expect(await checkStatus(sidecar, lastOldToken)).toBe(200);
  });

  it('removes the old key from /jwks.json at its retirement time', async () => {
    const retiresAt = activatesAt + ACCESS_TTL_S * 1000;
    clock.set(retiresAt - 1000);
    expect(await http.jwksKids()).toEqual([oldKid, newKid].sort());
    clock.set(retiresAt);
    expect(await http.jwksKids()).toEqual([newKid]);
    expect(await checkStatus(sidecar, lastOldToken)).toBe(401);
    const states = Object.fromEntries((await http.keys()).map((k) => [k.kid, k.state]));
    expect(states).toEqual({ [oldKid]: 'retired', [newKid]: 'active' });
  });

  it('with ?immediate=true signs with the new key at once and keeps the superseded key published for one token lifetime', async () => {
    const before = (await http.login('vic')).access_token!;
    expect(kidOf(before)).toBe(newKid);
    const rotated = await http.rotate(true);
    expect(rotated.activates_at).toBe(new Date(clock.now()).toISOString());
    const after = (await http.login('vic')).access_token!;
    expect(kidOf(after)).toBe(rotated.rotated);
    expect(await checkStatus(sidecar, after)).toBe(200);
    expect(await checkStatus(sidecar, before)).toBe(200); // still published
    expect(await http.jwksKids()).toEqual([newKid, rotated.rotated].sort());
    expect(await metricValue(sidecar.metrics, 'auth_key_rotation_total', { trigger: 'admin' })).toBe(2);
    expect((await http.audit('key.rotated'))[0]).toMatchObject({ details: { kid: rotated.rotated, immediate: true } });
    clock.advance(ACCESS_TTL_S * 1000);
    expect(await http.jwksKids()).toEqual([rotated.rotated]);
  });
});

describe('refresh-token family lifetimes', () => {
  const IDLE_S = 600;
  const ABSOLUTE_S = 1500;
  const clock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  let sidecar: Sidecar;
  let http: ReturnType<typeof sidecarHttp>;

  beforeAll(async () => {
    sidecar = await startSidecar({ admin: { api_key: ADMIN_KEY }, token_module: { refresh_token_idle_seconds: IDLE_S, refresh_token_absolute_seconds: ABSOLUTE_S, rate_limit: { login_per_minute: 0 } } }, clock);
    http = sidecarHttp(sidecar);
    await addUser(sidecar.server.tokens!.ctx, { username: 'ria', password: PASSWORD, roles: ['viewer'] });
  });

  afterAll(async () => {
    await sidecar?.close();
  });

  it('expires a refresh token left unused for refresh_token_idle_seconds (invalid_grant)', async () => {
    const first = await http.login('ria');
    clock.advance((IDLE_S - 1) * 1000);
    const used = await http.refresh(first.refresh_token!);
    expect(used.status).toBe(200);
    expect(used.cacheControl).toBe('no-store');
    expect(used.body.refresh_token).not.toBe(first.refresh_token);
    expect(await checkStatus(sidecar, used.body.access_token!)).toBe(200);
    clock.advance(IDLE_S * 1000);
    const idle = await http.refresh(used.body.refresh_token!);
    expect(idle.status).toBe(400);
    expect(idle.cacheControl).toBe('no-store');
    expect(idle.body.error).toBe('invalid_grant');
  });

  it('ends a family at refresh_token_absolute_seconds however recently it was refreshed (invalid_grant)', async () => {
    const start = clock.now();
    let token = (await http.login('ria')).refresh_token!;
    for (const at of [400, 800, 1200, ABSOLUTE_S - 1]) {
      clock.set(start + at * 1000);
      const r = await http.refresh(token);
      expect(r.status, `refresh at +${at}s`).toBe(200);
      expect(r.body.refresh_token).not.toBe(token);
      token = r.body.refresh_token!;
    }
    clock.set(start + (ABSOLUTE_S + 1) * 1000); // two seconds after the last refresh, far inside the idle window
    const ended = await http.refresh(token);
    expect(ended.status).toBe(400);
    expect(ended.body.error).toBe('invalid_grant');
    const failures = await http.audit('token.issued');
    expect(failures[0]).toMatchObject({ outcome: 'failure', details: { grant_type: 'refresh_token' }, reason: expect.stringMatching(/^refresh_(family_expired|token_idle_expired)$/) });
  });
});

describe('scheduled rotation', () => {
  const clock = createManualClock();
  let sidecar: Sidecar;

  beforeAll(async () => {
    sidecar = await startSidecar({ admin: { api_key: ADMIN_KEY }, token_module: { key_rotation: { interval_seconds: 86400, prepublish_seconds: 600 } } }, clock);
  });
  afterAll(() => sidecar.close());

  it('rotates once the newest key is older than interval_seconds, counted with trigger "schedule" and audited', async () => {
    const tokens = sidecar.server.tokens!;
    const before = tokens.keyring.states().map((k) => k.kid);
    await tokens.maintain();
    expect(tokens.keyring.states().map((k) => k.kid)).toEqual(before);
    clock.advance(86400 * 1000);
    await tokens.maintain();
    const after = tokens.keyring.states();
    expect(after).toHaveLength(2);
    expect(after[1]).toMatchObject({ state: 'pending', activatesAt: clock.now() + 600_000 });
    expect(await metricValue(sidecar.metrics, 'auth_key_rotation_total', { trigger: 'schedule' })).toBe(1);
    expect((await sidecarHttp(sidecar).audit('key.rotated'))[0]).toMatchObject({ details: { trigger: 'schedule', kid: after[1]!.kid } });
    await tokens.maintain();
    expect(tokens.keyring.states()).toHaveLength(2); // not due again until the new key is a day old
  });
});
