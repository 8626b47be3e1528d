import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import type { IssuerContext } from '../../src/issuer/context.js';
import { addUser, enrollTotp } from '../../src/issuer/users.js';
import type { UserRecord } from '../../src/store/index.js';

/**
 * Drives the token module's server-rendered authorization pages the way a browser would, with
 * plain `fetch`: nothing is followed automatically (`redirect: 'manual'`), the interaction cookie
 * is kept by hand, the CSRF token is read from the hidden form input, and every form is posted as
 * `application/x-www-form-urlencoded`. No test-only shortcuts into the server.
 */

export const INTERACTION_COOKIE = 'portcullis_interaction';

export type InteractionStage = 'login' | 'mfa' | 'consent';

/** A minimal cookie jar: name → value, updated from every `Set-Cookie`. */
export class BrowserSession {
  readonly cookies = new Map<string, string>();

  async fetch(url: URL | string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      if (eq < 0) continue;
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=').slice(1).join('=')) <= Date.now()));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** Posts a form the way a browser submits `<form method="post">`. */
  postForm(url: URL | string, fields: Record<string, string>): Promise<Response> {
    return this.fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  }
}

export interface InteractionPage {
  stage: InteractionStage;
  /** Absolute URL the form posts to. */
  action: URL;
  csrf: string;
  status: number;
  html: string;
  /** The page's alert text, when it shows an error. */
  error: string | undefined;
}

const unescapeHtml = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);

/** Reads the form of a login / MFA / consent page. Throws when the HTML holds no such form. */
export function parseInteractionPage(html: string, pageUrl: URL | string, status: number): InteractionPage {
  const form = /<form\b[^>]*\baction="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error(`no form on the page (HTTP ${status}): ${html.slice(0, 300)}`);
  const action = new URL(unescapeHtml(form[1]!), pageUrl);
  const stage = /\/interaction\/(login|mfa|consent)$/.exec(action.pathname)?.[1] as InteractionStage | undefined;
  if (!stage) throw new Error(`unexpected form action ${action.href}`);
  const csrfInput = /<input\b(?=[^>]*\bname="csrf")[^>]*\bvalue="([^"]*)"[^>]*>/i.exec(form[2]!);
  if (!csrfInput) throw new Error('the form has no csrf input');
  const alert = /<p\b[^>]*role="alert"[^>]*>([\s\S]*?)<\/p>/i.exec(html);
  return { stage, action, csrf: unescapeHtml(csrfInput[1]!), status, html, error: alert ? unescapeHtml(alert[1]!) : undefined };
}

/** Reads a response that must be an interaction page (HTML with a form). */
export async function readInteractionPage(res: Response, pageUrl: URL | string): Promise<InteractionPage> {
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/html')) throw new Error(`expected an HTML page, got HTTP ${res.status} ${type} ${res.headers.get('location') ?? ''}`);
  return parseInteractionPage(await res.text(), pageUrl, res.status);
}

/** Opens an authorization URL in a fresh browser session: the login page (or an early redirect / error page). */
export async function openAuthorization(authorizationUrl: URL, session = new BrowserSession()): Promise<{ session: BrowserSession; response: Response }> {
  return { session, response: await session.fetch(authorizationUrl) };
}

/** The current TOTP code for a base32 secret (RFC 6238 defaults, like an authenticator app). */
export function totpCode(secret: string): Promise<string> {
  return generate({ secret });
}

export interface LoginAnswers {
  username: string;
  password: string;
  /** Needed when the user has TOTP enrolled; a fresh code is generated for the MFA page. */
  totpSecret?: string | undefined;
  /** What to press on the consent page (non-first-party clients). Default `allow`. */
  consent?: 'allow' | 'deny' | undefined;
}

export interface LoginResult {
  /** The `Location` of the final 303: the client's redirect URI with `code`/`error`, `state`, `iss`. */
  callback: URL;
  /** The pages shown, in order. */
  stages: InteractionStage[];
  session: BrowserSession;
}

/**
 * Runs the whole authorization interaction: opens the URL, answers the login, MFA and consent
 * pages as they come, and returns the final redirect to the client (not followed). Throws when a
 * page shows an error or the flow ends anywhere else.
 */
export async function completeAuthorization(authorizationUrl: URL, answers: LoginAnswers, maxSteps = 6): Promise<LoginResult> {
  const { session, response } = await openAuthorization(authorizationUrl);
  let res = response;
  let pageUrl: URL = authorizationUrl;
  const stages: InteractionStage[] = [];
  for (let i = 0; i < maxSteps; i++) {
    if (res.status === 303 || res.status === 302) {
      const location = res.headers.get('location');
      if (!location) throw new Error(`HTTP ${res.status} without Location`);
      return { callback: new URL(location, pageUrl), stages, session };
    }
    const page = await readInteractionPage(res, pageUrl);
    if (page.error) throw new Error(`the ${page.stage} page shows an error (HTTP ${page.status}): ${page.error}`);
    if (page.stage === 'login' && !session.cookies.has(INTERACTION_COOKIE)) throw new Error('the login page set no interaction cookie');
    stages.push(page.stage);
    res = await session.postForm(page.action, { csrf: page.csrf, ...(await fieldsFor(page.stage, answers)) });
    pageUrl = page.action;
  }
  throw new Error(`the interaction did not finish within ${maxSteps} steps (stages ${stages.join(' → ')})`);
}

async function fieldsFor(stage: InteractionStage, a: LoginAnswers): Promise<Record<string, string>> {
  if (stage === 'login') return { username: a.username, password: a.password };
  if (stage === 'mfa') {
    if (!a.totpSecret) throw new Error('the MFA page was shown but no TOTP secret was given');
    return { code: await totpCode(a.totpSecret) };
  }
  return { decision: a.consent ?? 'allow' };
}

export interface TestUser {
  user: UserRecord;
  username: string;
  password: string;
  /** Set when MFA (TOTP) was enrolled. */
  totpSecret?: string | undefined;
  totpUri?: string | undefined;
}

let userCounter = 0;

/**
 * Creates a user with a random password, optionally with TOTP enrolled. A TOTP time step is
 * accepted only once per user, so a test that logs in with MFA more than once within 30 seconds
 * should use one user per login.
 */
export async function createTestUser(ctx: IssuerContext, opts: { prefix?: string; roles?: string[]; mfa?: boolean; name?: string; email?: string } = {}): Promise<TestUser> {
  const username = `${opts.prefix ?? 'user'}-${++userCounter}-${randomBytes(3).toString('hex')}`;
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  const user = await addUser(ctx, { username, password, roles: opts.roles ?? [], name: opts.name, email: opts.email });
  if (!opts.mfa) return { user, username, password };
  const enrolment = await enrollTotp(ctx, username, 'Portcullis');
  return { user, username, password, totpSecret: enrolment.secret, totpUri: enrolment.uri };
}
