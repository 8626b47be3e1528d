import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { isPortcullisError } from '../lib/errors.js';
import { LIMIT_KEYS } from '../lib/limits.js';
import { denialBody, upstreamHeaders, type AuthzInput, type Decider, type Decision } from '../pipeline/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { closeConnectionsWhileDraining } from './lifecycle.js';

export interface HttpAuthzOptions {
  decide: Decider;
  /** Prefix Envoy adds to the checked path (`http_service.path_prefix`); removed before routing. */
  pathPrefix: string;
  maxBodyBytes: number;
  metrics: Metrics;
  logger: Logger;
  /** True while the process drains before shutdown (answers then close their connection). */
  draining?: () => boolean;
}

/**
 * Envoy's HTTP ext_authz protocol: Envoy replays the request's method, path and headers (and
 * body with `with_request_body`) here and treats a 2xx as allow. Allows carry the identity headers
 * for `allowed_upstream_headers` and name spoofed inbound `x-portcullis-*` headers in
 * `x-envoy-auth-headers-to-remove`; denials carry status, challenge and JSON body to the client.
 */
export function createHttpAuthzServer({ decide, pathPrefix, maxBodyBytes, metrics, logger, draining }: HttpAuthzOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: maxBodyBytes + 1, exposeHeadRoutes: false });
  if (draining) closeConnectionsWhileDraining(app, draining);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: '*',
    handler: async (req, reply) => {
      const input = toAuthzInput(req, pathPrefix);
      let decision: Decision;
      try {
        decision = await decide(input);
      } catch (err) {
        const code = isPortcullisError(err) ? err.code : 'ERR_INTERNAL';
        metrics.authzErrors.inc({ code });
        logger.error({ err, code, request_id: input.requestId }, 'http check failed');
        return reply.code(code === 'ERR_POLICY_NOT_LOADED' ? 503 : 500).send({ error: 'authorization_unavailable' });
      }
      if (decision.allow) {
        const { set, remove } = upstreamHeaders(decision, input.headers.keys());
        const headers = Object.fromEntries(set);
        if (remove.length) headers['x-envoy-auth-headers-to-remove'] = remove.join(',');
        return reply.code(200).headers(headers).send();
      }
      if (decision.challenge) reply.header('www-authenticate', decision.challenge);
      return reply.code(decision.status).type('application/json').send(denialBody(decision));
    },
  });
  app.setErrorHandler((err: { statusCode?: number; code?: string }, _req, reply) => {
    // Fastify's own refusals (body over the limit, malformed framing) are bad requests, never allows.
    const status = err.statusCode === 413 ? 400 : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (err.statusCode === 413) {
      metrics.limitExceeded.inc({ limit: 'request_body' });
      return reply.code(400).send({ error: 'bad_request', error_description: `request body exceeds ${maxBodyBytes} bytes`, limit: LIMIT_KEYS.request_body });
    }
    return reply.code(status).send({ error: 'bad_request', error_description: 'unreadable request' });
  });
  return app;
}

function toAuthzInput(req: FastifyRequest, pathPrefix: string): AuthzInput {
  const headers = new Map<string, string[]>();
  const raw = req.raw.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const list = headers.get(name);
    if (list) list.push(raw[i + 1]!);
    else headers.set(name, [raw[i + 1]!]);
  }
  const first = (name: string) => headers.get(name)?.[0] ?? '';
  const url = req.raw.url ?? '/';
  const path = pathPrefix && url.startsWith(pathPrefix) ? url.slice(pathPrefix.length) || '/' : url;
  const forwardedFor = first('x-forwarded-for').split(',')[0]!.trim();
  return {
    source: 'envoy',
    method: req.method,
    path,
    host: first('host'),
    scheme: first('x-forwarded-proto') || 'http',
    headers,
    sourceAddress: first('x-envoy-external-address') || forwardedFor,
    peerPrincipal: '',
    requestId: first('x-request-id'),
    contextExtensions: {},
    body: Buffer.isBuffer(req.body) && req.body.length ? new Uint8Array(req.body) : undefined,
  };
}
