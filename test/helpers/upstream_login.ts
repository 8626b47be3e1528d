import * as oidc from 'openid-client';
import { expect } from 'vitest';
import { BrowserSession, parseInteractionPage } from './login_flow.js';
import type { Sidecar } from './sidecar.js';
import type { UpstreamIdp } from './upstream_idp.js';

/** Where the application (the `portal` client) gets its code; nothing listens there. */
export const RP_REDIRECT = 'http://127.0.0.1:9/app/callback';

export interface UpstreamRun {
  session: BrowserSession;
  /** The login page of Portcullis, before choosing the provider. */
  loginPage: Response;
  loginHtml: string;
  /** Portcullis' answer to the provider's callback. */
  callback: Response;
  callbackUrl: URL;
  /** PKCE verifier of the application's request to Portcullis. */
  verifier: string;
}

/** Follows redirects by hand until one points at `stop` (returned, not followed) or a page answers. */
export async function follow(session: BrowserSession, res: Response, stop: (url: URL) => boolean): Promise<{ res: Response; next?: URL }> {
  for (let hops = 0; hops < 15; hops++) {
    if (res.status !== 302 && res.status !== 303) return { res };
    const next = new URL(res.headers.get('location')!, res.url || undefined);
    if (stop(next)) return { res, next };
    res = await session.fetch(next);
  }
  throw new Error('too many redirects');
}

/** A browser starts an authorization at Portcullis (client `portal`) and presses "Sign in with Corp SSO" (provider `corp`). */
export async function loginThroughProvider(idp: UpstreamIdp, sidecar: Sidecar, account: string | 'deny', opts: { callback?: boolean } = {}): Promise<UpstreamRun> {
  const issuer = sidecar.server.issuer!;
  const verifier = oidc.randomPKCECodeVerifier();
  const authorize = new URL(`${issuer}/oauth2/authorize`);
  authorize.search = new URLSearchParams({ client_id: 'portal', redirect_uri: RP_REDIRECT, response_type: 'code', scope: 'openid profile email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'rp-state' }).toString();
  const session = new BrowserSession();
  const loginPage = await session.fetch(authorize);
  const loginHtml = await loginPage.text();
  const page = parseInteractionPage(loginHtml, authorize, loginPage.status);
  idp.loginAs(account);
  const toIdp = await session.postForm(new URL('/interaction/upstream', issuer), { csrf: page.csrf, provider: 'corp' });
  expect(toIdp.status).toBe(303);
  expect(toIdp.headers.get('location')!.startsWith(`${idp.issuer}/`)).toBe(true);
  const { next } = await follow(session, await session.fetch(toIdp.headers.get('location')!), (u) => u.href.startsWith(issuer));
  if (!next) throw new Error('the provider did not send the browser back');
  const callback = opts.callback === false ? new Response(null, { status: 599 }) : await session.fetch(next);
  return { session, loginPage, loginHtml, callback, callbackUrl: next, verifier };
}

