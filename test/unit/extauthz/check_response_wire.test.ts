import { fromBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toCheckResponse } from '../../../src/extauthz/check_response.js';
import { encodeCheckResponse } from '../../../src/extauthz/check_response_wire.js';
import { CheckResponseSchema, type DeniedHttpResponse } from '../../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AuthzInput, Decision } from '../../../src/pipeline/index.js';
import type { Principal } from '../../../src/tokens/index.js';

/** The hand-written encoding must decode to exactly the message toCheckResponse builds, for allows and denials. */

const input = (headerNames: string[]): AuthzInput => ({
  source: 'envoy',
  method: 'GET',
  path: '/documents/d1',
  host: 'api.example.com',
  scheme: 'https',
  headers: new Map(headerNames.map((n) => [n, ['v']])),
  sourceAddress: '',
  peerPrincipal: '',
  requestId: 'r1',
  contextExtensions: {},
});

const principal = (subject: string, roles: string[]): Principal => ({ subject, issuer: 'https://idp', roles, scopes: [], clientId: '', mfa: false, expiresAt: 0, boundJkt: undefined, claims: {} });

const allow = (o: { id: string; principal?: Principal | undefined; reasons: string[]; checked: number; revision?: string | undefined }): Decision => ({
  decisionId: o.id,
  allow: true,
  status: 200,
  reasons: o.reasons,
  policiesChecked: o.checked,
  errors: [],
  principal: o.principal,
  action: 'read',
  resourceType: 'Document',
  policyRevision: o.revision,
});

function same(d: Decision, i: AuthzInput): void {
  expect(fromBinary(CheckResponseSchema, encodeCheckResponse(d, i))).toEqual(toCheckResponse(d, i));
}

describe('encodeCheckResponse', () => {
  it('writes an allow with subject, roles, reasons, removed inbound x-portcullis-* headers and metadata', () => {
    same(allow({ id: 'd-1', principal: principal('alice', ['viewer', 'editor']), reasons: ['viewers-read', 'owners'], checked: 6, revision: 'rev-1' }), input(['x-portcullis-subject', 'x-portcullis-forged', 'accept']));
  });

  it('writes an anonymous allow with no reasons, no revision and zero policies checked', () => {
    same(allow({ id: 'd-2', reasons: [], checked: 0 }), input([]));
  });

  it('matches toCheckResponse for arbitrary subjects, roles, reasons and header names (unicode included)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
        fc.array(fc.string({ unit: 'grapheme', maxLength: 16 }), { maxLength: 5 }),
        fc.nat(5000),
        fc.array(fc.oneof(fc.constant('x-portcullis-roles'), fc.string({ maxLength: 10 }).map((s) => `x-portcullis-${s.toLowerCase()}`), fc.string({ maxLength: 10 })), { maxLength: 5 }),
        fc.option(fc.string({ maxLength: 12 }), { nil: undefined }),
        (subject, roles, reasons, checked, headers, revision) => {
          same(allow({ id: 'd', principal: principal(subject, roles), reasons, checked, revision }), input(headers));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('writes a denial with its gRPC and HTTP status, content type, challenge, JSON body and metadata', () => {
    const deny: Decision = { decisionId: 'd-3', allow: false, status: 403, reason: 'forbidden', code: 'ERR_POLICY_DENIED', description: 'forbidden', challenge: undefined, reasons: [], policiesChecked: 3, errors: [], principal: undefined, action: 'read', resourceType: 'Document', policyRevision: 'rev-1' };
    same(deny, input([]));
    const bytes = encodeCheckResponse({ ...deny, status: 401, reason: 'invalid_token', code: 'ERR_TOKEN_MALFORMED', description: 'malformed token', challenge: 'Bearer error="invalid_token"' }, input([]));
    const decoded = fromBinary(CheckResponseSchema, bytes);
    expect(decoded.status).toMatchObject({ code: 16, message: 'invalid_token' });
    expect(decoded.httpResponse.case).toBe('deniedResponse');
    const denied = decoded.httpResponse.value as DeniedHttpResponse;
    expect(denied.status?.code).toBe(401);
    expect(denied.headers.map((h) => [h.header?.key, h.header?.value])).toEqual([['content-type', 'application/json'], ['www-authenticate', 'Bearer error="invalid_token"']]);
    expect(JSON.parse(denied.body)).toEqual({ error: 'invalid_token', decision_id: 'd-3', error_description: 'malformed token' });
  });

  it('matches toCheckResponse for arbitrary denials: every status, reason, challenge, limit, id and revision (unicode included)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(400 as const, 401 as const, 403 as const),
        fc.constantFrom('bad_request' as const, 'unauthenticated' as const, 'invalid_token' as const, 'forbidden' as const),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.option(fc.string({ maxLength: 200 }), { nil: undefined }),
        fc.option(fc.constantFrom('header_count' as const, 'request_body' as const, 'token' as const), { nil: undefined }),
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.option(fc.string({ unit: 'grapheme', maxLength: 12 }), { nil: undefined }),
        (status, reason, description, challenge, limit, id, revision) => {
          const deny: Decision = { decisionId: id, allow: false, status, reason, code: 'ERR_X', description, challenge, ...(limit ? { limit } : {}), reasons: [], policiesChecked: 0, errors: [], principal: undefined, action: undefined, resourceType: undefined, policyRevision: revision };
          same(deny, input([]));
        },
      ),
      { numRuns: 300 },
    );
  });
});
