import { decodeJwt } from 'jose';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { httpCheckRequest } from '../../src/extauthz/client.js';
import { addClient } from '../../src/issuer/clients.js';
import type { IssuerContext } from '../../src/issuer/context.js';
import { addUser, enrollTotp, setDisabled } from '../../src/issuer/users.js';
import { createManualClock } from '../../src/lib/clock.js';
import { metricValue, startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * POST /login and POST /login/mfa over real HTTP on loopback, against the real server with a
 * manual clock (TOTP steps, lockout expiry and mfa_token expiry move without sleeping).
 */

const ADMIN_KEY = 'login-test-admin-key-0123456789';
const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 3;
const LOCK_BASE_SECONDS = 60;
const MFA_TOKEN_TTL = 60;
/** Internal failure reasons: they go to metrics and the audit log, never into a response. */
const REASONS = ['user_not_found', 'invalid_password', 'account_disabled', 'account_locked', 'mfa_failed', 'totp_replayed', 'mfa_token_invalid', 'too_many_failures'];

const clock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
let sidecar: Sidecar;
let ctx: IssuerContext;
let base: string;
let admin: string;

beforeAll(async () => {
  sidecar = await startSidecar(
    {
      admin: { api_key: ADMIN_KEY },
      token_module: {
        lockout: { max_failures: MAX_FAILURES, base_seconds: LOCK_BASE_SECONDS, max_seconds: 600 },
        // This file's requests all come from 127.0.0.1; the limit has its own sidecar below.
        rate_limit: { login_per_minute: 0 },
        mfa_token_ttl_seconds: MFA_TOKEN_TTL,
      },
    },
    clock,
  );
  ctx = sidecar.server.tokens!.ctx;
  base = `http://127.0.0.1:${sidecar.server.httpPort}`;
  admin = `http://127.0.0.1:${sidecar.server.adminPort}`;
});

afterAll(async () => {
  await sidecar?.close();
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

async function post(path: string, body: unknown, contentType = 'application/json', port = base): Promise<Reply> {
  const res = await fetch(`${port}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: the assertions on `text` say so
  }
  return { status: res.status, headers: res.headers, text, json };
}

const login = (username: string, password: string, extra: Record<string, unknown> = {}) => post('/login', { username, password, ...extra });
const loginMfa = (mfaToken: string, code: string) => post('/login/mfa', { mfa_token: mfaToken, code });

async function audit(query = 'limit=1000'): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${admin}/admin/audit?${query}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { events: Array<Record<string, unknown>> }).events;
}

const failures = (method: string, reason: string) => metricValue(sidecar.metrics, 'auth_login_failures_total', { method, reason });
const epoch = (offsetSeconds = 0) => Math.floor(clock.now() / 1000) + offsetSeconds;
const totp = (secret: string, offsetSeconds = 0) => generate({ secret, epoch: epoch(offsetSeconds) });

/** A six-digit code that is none of the codes accepted around now (±1 step). */
async function wrongCode(secret: string): Promise<string> {
  const valid = new Set([await totp(secret, -30), await totp(secret), await totp(secret, 30)]);
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

function expectNoReason(r: Reply): void {
  for (const reason of REASONS) expect(r.text).not.toContain(reason);
}

/** The byte-level answer a client sees for a failed login: status, body and the headers that matter. */
const visible = (r: Reply) => ({ status: r.status, body: r.text, contentType: r.headers.get('content-type'), cacheControl: r.headers.get('cache-control'), pragma: r.headers.get('pragma'), length: r.headers.get('content-length') });

async function check(method: string, path: string, token?: string): Promise<CheckResponse> {
  return sidecar.client.check(httpCheckRequest(method, path, token ? { authorization: `Bearer ${token}` } : {}));
}

const checkStatus = (res: CheckResponse) => (res.httpResponse.case === 'okResponse' ? 200 : res.httpResponse.case === 'deniedResponse' ? (res.httpResponse.value.status?.code ?? 403) : -1);

function upstreamHeader(res: CheckResponse, name: string): string | undefined {
  if (res.httpResponse.case !== 'okResponse') return undefined;
  return res.httpResponse.value.headers.find((h) => h.header?.key === name)?.header?.value;
}

describe('password login without MFA', () => {
  it('returns no-store tokens that the ext_authz Check accepts with the user id and roles', async () => {
    const user = await addUser(ctx, { username: 'vic', password: PASSWORD, roles: ['viewer'] });
    const r = await login('vic', PASSWORD);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'openid profile email offline_access' });
    expect(r.json.refresh_token).toEqual(expect.any(String));
    expect(r.json.id_token).toEqual(expect.any(String));
    const access = String(r.json.access_token);
    const claims = decodeJwt(access);
    expect(claims).toMatchObject({ sub: user.id, iss: sidecar.server.issuer, aud: 'portcullis', client_id: 'portcullis-login', roles: ['viewer'], amr: ['pwd'] });

    const allowed = await check('GET', '/documents/d1', access);
    expect(checkStatus(allowed)).toBe(200);
    expect(upstreamHeader(allowed, 'x-portcullis-subject')).toBe(user.id);
    expect(upstreamHeader(allowed, 'x-portcullis-roles')).toBe('viewer');
    expect(checkStatus(await check('PUT', '/documents/d1', access))).toBe(403); // a viewer may not update
    expect(checkStatus(await check('GET', '/documents/d1'))).toBe(401);
    const [h, p, s] = access.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')}.${s}`;
    expect(p).not.toBe(forged.split('.')[1]);
    expect(checkStatus(await check('GET', '/documents/d1', forged))).toBe(401);
  });

  it('refuses /login for a client that is not first-party, before looking at the password', async () => {
    await addClient(ctx, { clientId: 'third-party', type: 'public', grantTypes: ['authorization_code'], redirectUris: ['https://app.example/cb'], scopes: ['openid'], roles: [], firstParty: false });
    const attempts = await metricValue(sidecar.metrics, 'auth_login_attempts_total');
    const r = await login('vic', PASSWORD, { client_id: 'third-party' });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('unauthorized_client');
    expect(await metricValue(sidecar.metrics, 'auth_login_attempts_total')).toBe(attempts);
  });
});

  it("writes a login's two audit rows in one group commit, both committed before the answer", async () => {
    const user = await addUser(ctx, { username: 'grace', password: PASSWORD, roles: ['viewer'] });
    const audit = ctx.store.audit as { append: typeof ctx.store.audit.append };
    const append = audit.append;
    const rows: Array<{ type: string; actor: string | null; uncommittedBefore: string[]; committed: boolean }> = [];
    audit.append = (event) => {
      const row = { type: event.type, actor: event.actor, uncommittedBefore: rows.filter((r) => !r.committed).map((r) => r.type), committed: false };
      rows.push(row);
      const written = append(event);
      void written.then(() => (row.committed = true));
      return written;
    };
    try {
      expect((await login('grace', PASSWORD)).status).toBe(200);
    } finally {
      audit.append = append;
    }
    const own = rows.filter((r) => r.actor === ctx.audit.userRef(user.id));
    expect(own.map((r) => r.type)).toEqual(['login.password', 'token.issued']);
    // The password step's row was still pending when the issuance row joined it: one transaction.
    expect(own[1]!.uncommittedBefore).toContain('login.password');
    expect(own.every((r) => r.committed)).toBe(true);
  });

describe('failed logins look the same whatever the cause', () => {
  it('answers unknown user, wrong password, disabled and locked accounts with byte-identical status, body and no-store', async () => {
    await addUser(ctx, { username: 'same-wrong', password: PASSWORD, roles: [] });
    await addUser(ctx, { username: 'same-disabled', password: PASSWORD, roles: [] });
    await setDisabled(ctx, 'same-disabled', true);
    await addUser(ctx, { username: 'same-locked', password: PASSWORD, roles: [] });
    for (let i = 0; i < MAX_FAILURES; i++) expect((await login('same-locked', 'not the password')).status).toBe(401);

    const before = Object.fromEntries(await Promise.all(['user_not_found', 'invalid_password', 'account_disabled', 'account_locked'].map(async (r) => [r, await failures('password', r)] as const)));
    const unknown = await login('same-nobody', PASSWORD);
    const wrong = await login('same-wrong', 'not the password');
    const disabled = await login('same-disabled', PASSWORD); // the right password
    const locked = await login('same-locked', PASSWORD); // the right password

    expect(visible(unknown)).toEqual({
      status: 401,
      body: JSON.stringify({ error: 'invalid_credentials', error_description: 'the username or password is incorrect' }),
      contentType: 'application/json; charset=utf-8',
      cacheControl: 'no-store',
      pragma: 'no-cache',
      length: expect.any(String),
    });
    for (const other of [wrong, disabled, locked]) {
      expect(visible(other)).toEqual(visible(unknown));
      expectNoReason(other);
    }
    expectNoReason(unknown);
    // Every header a client can read is the same (only Date may differ between two answers).
    const headerNames = (r: Reply) => [...r.headers.keys()].filter((k) => k !== 'date').sort();
    for (const other of [wrong, disabled, locked]) expect(headerNames(other)).toEqual(headerNames(unknown));

    // The distinct causes are visible to operators only.
    for (const reason of ['user_not_found', 'invalid_password', 'account_disabled', 'account_locked']) {
      expect(await failures('password', reason), reason).toBe(before[reason]! + 1);
    }
  });

  it('does the argon2id work for unknown users too (timing does not reveal which usernames exist)', async () => {
    const user = await addUser(ctx, { username: 'timing-known', password: PASSWORD, roles: [] });
    const timed = async (username: string) => {
      const t0 = performance.now();
      const r = await login(username, 'not the password');
      const ms = performance.now() - t0;
      expect(r.status).toBe(401);
      return ms;
    };
    await timed('timing-unknown'); // warm-up
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 6; i++) {
      unknown.push(await timed(`timing-unknown-${i}`));
      wrong.push(await timed('timing-known'));
      await ctx.store.users.resetFailures(user.id); // keep the known account below the lockout threshold
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return (s[2]! + s[3]!) / 2;
    };
    // A loose bound on purpose. A wrong password costs one argon2id verification (19 MiB, 2
    // passes: tens of milliseconds); an unknown user that skipped the dummy verification would
    // answer in about a millisecond, far under 0.3x. Requiring near-equality would make the test
    // flaky on a loaded CI machine (other test files run in parallel and compete for CPU), so it
    // only proves that the unknown-user path does comparable hashing work, not constant time.
    expect(median(unknown)).toBeGreaterThanOrEqual(0.3 * median(wrong));
  });
});

describe('account lockout', () => {
  it(`locks an account after ${MAX_FAILURES} failures, refusing even the right password until the lock expires`, async () => {
    const user = await addUser(ctx, { username: 'lou', password: PASSWORD, roles: ['viewer'] });
    const lockouts = await metricValue(sidecar.metrics, 'auth_login_lockouts_total');
    for (let i = 1; i < MAX_FAILURES; i++) {
      expect((await login('lou', `wrong ${i}`)).status).toBe(401);
      expect(await metricValue(sidecar.metrics, 'auth_login_lockouts_total')).toBe(lockouts);
    }
    expect((await login('lou', 'wrong again')).status).toBe(401);
    expect(await metricValue(sidecar.metrics, 'auth_login_lockouts_total')).toBe(lockouts + 1);
    const stored = await ctx.store.users.byId(user.id);
    expect(stored?.lockedUntil).toBe(clock.now() + LOCK_BASE_SECONDS * 1000);

    const lockedAnswer = await login('lou', PASSWORD);
    expect(lockedAnswer.status).toBe(401);
    expect(lockedAnswer.json).toEqual({ error: 'invalid_credentials', error_description: 'the username or password is incorrect' });
    clock.advance((LOCK_BASE_SECONDS - 1) * 1000);
    expect((await login('lou', PASSWORD)).status).toBe(401); // one second before the lock ends
    clock.advance(1000);
    const ok = await login('lou', PASSWORD);
    expect(ok.status).toBe(200);
    expect(ok.json.access_token).toEqual(expect.any(String));
    expect((await ctx.store.users.byId(user.id))?.failedLogins).toBe(0);

    const locked = (await audit('kind=account.locked')).filter((e) => e.actor === ctx.audit.userRef(user.id));
    expect(locked).toHaveLength(1);
    expect(locked[0]).toMatchObject({ outcome: 'failure', reason: 'too_many_failures', details: { failures: MAX_FAILURES } });
  });
});

describe('account lockout under concurrent guesses', () => {
  it(`verifies at most ${MAX_FAILURES} passwords of a burst of parallel guesses; the rest are refused as locked`, async () => {
    const user = await addUser(ctx, { username: 'burst', password: PASSWORD, roles: [] });
    const verified = await failures('password', 'invalid_password');
    const locked = await failures('password', 'account_locked');
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => login('burst', `guess ${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(401));
    // The lockout bounds how many guesses an attacker gets: sending them at once must not
    // multiply that bound (each password check is what the lock exists to ration).
    expect(await failures('password', 'invalid_password')).toBe(verified + MAX_FAILURES);
    expect(await failures('password', 'account_locked')).toBe(locked + 10 - MAX_FAILURES);
    expect((await ctx.store.users.byId(user.id))?.lockedUntil).not.toBeNull();
  });
});

describe('account lockout back-off', () => {
  it('locks again for twice as long on the next failure after a lock expires, and counts and audits every lock', async () => {
    const user = await addUser(ctx, { username: 'relock', password: PASSWORD, roles: [] });
    const lockouts = await metricValue(sidecar.metrics, 'auth_login_lockouts_total');
    for (let i = 0; i < MAX_FAILURES; i++) await login('relock', 'not the password');
    expect((await ctx.store.users.byId(user.id))?.lockedUntil).toBe(clock.now() + LOCK_BASE_SECONDS * 1000);
    clock.advance(LOCK_BASE_SECONDS * 1000);
    expect((await login('relock', 'still not the password')).status).toBe(401);
    expect((await ctx.store.users.byId(user.id))?.lockedUntil).toBe(clock.now() + 2 * LOCK_BASE_SECONDS * 1000);
    expect((await login('relock', PASSWORD)).status).toBe(401);
    // Each lock is an event operators alert on: a guesser who waits out the first lock and
    // tries again must show up in the metric and the audit trail again.
    expect(await metricValue(sidecar.metrics, 'auth_login_lockouts_total')).toBe(lockouts + 2);
    expect((await audit('kind=account.locked')).filter((e) => e.actor === ctx.audit.userRef(user.id))).toHaveLength(2);
    clock.advance(2 * LOCK_BASE_SECONDS * 1000);
    expect((await login('relock', PASSWORD)).status).toBe(200);
  });
});

describe('per-IP login rate limit', () => {
  it('answers 429 with Retry-After once an IP exceeds login_per_minute, without verifying passwords, and counts it', async () => {
    const limitedClock = createManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const limited = await startSidecar({ token_module: { rate_limit: { login_per_minute: 3 } } }, limitedClock);
    const limitedBase = `http://127.0.0.1:${limited.server.httpPort}`;
    try {
      const attempts = () => metricValue(limited.metrics, 'auth_login_attempts_total');
      for (let i = 0; i < 3; i++) expect((await post('/login', { username: 'nobody', password: PASSWORD }, 'application/json', limitedBase)).status).toBe(401);
      expect(await attempts()).toBe(3);
      limitedClock.advance(20_000);
      const refused = await post('/login', { username: 'nobody', password: PASSWORD }, 'application/json', limitedBase);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('40'); // the window opened 20 s ago
      expect(refused.headers.get('cache-control')).toBe('no-store');
      expect(refused.json).toEqual({ error: 'too_many_requests', error_description: 'too many attempts; try again later' });
      expect(await attempts()).toBe(3); // refused before any password work
      const mfa = await post('/login/mfa', { mfa_token: 'x', code: '123456' }, 'application/json', limitedBase);
      expect(mfa.status).toBe(429); // the second step shares the budget
      expect(await metricValue(limited.metrics, 'auth_login_rate_limited_total')).toBe(2);

      limitedClock.advance(40_000); // the window is over
      expect((await post('/login', { username: 'nobody', password: PASSWORD }, 'application/json', limitedBase)).status).toBe(401);
    } finally {
      await limited.close();
    }
  });
});

describe('login with TOTP', () => {
  let secret: string;
  let backupCodes: string[];
  let userId: string;

  beforeAll(async () => {
    userId = (await addUser(ctx, { username: 'mia', password: PASSWORD, roles: ['admin'] })).id;
    ({ secret, backupCodes } = await enrollTotp(ctx, 'mia', 'Portcullis'));
  });

  async function challenge(): Promise<string> {
    const r = await login('mia', PASSWORD);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json).toEqual({ mfa_required: true, mfa_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), methods: ['totp'] });
    return String(r.json.mfa_token);
  }

  it('asks for the second factor, then issues tokens with amr otp+mfa that satisfy an MFA-only policy', async () => {
    const mfaToken = await challenge();
    const r = await loginMfa(mfaToken, await totp(secret));
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const access = decodeJwt(String(r.json.access_token));
    expect(access.sub).toBe(userId);
    expect(access.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(decodeJwt(String(r.json.id_token)).amr).toEqual(expect.arrayContaining(['otp', 'mfa']));
    // delete-requires-mfa forbids deletion unless the token says MFA: this one may delete.
    expect(checkStatus(await check('DELETE', '/documents/d2', String(r.json.access_token)))).toBe(200);
  });

  it('refuses the same TOTP code a second time, even with a new mfa_token (replay)', async () => {
    clock.advance(30_000);
    const code = await totp(secret);
    expect((await loginMfa(await challenge(), code)).status).toBe(200);
    const replays = await failures('totp', 'totp_replayed');
    const second = await challenge();
    const replay = await loginMfa(second, code);
    expect(replay.status).toBe(401);
    expect(replay.json).toEqual({ error: 'invalid_mfa', error_description: 'the code is incorrect or the MFA token has expired' });
    expectNoReason(replay);
    expect(await failures('totp', 'totp_replayed')).toBe(replays + 1);
    // The code of the previous step is still inside the ±1 window, but older than the one used.
    expect((await loginMfa(second, await totp(secret, -30))).status).toBe(401);
    // The next step's code is fresh: the same mfa_token still works after the refusals.
    clock.advance(30_000);
    expect((await loginMfa(second, await totp(secret))).status).toBe(200);
  });

  it('accepts a backup code once only (amr mfa without otp), ignoring case and the dash', async () => {
    const [first, second] = backupCodes;
    const r = await loginMfa(await challenge(), first!);
    expect(r.status).toBe(200);
    const amr = decodeJwt(String(r.json.access_token)).amr as string[];
    expect(amr).toEqual(expect.arrayContaining(['pwd', 'mfa']));
    expect(amr).not.toContain('otp');
    expect((await loginMfa(await challenge(), first!)).status).toBe(401);
    expect((await loginMfa(await challenge(), second!.replace('-', '').toUpperCase())).status).toBe(200);
  });

  it('spends an mfa_token on success: it cannot be used again, even with a fresh code', async () => {
    clock.advance(30_000);
    const mfaToken = await challenge();
    expect((await loginMfa(mfaToken, await totp(secret))).status).toBe(200);
    clock.advance(30_000);
    const invalid = await failures('totp', 'mfa_token_invalid');
    const again = await loginMfa(mfaToken, await totp(secret));
    expect(again.status).toBe(401);
    expect(again.json.error).toBe('invalid_mfa');
    expect(await failures('totp', 'mfa_token_invalid')).toBe(invalid + 1);
  });

  it(`expires an mfa_token after mfa_token_ttl_seconds (${MFA_TOKEN_TTL} s)`, async () => {
    clock.advance(30_000);
    const mfaToken = await challenge();
    clock.advance(MFA_TOKEN_TTL * 1000);
    const expired = await loginMfa(mfaToken, await totp(secret)); // a valid code for the new time
    expect(expired.status).toBe(401);
    expect(expired.json.error).toBe('invalid_mfa');
    // The code was not spent by the refused attempt: a new challenge accepts it.
    expect((await loginMfa(await challenge(), await totp(secret))).status).toBe(200);
  });

  it('refuses the code of an account disabled after its password was accepted, reported as account_disabled', async () => {
    await addUser(ctx, { username: 'dis-mfa', password: PASSWORD, roles: [] });
    const disSecret = (await enrollTotp(ctx, 'dis-mfa', 'Portcullis')).secret;
    clock.advance(30_000);
    const first = await login('dis-mfa', PASSWORD);
    await setDisabled(ctx, 'dis-mfa', true);
    const disabled = await failures('totp', 'account_disabled');
    const r = await loginMfa(String(first.json.mfa_token), await totp(disSecret));
    expect(r.status).toBe(401);
    expect(r.json.error).toBe('invalid_mfa');
    expectNoReason(r);
    expect(await failures('totp', 'account_disabled')).toBe(disabled + 1);
  });

  it('counts wrong codes towards the account lockout, after which even a right code and password are refused', async () => {
    const wes = await addUser(ctx, { username: 'wes', password: PASSWORD, roles: [] });
    const wesSecret = (await enrollTotp(ctx, 'wes', 'Portcullis')).secret;
    clock.advance(30_000);
    const first = await login('wes', PASSWORD);
    const mfaToken = String(first.json.mfa_token);
    const wrong = await failures('totp', 'mfa_failed');
    const lockouts = await metricValue(sidecar.metrics, 'auth_login_lockouts_total');
    for (let i = 1; i <= MAX_FAILURES; i++) {
      const r = await loginMfa(mfaToken, await wrongCode(wesSecret));
      expect(r.status).toBe(401);
      expect(r.json.error).toBe('invalid_mfa');
      expectNoReason(r);
      expect((await ctx.store.users.byId(wes.id))?.failedLogins).toBe(i);
    }
    expect(await failures('totp', 'mfa_failed')).toBe(wrong + MAX_FAILURES);
    expect(await metricValue(sidecar.metrics, 'auth_login_lockouts_total')).toBe(lockouts + 1);
    expect((await loginMfa(mfaToken, await totp(wesSecret))).status).toBe(401); // right code, locked account
    expect((await login('wes', PASSWORD)).status).toBe(401); // right password, locked account
    clock.advance(LOCK_BASE_SECONDS * 1000);
    const again = await login('wes', PASSWORD);
    expect(again.json.mfa_required).toBe(true);
    expect((await loginMfa(String(again.json.mfa_token), await totp(wesSecret))).status).toBe(200);
    expect((await ctx.store.users.byId(wes.id))?.failedLogins).toBe(0);
  });
});

describe('audit trail', () => {
  // Reads the events the tests above left: every kind of failure, for a dozen accounts.
  it('records every failure reason in GET /admin/audit, with users as keyed hashes and never by name', async () => {
    const events = await audit();
    const reasons = new Set(events.map((e) => `${String(e.kind)}:${String(e.reason)}`));
    for (const r of ['login.password:user_not_found', 'login.password:invalid_password', 'login.password:account_disabled', 'login.password:account_locked', 'login.mfa:mfa_failed', 'login.mfa:totp_replayed', 'account.locked:too_many_failures']) {
      expect(reasons, r).toContain(r);
    }
    const text = JSON.stringify(events);
    const users = await ctx.store.users.list();
    expect(users.length).toBeGreaterThan(5);
    for (const u of users) {
      expect(text).not.toContain(`"${u.username}"`);
      expect(text).not.toContain(u.id);
    }
    for (const unknown of ['same-nobody', 'timing-unknown']) expect(text).not.toContain(unknown);
    expect(text).not.toContain(PASSWORD);
    for (const e of events) if (e.actor !== null) expect(e.actor).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // The actor of a user's events is the keyed hash of its id: stable, so events can be correlated.
    const mia = users.find((u) => u.username === 'mia')!;
    const miaEvents = events.filter((e) => e.actor === ctx.audit.userRef(mia.id));
    expect(miaEvents.map((e) => e.kind)).toEqual(expect.arrayContaining(['login.password', 'login.mfa', 'token.issued', 'admin.mfa_enrolled']));
    // An unknown username leaves a row without an actor at all.
    expect(events.some((e) => e.kind === 'login.password' && e.reason === 'user_not_found' && e.actor === null)).toBe(true);
  });

  it('keeps passwords and codes out of the server logs', async () => {
    const text = JSON.stringify(sidecar.logs);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('not the password');
  });
});

describe('malformed requests', () => {
  const cases: Array<[string, string, string, string?]> = [
    ['/login', 'non-JSON', '{"username": "vic", "password": '],
    ['/login', 'an empty JSON body', ''],
    ['/login', 'a JSON array', '[]'],
    ['/login', 'JSON null', 'null'],
    ['/login', 'a JSON string', '"vic"'],
    ['/login', 'no fields', '{}'],
    ['/login', 'a missing password', '{"username":"vic"}'],
    ['/login', 'a numeric username', '{"username":42,"password":"x"}'],
    ['/login', 'an array password', '{"username":"vic","password":["a","b"]}'],
    ['/login', 'an object username', '{"username":{"$ne":null},"password":"x"}'],
    ['/login', 'an over-long username', JSON.stringify({ username: 'u'.repeat(300), password: 'x' })],
    ['/login', 'a __proto__ key', '{"__proto__":{"admin":true},"username":"vic","password":"x"}'],
    ['/login/mfa', 'non-JSON', 'code=123456'],
    ['/login/mfa', 'no fields', '{}'],
    ['/login/mfa', 'a numeric code', '{"mfa_token":"abc","code":123456}'],
    ['/login/mfa', 'a missing mfa_token', '{"code":"123456"}'],
  ];

  it.each(cases)('%s with %s is a 400 invalid_request JSON answer', async (path, _what, body) => {
    const r = await post(path, body);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json.error).toBe('invalid_request');
    expect(r.json.error_description).toEqual(expect.any(String));
  });

  it('keeps serving after malformed requests, without internal errors', async () => {
    for (const [path, , body] of cases) await post(path, body);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await login('vic', PASSWORD)).status).toBe(200);
    expect(await metricValue(sidecar.metrics, 'auth_oauth_errors_total', { error: 'server_error' })).toBe(0);
  });
});
