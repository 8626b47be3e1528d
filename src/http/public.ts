import formbody from '@fastify/formbody';
import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { OAuthError, InvalidRequest, ServerError, TemporarilyUnavailable } from '../issuer/errors.js';
import { isPortcullisError } from '../lib/errors.js';
import { validateAuthorizationRequest, UntrustedRedirect } from '../issuer/authorize.js';
import { discoveryDocument } from '../issuer/discovery.js';
import { introspect } from '../issuer/introspect.js';
import type { Outcome } from '../issuer/interaction.js';
import { mfaLogin, passwordLogin } from '../issuer/login_api.js';
import type { TokenModule } from '../issuer/module.js';
import { renderError, renderInteraction, STYLESHEET, STYLESHEET_PATH } from '../issuer/pages.js';
import { revoke } from '../issuer/revoke.js';
import { tokenEndpoint } from '../issuer/token_endpoint.js';
import { freshNonceHeader } from '../issuer/dpop_binding.js';
import { upstreamCallbackUrl } from '../issuer/upstream/login.js';
import { PROVIDER_ID } from '../config/upstream_schema.js';
import { userinfo } from '../issuer/userinfo.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { safeRequestId, withRequestContext } from '../telemetry/request_context.js';
import { randomUUID } from 'node:crypto';
import { healthRoute, type Liveness, type Readiness } from './admin.js';
import { closeConnectionsWhileDraining } from './lifecycle.js';

export interface PublicServerOptions {
  tokens: TokenModule | undefined;
  readiness: () => Promise<Readiness>;
  liveness: () => Promise<Liveness>;
  /** Proxy hops whose `X-Forwarded-For` entries are trusted (never `true`: the leftmost entry is the client's to choose). */
  trustProxy: number;
  metrics: Metrics;
  logger: Logger;
  /** True while the process drains before shutdown (answers then close their connection). */
  draining?: () => boolean;
}

const INTERACTION_COOKIE = 'portcullis_interaction';
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const FRAMEWORK_ERRORS: Record<number, string> = { 413: 'request body too large', 415: 'unsupported content type' };

/**
 * The public listener: `/health`, `/ready`, and the token module's endpoints. Routes only
 * translate HTTP to the issuer's functions and render its results; OAuth errors are rendered in
 * one place as RFC 6749 JSON, an unreachable store as a 503 `temporarily_unavailable`, and
 * anything unexpected becomes a generic `server_error`.
 */
export function createPublicServer({ tokens, readiness, liveness, trustProxy, metrics, logger, draining }: PublicServerOptions): FastifyInstance {
  // proxy-addr asks hop by hop from the socket outwards: trust exactly the configured number of proxies.
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    trustProxy: (_address: string, hop: number) => hop < trustProxy,
    genReqId: (req) => safeRequestId(req.headers['x-request-id'] as string | undefined) ?? randomUUID(),
  });
  // Every line logged while handling a request carries its request_id (and trace/span ids when traced).
  app.addHook('onRequest', (req, _reply, done) => withRequestContext({ request_id: req.id }, done));
  if (draining) closeConnectionsWhileDraining(app, draining);
  app.register(formbody);
  app.register(cookie);

  app.get('/health', healthRoute(liveness));
  app.get('/ready', async (_req, reply) => {
    const r = await readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not_ready', checks: r.checks });
  });
  if (tokens) registerTokenRoutes(app, tokens);

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found' }));
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unknown';
    let oauth: OAuthError;
    if (err instanceof OAuthError) oauth = err;
    // Framework refusals (unparseable body, too large, unsupported type) keep their status as invalid_request.
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) oauth = new OAuthError('invalid_request', err.statusCode, FRAMEWORK_ERRORS[err.statusCode] ?? 'malformed request', `http_${err.statusCode}`);
    else if (isPortcullisError(err, 'ERR_STORE_UNAVAILABLE')) {
      // An outage, not a bug: 503 so clients retry; whatever the request would have granted was not granted.
      logger.warn({ err, endpoint }, 'store unavailable');
      oauth = new TemporarilyUnavailable('store_unavailable');
    } else {
      logger.error({ err, endpoint }, 'token module request failed');
      oauth = new ServerError('internal');
    }
    metrics.oauthErrors.inc({ endpoint, error: oauth.error });
    if (oauth.status >= 500 || oauth.reason !== oauth.error) logger.info({ endpoint, error: oauth.error, reason: oauth.reason }, 'oauth error');
    return reply.code(oauth.status).headers({ ...NO_STORE, ...oauth.headers }).send({ error: oauth.error, error_description: oauth.description });
  });
  return app;
}

function registerTokenRoutes(app: FastifyInstance, tokens: TokenModule): void {
  const { ctx, interactions } = tokens;
  const alg = () => tokens.signingAlg;
  const ip = (req: FastifyRequest) => req.ip ?? null;

  app.get('/.well-known/openid-configuration', async () => discoveryDocument(ctx, alg()));
  app.get('/.well-known/oauth-authorization-server', async () => discoveryDocument(ctx, alg()));
  app.get('/jwks.json', async (_req, reply) => reply.header('cache-control', 'public, max-age=300').send(ctx.keyring.jwks()));
  app.get(STYLESHEET_PATH, async (_req, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET));

  app.post('/oauth2/token', async (req, reply) => {
    const response = await tokenEndpoint(ctx, credentials(req), ip(req), req.raw.headersDistinct.dpop);
    return reply.headers({ ...NO_STORE, ...freshNonceHeader(ctx) }).send(response);
  });
  app.post('/oauth2/introspect', async (req, reply) => reply.headers(NO_STORE).send(await introspect(ctx, credentials(req))));
  app.post('/oauth2/revoke', async (req, reply) => {
    await revoke(ctx, credentials(req), ip(req));
    return reply.headers(NO_STORE).send({});
  });
  const userinfoRoute = async (req: FastifyRequest, reply: FastifyReply) =>
    reply.headers({ ...NO_STORE, ...freshNonceHeader(ctx) }).send(await userinfo(ctx, { authorization: req.headers.authorization, dpop: req.raw.headersDistinct.dpop, method: req.method }));
  app.get('/userinfo', userinfoRoute);
  app.post('/userinfo', userinfoRoute);

  app.post('/login', async (req, reply) => reply.headers(NO_STORE).send(await passwordLogin(ctx, tokens.limiter, jsonBody(req), ip(req))));
  app.post('/login/mfa', async (req, reply) => reply.headers(NO_STORE).send(await mfaLogin(ctx, tokens.limiter, jsonBody(req), ip(req))));

  const render = renderer(tokens);
  const authorize = async (req: FastifyRequest, reply: FastifyReply) => {
    const wait = await tokens.authorizeLimiter.take(req.ip ?? 'unknown');
    if (wait !== undefined) {
      return page(reply.header('retry-after', String(wait)), 429, renderError('Too many requests', 'Too many sign-in attempts from this address. Wait a minute and try again.'), []);
    }
    const params = single(req.method === 'POST' ? req.body : req.query);
    let validated;
    try {
      validated = await validateAuthorizationRequest(ctx, params);
    } catch (err) {
      if (err instanceof UntrustedRedirect) return page(reply, 400, renderError('Invalid request', `This sign-in link is not valid: ${err.message}.`), []);
      throw err;
    }
    if (!validated.ok) return reply.headers(NO_STORE).redirect(validated.redirect, 303);
    const { id, outcome } = await interactions.start(validated.request, validated.client);
    reply.setCookie(INTERACTION_COOKIE, id, { path: '/', httpOnly: true, sameSite: 'lax', secure: ctx.issuer().startsWith('https:'), maxAge: ctx.settings.interactionTtl });
    return render(reply, outcome);
  };
  app.get('/oauth2/authorize', authorize);
  app.post('/oauth2/authorize', authorize);

  for (const step of ['login', 'mfa', 'consent', 'upstream'] as const) {
    app.post(`/interaction/${step}`, async (req, reply) => render(reply, await interactions[step](req.cookies[INTERACTION_COOKIE], single(req.body), ip(req))));
  }
  // The provider sends the browser back here (a top-level GET, so the SameSite=Lax cookie comes along).
  app.get('/oauth2/upstream/:provider/callback', async (req, reply) => {
    const provider = (req.params as { provider: string }).provider;
    if (!PROVIDER_ID.test(provider)) return reply.code(404).send({ error: 'not_found' });
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    const callbackUrl = new URL(`${upstreamCallbackUrl(ctx.issuer(), provider)}${query}`);
    return render(reply, await interactions.upstreamCallback(req.cookies[INTERACTION_COOKIE], provider, callbackUrl, ip(req)));
  });
}

function renderer(tokens: TokenModule) {
  const providers = tokens.ctx.upstream.list.map((p) => ({ id: p.id, name: p.name }));
  // The login page's form to a provider redirects to its authorization endpoint: form-action must allow it.
  const upstreamTargets = () => tokens.ctx.upstream.list.map((p) => formTarget(p.authorizationOrigin() ?? p.issuer));
  return (reply: FastifyReply, outcome: Outcome): FastifyReply => {
    if (outcome.kind === 'redirect') return reply.headers(NO_STORE).clearCookie(INTERACTION_COOKIE, { path: '/' }).redirect(outcome.location, 303);
    if (outcome.kind === 'upstream') return reply.headers(NO_STORE).redirect(outcome.location, 303);
    if (outcome.kind === 'expired') return page(reply, 400, renderError('Sign-in expired', 'This sign-in page has expired or was already used. Go back to the application and start again.'), []);
    const targets = [formTarget(outcome.request.redirectUri), ...(outcome.stage === 'login' ? upstreamTargets() : [])];
    return page(reply, outcome.status, renderInteraction({ ...outcome, providers }), [...new Set(targets)]);
  };
}

/**
 * The redirect after the last form post must pass `form-action`. CSP host sources cannot name an
 * IPv6 literal, so an `http://[::1]:port` loopback redirect URI (RFC 8252) gets its scheme instead.
 */
function formTarget(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.hostname.startsWith('[') ? url.protocol : url.origin;
}

/** HTML with a strict CSP: no scripts at all, our stylesheet only, forms post to us (and redirect to the client). */
function page(reply: FastifyReply, status: number, html: string, formTargets: string[]): FastifyReply {
  return reply
    .code(status)
    .headers({
      ...NO_STORE,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' ${formTargets.join(' ')}; frame-ancestors 'none'; base-uri 'none'`.replace(/\s+;/g, ';'),
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    })
    .send(html);
}

/** OAuth parameters must not repeat (RFC 6749 §3.1); values are strings. */
function single(input: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  if (!input || typeof input !== 'object') return out;
  for (const [k, v] of Object.entries(input)) {
    if (Array.isArray(v)) throw new InvalidRequest(`parameter ${k} is repeated`);
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

function credentials(req: FastifyRequest) {
  if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) throw new InvalidRequest('the body must be application/x-www-form-urlencoded');
  return { authorization: req.headers.authorization, body: single(req.body) };
}

function jsonBody(req: FastifyRequest): Record<string, unknown> {
  // JSON only: a cross-site HTML form cannot send it, so no page can make browsers guess passwords here.
  if (!req.headers['content-type']?.startsWith('application/json')) throw new InvalidRequest('the body must be application/json');
  if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) throw new InvalidRequest('the body must be a JSON object');
  return req.body as Record<string, unknown>;
}
