import type { Deadline } from '@grpc/grpc-js';

/**
 * True when the caller's deadline (`grpc-timeout`; Envoy sets it from the ext_authz `timeout`) had
 * already passed when the call reached its handler: the caller has given up and applied its failure
 * mode, so deciding would only spend CPU that calls still waiting need. Under overload this keeps
 * goodput near capacity instead of collapsing behind a queue of abandoned calls.
 */
export function deadlinePassed(call: { getDeadline?: () => Deadline }, now = Date.now()): boolean {
  const deadline = call.getDeadline?.();
  if (deadline === undefined) return false;
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) && ms <= now;
}
