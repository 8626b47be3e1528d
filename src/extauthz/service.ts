import { status as Status, type Deadline, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData } from '@grpc/grpc-js';
import { rawBytesMethod } from '../grpc/codec.js';
import { deadlinePassed } from '../grpc/deadline.js';
import { respond } from '../grpc/unary.js';
import { isPortcullisError } from '../lib/errors.js';
import type { AuthzInput, Decider } from '../pipeline/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { readCheckRequest } from './check_request_wire.js';
import { encodeCheckResponse } from './check_response_wire.js';
import { AUTHORIZATION_CHECK_PATH } from './paths.js';

export { AUTHORIZATION_CHECK_PATH } from './paths.js';

export interface ExtAuthzServiceOptions {
  decide: Decider;
  metrics: Metrics;
  logger: Logger;
}

/**
 * envoy.service.auth.v3.Authorization: read the request's wire bytes into an AuthzInput, decide,
 * render. Internal failures answer with a gRPC error status (UNAVAILABLE before the first policy load, INTERNAL otherwise),
 * so Envoy's `failure_mode_allow` decides; the detailed reason goes to logs and metrics only.
 */
export function createExtAuthzService({ decide, metrics, logger }: ExtAuthzServiceOptions): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const definition: ServiceDefinition = { Check: rawBytesMethod(AUTHORIZATION_CHECK_PATH) };
  const fail = (err: unknown, requestId: string) => {
    const code = isPortcullisError(err) ? err.code : 'ERR_INTERNAL';
    metrics.authzErrors.inc({ code });
    logger.error({ err, code, request_id: requestId }, 'check failed');
    return code === 'ERR_POLICY_NOT_LOADED' ? { code: Status.UNAVAILABLE, details: 'policies not loaded' } : { code: Status.INTERNAL, details: 'internal error' };
  };
  const implementation: UntypedServiceImplementation = {
    Check(call: { request: Buffer; getDeadline?: () => Deadline }, callback: sendUnaryData<Uint8Array>) {
      if (deadlinePassed(call)) {
        metrics.authzShed.inc({ source: 'envoy' });
        callback({ code: Status.DEADLINE_EXCEEDED, details: 'deadline exceeded before the check started' });
        return;
      }
      let input: AuthzInput;
      try {
        input = readCheckRequest(call.request);
      } catch {
        metrics.authzErrors.inc({ code: 'ERR_MALFORMED_REQUEST' });
        callback({ code: Status.INVALID_ARGUMENT, details: 'malformed CheckRequest' });
        return;
      }
      respond(decide(input), (decision) => encodeCheckResponse(decision, input), callback, (err) => fail(err, input.requestId));
    },
  };
  return { definition, implementation };
}
