import { create } from '@bufbuild/protobuf';
import { status as Status, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import {
  BatchCheckRequestSchema,
  BatchCheckResponseSchema,
  CheckRequestSchema,
  CheckResponseSchema,
  Decision,
  type BatchCheckResponse,
  type CheckResponse,
} from '../gen/portcullis/authz/v1/authorizer_pb.js';
import { decode, rawRequestMethod } from '../grpc/codec.js';
import { isPortcullisError } from '../lib/errors.js';
import type { AppCheckInput, AppDecision } from '../pipeline/app_check.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { InvalidField, fromBatchCheckRequest, fromCheckRequest } from './request.js';

export interface AppApiOptions {
  check: (input: AppCheckInput) => Promise<AppDecision[]>;
  metrics: Metrics;
  logger: Logger;
}

/** portcullis.authz.v1.Authorizer: Check and BatchCheck over the app checker. */
export function createAppApiService({ check, metrics, logger }: AppApiOptions): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const definition: ServiceDefinition = {
    Check: rawRequestMethod('/portcullis.authz.v1.Authorizer/Check', CheckResponseSchema),
    BatchCheck: rawRequestMethod('/portcullis.authz.v1.Authorizer/BatchCheck', BatchCheckResponseSchema),
  };

  function handle<R>(bytes: Buffer, parse: (b: Buffer) => AppCheckInput | undefined, render: (d: AppDecision[]) => R, callback: sendUnaryData<R>): void {
    let input: AppCheckInput | undefined;
    try {
      input = parse(bytes);
    } catch (err) {
      if (!(err instanceof InvalidField)) throw err;
      callback({ code: Status.INVALID_ARGUMENT, details: err.message });
      return;
    }
    if (!input) {
      metrics.authzErrors.inc({ code: 'ERR_MALFORMED_REQUEST' });
      callback({ code: Status.INVALID_ARGUMENT, details: 'malformed request message' });
      return;
    }
    const requestId = input.requestId;
    check(input).then(
      (decisions) => callback(null, render(decisions)),
      (err: unknown) => callback(toStatus(err, requestId)),
    );
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
    Check(call: { request: Buffer }, callback: sendUnaryData<CheckResponse>) {
      handle(call.request, (b) => mapIf(decode(CheckRequestSchema, b), fromCheckRequest), (d) => toCheckResponse(d[0]!), callback);
    },
    BatchCheck(call: { request: Buffer }, callback: sendUnaryData<BatchCheckResponse>) {
      handle(call.request, (b) => mapIf(decode(BatchCheckRequestSchema, b), fromBatchCheckRequest), (d) => create(BatchCheckResponseSchema, { results: d.map(toCheckResponse) }), callback);
    },
  };
  return { definition, implementation };
}

function mapIf<T, R>(value: T | undefined, f: (v: T) => R): R | undefined {
  return value === undefined ? undefined : f(value);
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
