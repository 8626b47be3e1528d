import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { generate } from 'otplib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addClient } from '../../src/issuer/clients.js';
import { addUser, enrollTotp } from '../../src/issuer/users.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';

/**
 * The server-rendered login pages driven by a real browser (Debian's Chromium through
 * playwright-core): login → (MFA) → (consent) → 303 to the client's redirect URI, which is a tiny
 * HTTP server of this test. Everything runs on 127.0.0.1.
 */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser login tests skipped: chromium not found at ${CHROMIUM}; install the Debian package chromium (.ci/run does)`);

const PASSWORD = 'correct horse battery staple';
const SCOPES = ['openid', 'profile', 'documents:read'];
const TIMEOUT = 30_000;

/** The client's redirect URI: records every query it receives and answers 200 'ok'. */
interface Callback {
  server: Server;
  uri: string;
  received: URLSearchParams[];
}

async function startCallback(): Promise<Callback> {
  const received: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/callback') received.push(url.searchParams);
    res.writeHead(url.pathname === '/callback' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(url.pathname === '/callback' ? 'ok' : 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, uri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, received };
}

/** What a page did that a script-free page never should: console errors, uncaught errors, CSP violations. */
interface Watch {
  consoleErrors: string[];
  pageErrors: string[];
  cspViolations: string[];
}

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

describe.skipIf(!haveChromium)('browser login through the server-rendered pages (Chromium)', () => {
  let sidecar: Sidecar;
  let callback: Callback;
  let browser: Browser;
  let issuer: string;
  let context: BrowserContext | undefined;

  const FIRST_PARTY = 'web-first-party';
  const THIRD_PARTY = 'web-third-party';

  beforeAll(async () => {
    callback = await startCallback();
    sidecar = await startSidecar({});
    const ctx = sidecar.server.tokens!.ctx;
    issuer = ctx.issuer();
    for (const [clientId, firstParty] of [[FIRST_PARTY, true], [THIRD_PARTY, false]] as const) {
      await addClient(ctx, {
        clientId,
        name: firstParty ? 'Portcullis Console' : 'Partner App',
        type: 'public',
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: [callback.uri],
        scopes: SCOPES,
        roles: [],
        firstParty,
      });
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterEach(async () => {
    await context?.close();
    context = undefined;
  });

  afterAll(async () => {
    await browser?.close();
    await sidecar?.close();
    await new Promise<void>((resolve) => (callback ? callback.server.close(() => resolve()) : resolve()));
  });

  /** A fresh browser context and page, with console, page errors and CSP issues recorded. */
  async function openPage(): Promise<{ page: Page; watch: Watch }> {
    context = await browser.newContext();
    const page = await context.newPage();
    const watch: Watch = { consoleErrors: [], pageErrors: [], cspViolations: [] };
    page.on('console', (m) => {
      // The browser's own favicon probe (a 404 on both servers) is not something the page asked for.
      if (new URL(m.location().url || 'about:blank').pathname === '/favicon.ico') return;
      if (m.type() === 'error' || m.type() === 'warning') watch.consoleErrors.push(`${m.type()}: ${m.text()} (${m.location().url})`);
      if (/Content Security Policy/i.test(m.text())) watch.cspViolations.push(m.text());
    });
    page.on('pageerror', (e) => watch.pageErrors.push(e.message));
    const cdp = await context.newCDPSession(page);
    cdp.on('Audits.issueAdded', ({ issue }) => {
      if (issue.code === 'ContentSecurityPolicyIssue') watch.cspViolations.push(JSON.stringify(issue.details.contentSecurityPolicyIssueDetails));
    });
    await cdp.send('Audits.enable');
    return { page, watch };
  }

  async function newUser(prefix: string, mfa = false): Promise<{ username: string; id: string; secret?: string }> {
    const ctx = sidecar.server.tokens!.ctx;
    const username = `${prefix}-${randomBytes(4).toString('hex')}`;
    const user = await addUser(ctx, { username, password: PASSWORD, roles: ['viewer'] });
    if (!mfa) return { username, id: user.id };
    const { secret } = await enrollTotp(ctx, username, 'Portcullis');
    return { username, id: user.id, secret };
  }

  function authorizeUrl(clientId: string, state: string, challenge: string): string {
    const url = new URL('/oauth2/authorize', issuer);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: callback.uri,
      scope: SCOPES.join(' '),
      state,
      nonce: randomBytes(8).toString('hex'),
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    return url.toString();
  }

  /**
   * Waits for the browser to land on the redirect URI and returns the query the callback server
   * received. When it does not (e.g. Chromium blocks the 303 under the page's CSP form-action),
   * the failure says what the browser reported.
   */
  async function landed(page: Page, watch: Watch, state: string): Promise<URLSearchParams> {
    try {
      await page.waitForURL((u) => u.href.startsWith(callback.uri), { timeout: 10_000 });
    } catch (err) {
      throw new Error(`the browser did not reach ${callback.uri} (still at ${page.url()}); CSP violations: ${JSON.stringify(watch.cspViolations)}; console: ${JSON.stringify(watch.consoleErrors)}`, { cause: err });
    }
    expect(await page.locator('body').innerText()).toBe('ok');
    const query = callback.received.find((q) => q.get('state') === state);
    expect(query, `the redirect server received state=${state}`).toBeDefined();
    return query!;
  }

  async function signIn(page: Page, username: string, password: string): Promise<void> {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    // noWaitAfter: a submission the browser blocks must fail in landed() with its reason, not hang here.
    await page.getByRole('button', { name: 'Sign in' }).click({ noWaitAfter: true });
  }

  async function exchange(clientId: string, code: string, verifier: string): Promise<Response> {
    return fetch(new URL('/oauth2/token', issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: callback.uri, client_id: clientId, code_verifier: verifier }),
    });
  }

  function expectClean(watch: Watch): void {
    expect(watch.cspViolations).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    expect(watch.consoleErrors).toEqual([]);
  }

  it('signs a password-only user in to a first-party client and redirects with a real code, the state and iss', { timeout: TIMEOUT }, async () => {
    const user = await newUser('alice');
    const { page, watch } = await openPage();
    const { verifier, challenge } = pkce();
    const state = randomBytes(12).toString('base64url');

    const login = await page.goto(authorizeUrl(FIRST_PARTY, state, challenge));
    expect(login?.status()).toBe(200);
    await expect(page.title()).resolves.toBe('Sign in · Portcullis');
    await signIn(page, user.username, PASSWORD);

    const query = await landed(page, watch, state);
    expect(query.get('iss')).toBe(issuer);
    expect(query.get('error')).toBeNull();
    const code = query.get('code');
    expect(code).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    const res = await exchange(FIRST_PARTY, code!, verifier);
    expect(res.status).toBe(200);
    const tokens = (await res.json()) as { access_token: string; token_type: string; id_token?: string };
    expect(tokens.token_type).toMatch(/^bearer$/i);
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL('/jwks.json', issuer)), { issuer });
    expect(payload).toMatchObject({ sub: user.id, client_id: FIRST_PARTY, scope: SCOPES.join(' '), amr: ['pwd'] });
    expect(tokens.id_token).toBeTruthy();
    // A code is single use.
    const again = await exchange(FIRST_PARTY, code!, verifier);
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });

    expectClean(watch);
  });

  it('takes an MFA user of a third-party client through the MFA and consent pages', { timeout: TIMEOUT }, async () => {
    const user = await newUser('mallory-mfa', true);
    const { page, watch } = await openPage();
    const { verifier, challenge } = pkce();
    const state = randomBytes(12).toString('base64url');

    await page.goto(authorizeUrl(THIRD_PARTY, state, challenge));
    await signIn(page, user.username, PASSWORD);

    await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/interaction/login');
    await page.getByLabel('Verification code').fill(await generate({ secret: user.secret! }));
    await page.getByRole('button', { name: 'Verify' }).click();

    await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/interaction/mfa');
    await expect(page.getByText('Partner App').isVisible()).resolves.toBe(true);
    const permissions = page.getByRole('list', { name: 'Requested permissions' }).getByRole('listitem');
    expect(await permissions.allInnerTexts()).toEqual(SCOPES);
    await page.getByRole('button', { name: 'Allow' }).click({ noWaitAfter: true });

    const query = await landed(page, watch, state);
    expect(query.get('iss')).toBe(issuer);
    const code = query.get('code');
    expect(code).toBeTruthy();
    const res = await exchange(THIRD_PARTY, code!, verifier);
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    const { payload } = await jwtVerify(access_token, createRemoteJWKSet(new URL('/jwks.json', issuer)), { issuer });
    expect(payload).toMatchObject({ sub: user.id, client_id: THIRD_PARTY });
    expect(payload.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));

    expectClean(watch);
  });

  it('shows an accessible error for a wrong password and stays on the login page', { timeout: TIMEOUT }, async () => {
    const user = await newUser('bob');
    const { page, watch } = await openPage();
    const { verifier, challenge } = pkce();
    const state = randomBytes(12).toString('base64url');

    await page.goto(authorizeUrl(FIRST_PARTY, state, challenge));
    const failed = page.waitForResponse((r) => r.url().endsWith('/interaction/login'));
    await signIn(page, user.username, 'not the password');
    expect((await failed).status()).toBe(401);

    const alert = page.getByRole('alert');
    await expect(alert.innerText()).resolves.toBe('The username or password is incorrect.');
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    await expect(page.getByLabel('Password').getAttribute('aria-describedby')).resolves.toBe('form-error');
    expect(new URL(page.url()).origin).toBe(issuer);
    expect(callback.received.find((q) => q.get('state') === state)).toBeUndefined();

    // The same page still works: the right password goes through.
    await signIn(page, user.username, PASSWORD);
    const query = await landed(page, watch, state);
    expect(query.get('code')).toBeTruthy();
    expect((await exchange(FIRST_PARTY, query.get('code')!, verifier)).status).toBe(200);

    expect(watch.cspViolations).toEqual([]);
    expect(watch.pageErrors).toEqual([]);
    // Chromium reports the 401 document itself as a failed load; nothing else may appear.
    expect(watch.consoleErrors.filter((m) => !/^error: Failed to load resource: the server responded with a status of 401 .*\/interaction\/login\)$/.test(m))).toEqual([]);
  });

  it("redirects with error=access_denied when the user chooses 'Deny' on the consent page", { timeout: TIMEOUT }, async () => {
    const user = await newUser('dora');
    const { page, watch } = await openPage();
    const { challenge } = pkce();
    const state = randomBytes(12).toString('base64url');

    await page.goto(authorizeUrl(THIRD_PARTY, state, challenge));
    await signIn(page, user.username, PASSWORD);
    await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
    await page.getByRole('button', { name: 'Deny' }).click({ noWaitAfter: true });

    const query = await landed(page, watch, state);
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('code')).toBeNull();
    expect(query.get('iss')).toBe(issuer);

    expectClean(watch);
  });

  it('serves script-free, labelled pages under a CSP without script-src', { timeout: TIMEOUT }, async () => {
    const user = await newUser('erin-mfa', true);
    const { page, watch } = await openPage();
    const { challenge } = pkce();
    const state = randomBytes(12).toString('base64url');

    const checkPage = async (csp: string | undefined) => {
      expect(csp).toBeDefined();
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toMatch(/script-src/);
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      expect(await page.locator('script').count()).toBe(0);
      const inputs = await page.locator('input').evaluateAll((els) =>
        // (no DOM lib in this tsconfig: the input elements, structurally)
        (els as unknown as Array<{ name: string; type: string; labels: ArrayLike<{ textContent: string | null }> | null }>).map((e) => ({
          name: e.name,
          type: e.type,
          labels: Array.from(e.labels ?? []).map((l) => l.textContent?.trim() ?? ''),
        })),
      );
      expect(inputs.length).toBeGreaterThan(0);
      for (const input of inputs) {
        if (input.type === 'hidden') continue;
        expect(input.labels, `input ${input.name} has a label`).toHaveLength(1);
        expect(input.labels[0]).not.toBe('');
      }
    };

    const login = await page.goto(authorizeUrl(THIRD_PARTY, state, challenge));
    await checkPage(login?.headers()['content-security-policy']);
    expect(await page.locator('input:not([type=hidden])').evaluateAll((els) => els.map((e) => e.id))).toEqual(['username', 'password']);

    const mfa = page.waitForResponse((r) => r.url().endsWith('/interaction/login'));
    await signIn(page, user.username, PASSWORD);
    const mfaCsp = (await mfa).headers()['content-security-policy'];
    await page.getByLabel('Verification code').waitFor();
    await checkPage(mfaCsp);
    expect(await page.getByLabel('Verification code').getAttribute('autocomplete')).toBe('one-time-code');

    // The stylesheet is the only subresource and it loads under the CSP.
    const css = await page.request.get(new URL('/static/portcullis.css', issuer).toString());
    expect(css.status()).toBe(200);

    expectClean(watch);
  });
});
