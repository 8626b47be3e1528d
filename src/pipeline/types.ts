import type { LimitName } from '../lib/limits.js';
import type { Principal } from '../tokens/index.js';

/** One request to authorize, whatever protocol it arrived on. Wire types stop before this. */
export interface AuthzInput {
  source: 'envoy' | 'app';
  method: string;
  /** Path as received: percent-encoded, with the query string. */
  path: string;
  host: string;
  scheme: string;
  /** Lower-cased header names; repeated headers keep every value. */
  headers: ReadonlyMap<string, readonly string[]>;
  /** IP of the downstream peer, "" when unknown or not an IP (unix socket). */
  sourceAddress: string;
  /** mTLS identity of the downstream peer (SPIFFE id), "" without mTLS. */
  peerPrincipal: string;
  requestId: string;
  contextExtensions: Readonly<Record<string, string>>;
  /** The request body when the proxy forwards it (Envoy `with_request_body`): bytes or text. */
  body?: Uint8Array | string;
}

export type DenyReason = 'bad_request' | 'unauthenticated' | 'invalid_token' | 'forbidden';

interface DecisionBase {
  decisionId: string;
  /** Determining policy ids. */
  reasons: readonly string[];
  /** Size of the policy slice evaluated (0 when no policy ran). */
  policiesChecked: number;
  /** Policy evaluation errors; a policy that errors does not apply. */
  errors: readonly string[];
  principal: Principal | undefined;
  action: string | undefined;
  resourceType: string | undefined;
  /** Resource id from the route (absent when no route matched). */
  resourceId?: string;
  /** Answered from the decision cache. */
  cached?: boolean;
  /** Revision of the policy set that decided (absent when no policy ran, e.g. a bad token). */
  policyRevision?: string;
}

export interface Allow extends DecisionBase {
  allow: true;
  status: 200;
}

export interface Deny extends DecisionBase {
  allow: false;
  status: 400 | 401 | 403;
  reason: DenyReason;
  /** Stable internal code of the cause (e.g. ERR_TOKEN_EXPIRED), for logs and traces, never clients. */
  code: string;
  /** Short text safe for clients. */
  description: string;
  /** For 401: the WWW-Authenticate challenge. */
  challenge: string | undefined;
  /** Set when the request exceeded one of the input limits (named in the body and counted). */
  limit?: LimitName;
}

export type Decision = Allow | Deny;
