import type { ActivePolicySet } from './engine.js';
import { PRINCIPAL_TYPE, ROLE_TYPE } from './vocabulary.js';

/**
 * cedar-wasm's first calls are 10-100x slower than steady state; run synthetic decisions
 * over every slice before the set takes traffic. Results are discarded.
 */
export function warmUp(active: ActivePolicySet, checks: number): void {
  const targets = [...active.bundle.routes.routes, ...(active.bundle.routes.fallback ? [active.bundle.routes.fallback] : [])];
  if (targets.length === 0 || checks === 0) return;
  const context = {
    ip: { __extn: { fn: 'ip', arg: '127.0.0.1' } },
    method: 'GET',
    path: '/',
    host: 'warmup',
    scheme: 'http',
    request_id: 'warmup',
    time: 0,
    authenticated: true,
    scopes: ['warmup'],
    mfa: false,
    dpop: false,
    issuer: 'warmup',
    client_id: 'warmup',
    peer_principal: '',
    context_extensions: {},
  };
  for (let i = 0; i < checks; i++) {
    const t = targets[i % targets.length]!;
    active.evaluate({
      principal: { type: PRINCIPAL_TYPE, id: 'warmup' },
      action: t.action,
      resource: { type: t.resourceType, id: 'warmup' },
      context,
      entities: [{ uid: { type: PRINCIPAL_TYPE, id: 'warmup' }, attrs: {}, parents: [{ type: ROLE_TYPE, id: 'warmup' }] }],
    });
  }
}
