import { create } from '@bufbuild/protobuf';
import type { JsonObject } from '@bufbuild/protobuf';
import { HeaderValueOption_HeaderAppendAction, type HeaderValueOption } from '../gen/envoy/config/core/v3/base_pb.js';
import { CheckResponseSchema, type CheckResponse } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { StatusCode as HttpStatusCode } from '../gen/envoy/type/v3/http_status_pb.js';
import { denialBody, upstreamHeaders, type AuthzInput, type Decision, type Deny } from '../pipeline/index.js';

/** gRPC status codes carried in CheckResponse.status. */
const GRPC_OK = 0;
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/** A Decision as Envoy's CheckResponse. Pure; the protobuf type starts here. */
export function toCheckResponse(decision: Decision, input: AuthzInput): CheckResponse {
  return decision.allow ? allowResponse(decision, input) : denyResponse(decision);
}

function allowResponse(d: Decision, input: AuthzInput): CheckResponse {
  const { set, remove: headersToRemove } = upstreamHeaders(d, input.headers.keys());
  const metadata: JsonObject = {
    decision_id: d.decisionId,
    subject: d.principal?.subject ?? '',
    determining_policies: [...d.reasons],
    policies_checked: d.policiesChecked,
    policy_revision: d.policyRevision ?? '',
  };
  return create(CheckResponseSchema, {
    status: { code: GRPC_OK },
    httpResponse: { case: 'okResponse', value: { headers: set.map(([k, v]) => header(k, v)), headersToRemove } },
    dynamicMetadata: metadata,
  });
}

function denyResponse(d: Deny): CheckResponse {
  const headers = [header('content-type', 'application/json')];
  if (d.challenge) headers.push(header('www-authenticate', d.challenge));
  return create(CheckResponseSchema, {
    status: { code: grpcStatusOfDenial(d), message: d.reason },
    httpResponse: {
      case: 'deniedResponse',
      value: { status: { code: d.status as HttpStatusCode }, headers, body: denialBody(d) },
    },
    dynamicMetadata: { decision_id: d.decisionId, reason: d.reason, policy_revision: d.policyRevision ?? '' },
  });
}

/** The gRPC status a denial carries in CheckResponse.status. */
export function grpcStatusOfDenial(d: Deny): number {
  return d.status === 400 ? GRPC_INVALID_ARGUMENT : d.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED;
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
