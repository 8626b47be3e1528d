import { create } from '@bufbuild/protobuf';
import type { JsonObject } from '@bufbuild/protobuf';
import { HeaderValueOption_HeaderAppendAction, type HeaderValueOption } from '../gen/envoy/config/core/v3/base_pb.js';
import { CheckResponseSchema, type CheckResponse } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { StatusCode as HttpStatusCode } from '../gen/envoy/type/v3/http_status_pb.js';
import type { AuthzInput, Decision, Deny } from '../pipeline/index.js';

/** gRPC status codes carried in CheckResponse.status. */
const GRPC_OK = 0;
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

const HEADER_PREFIX = 'x-portcullis-';
const H_SUBJECT = `${HEADER_PREFIX}subject`;
const H_ROLES = `${HEADER_PREFIX}roles`;
const H_DECISION = `${HEADER_PREFIX}decision-id`;

/** A Decision as Envoy's CheckResponse. Pure; the protobuf type starts here. */
export function toCheckResponse(decision: Decision, input: AuthzInput): CheckResponse {
  return decision.allow ? allowResponse(decision, input) : denyResponse(decision);
}

function allowResponse(d: Decision, input: AuthzInput): CheckResponse {
  const set: Array<[string, string]> = [[H_DECISION, d.decisionId]];
  if (d.principal) {
    set.push([H_SUBJECT, headerSafe(d.principal.subject)]);
    if (d.principal.roles.length) set.push([H_ROLES, headerSafe(d.principal.roles.join(','))]);
  }
  const setNames = new Set(set.map(([k]) => k));
  // Inbound x-portcullis-* headers we do not overwrite are removed, so upstreams never see spoofed ones.
  const headersToRemove = [...input.headers.keys()].filter((k) => k.startsWith(HEADER_PREFIX) && !setNames.has(k));
  const metadata: JsonObject = {
    decision_id: d.decisionId,
    subject: d.principal?.subject ?? '',
    determining_policies: [...d.reasons],
    policies_checked: d.policiesChecked,
  };
  return create(CheckResponseSchema, {
    status: { code: GRPC_OK },
    httpResponse: { case: 'okResponse', value: { headers: set.map(([k, v]) => header(k, v)), headersToRemove } },
    dynamicMetadata: metadata,
  });
}

function denyResponse(d: Deny): CheckResponse {
  const body: Record<string, string> = { error: d.reason, decision_id: d.decisionId };
  if (d.status !== 403) body.error_description = d.description;
  const headers = [header('content-type', 'application/json')];
  if (d.challenge) headers.push(header('www-authenticate', d.challenge));
  return create(CheckResponseSchema, {
    status: { code: d.status === 400 ? GRPC_INVALID_ARGUMENT : d.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED, message: d.reason },
    httpResponse: {
      case: 'deniedResponse',
      value: { status: { code: d.status as HttpStatusCode }, headers, body: JSON.stringify(body) },
    },
    dynamicMetadata: { decision_id: d.decisionId, reason: d.reason },
  });
}

/** A header that replaces any header of the same name (Envoy's OVERWRITE_IF_EXISTS_OR_ADD). */
function header(key: string, value: string): HeaderValueOption {
  return {
    $typeName: 'envoy.config.core.v3.HeaderValueOption',
    header: { $typeName: 'envoy.config.core.v3.HeaderValue', key, value, rawValue: new Uint8Array() },
    appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    keepEmptyValue: false,
  };
}

/** Header values must be visible ASCII; anything else is percent-encoded. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}
