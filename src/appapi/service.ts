import { create, fromJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { status as Status, type Deadline, type Metadata, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import {
  BatchCheckRequestSchema,
  BatchCheckResponseSchema,
  CheckRequestSchema,
  CheckResponseSchema,
  Decision,
  PlanKind,
  PlanRequestSchema,
  PlanResponseSchema,
  type PlanResponse,
  type BatchCheckResponse,
  type CheckResponse,
} from '../gen/portcullis/authz/v1/authorizer_pb.js';
import { decode, rawRequestMethod } from '../grpc/codec.js';
import { deadlinePassed } from '../grpc/deadline.js';
import { respond } from '../grpc/unary.js';
import { isPortcullisError } from '../lib/errors.js';
import type { LimitExceeded } from '../lib/limits.js';
import type { AppCheckInput, AppDecision, AppPlan, AppPlanInput } from '../pipeline/app_check.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { InvalidField, fromBatchCheckRequest, fromCheckRequest, fromPlanRequest } from './request.js';

export interface AppApiOptions {
  check: (input: AppCheckInput) => Promise<AppDecision[]>;
  plan: (input: AppPlanInput) => Promise<AppPlan>;
  metrics: Metrics;
  logger: Logger;
}

/** portcullis.authz.v1.Authorizer: Check and BatchCheck over the app checker. */
export function createAppApiService({ check, plan, metrics, logger }: AppApiOptions): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const definition: ServiceDefinition = {
    Check: rawRequestMethod('/portcullis.authz.v1.Authorizer/Check', CheckResponseSchema),
    BatchCheck: rawRequestMethod('/portcullis.authz.v1.Authorizer/BatchCheck', BatchCheckResponseSchema),
    Plan: rawRequestMethod('/portcullis.authz.v1.Authorizer/Plan', PlanResponseSchema),
  };

  function handle<I extends { requestId: string }, A, R>(call: { request: Buffer; getDeadline?: () => Deadline }, parse: (b: Buffer) => I | undefined, run: (input: I) => Promise<A>, render: (answer: A) => R, callback: sendUnaryData<R>): void {
    if (deadlinePassed(call)) {
      metrics.authzShed.inc({ source: 'app' });
      callback({ code: Status.DEADLINE_EXCEEDED, details: 'deadline exceeded before the check started' });
      return;
    }
    const bytes = call.request;
    let input: I | undefined;
    try {
      input = parse(bytes);
    } catch (err) {
      callback(err instanceof InvalidField ? { code: Status.INVALID_ARGUMENT, details: err.message } : toStatus(err, ''));
      return;
    }
    if (!input) {
      metrics.authzErrors.inc({ code: 'ERR_MALFORMED_REQUEST' });
      callback({ code: Status.INVALID_ARGUMENT, details: 'malformed request message' });
      return;
    }
    const requestId = input.requestId;
    respond(run(input), render, callback, (err: unknown) => toStatus(err, requestId));
  }

  function toStatus(err: unknown, requestId: string): Partial<ServiceError> {
    const code = isPortcullisError(err) ? err.code : 'ERR_INTERNAL';
    switch (code) {
      case 'ERR_TOKEN_INVALID':
        metrics.authzDenied.inc({ reason: 'invalid_token' });
        return { code: Status.UNAUTHENTICATED, details: `invalid token: ${(err as Error).message}` };
      case 'ERR_BAD_REQUEST':
        metrics.authzDenied.inc({ reason: 'bad_request' });
        return { code: Status.INVALID_ARGUMENT, details: (err as Error).message };
      case 'ERR_LIMIT_EXCEEDED':
        metrics.authzDenied.inc({ reason: 'bad_request' });
        metrics.limitExceeded.inc({ limit: (err as LimitExceeded).limit });
        return { code: Status.INVALID_ARGUMENT, details: (err as Error).message };
      case 'ERR_POLICY_NOT_LOADED':
        metrics.authzErrors.inc({ code });
        return { code: Status.UNAVAILABLE, details: 'policies not loaded' };
      default:
        metrics.authzErrors.inc({ code });
        logger.error({ err, code, request_id: requestId }, 'app check failed');
        return { code: Status.INTERNAL, details: 'internal error' };
    }
  }

  const implementation: UntypedServiceImplementation = {
    Check(call: { request: Buffer; metadata: Metadata; getDeadline?: () => Deadline }, callback: sendUnaryData<CheckResponse>) {
      handle(call, (b) => mapIf(decode(CheckRequestSchema, b), (r) => ({ ...fromCheckRequest(r), trace: traceContext(call.metadata) })), check, (d) => toCheckResponse(d[0]!), callback);
    },
    BatchCheck(call: { request: Buffer; metadata: Metadata; getDeadline?: () => Deadline }, callback: sendUnaryData<BatchCheckResponse>) {
      handle(call, (b) => mapIf(decode(BatchCheckRequestSchema, b), (r) => ({ ...fromBatchCheckRequest(r), trace: traceContext(call.metadata) })), check, (d) => create(BatchCheckResponseSchema, { results: d.map(toCheckResponse) }), callback);
    },
    Plan(call: { request: Buffer; getDeadline?: () => Deadline }, callback: sendUnaryData<PlanResponse>) {
      handle(call, (b) => mapIf(decode(PlanRequestSchema, b), fromPlanRequest), plan, toPlanResponse, callback);
    },
  };
  return { definition, implementation };
}

/** W3C trace context from the call's metadata (used only when tracing is on). */
function traceContext(metadata: Metadata): Record<string, string> | undefined {
  const parent = metadata.get('traceparent')[0];
  if (typeof parent !== 'string') return undefined;
  const state = metadata.get('tracestate')[0];
  return typeof state === 'string' ? { traceparent: parent, tracestate: state } : { traceparent: parent };
}

function mapIf<T, R>(value: T | undefined, f: (v: T) => R): R | undefined {
  return value === undefined ? undefined : f(value);
}

const PLAN_KINDS = { always_allowed: PlanKind.ALWAYS_ALLOWED, always_denied: PlanKind.ALWAYS_DENIED, conditional: PlanKind.CONDITIONAL } as const;

function toPlanResponse(p: AppPlan): PlanResponse {
  return create(PlanResponseSchema, {
    kind: PLAN_KINDS[p.kind],
    condition: fromJson(ValueSchema, p.condition as JsonValue),
    residuals: p.residuals as unknown as JsonObject,
    policiesConsidered: [...p.considered],
  });
}

function toCheckResponse(d: AppDecision): CheckResponse {
  return create(CheckResponseSchema, {
    decision: d.allow ? Decision.ALLOW : Decision.DENY,
    determiningPolicies: [...d.reasons],
    errors: [...d.errors],
    decisionId: d.decisionId,
    policiesChecked: d.policiesChecked,
  });
}
