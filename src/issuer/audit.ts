import type { Logger } from '../telemetry/logger.js';
import type { AuditOutcome, Store } from '../store/index.js';
import type { Clock } from '../lib/clock.js';
import { keyedHash } from './secrets.js';

export interface AuditEntry {
  userId?: string | null | undefined;
  clientId?: string | null | undefined;
  ip?: string | null | undefined;
  reason?: string | null | undefined;
  details?: Record<string, unknown>;
}

/** Writes security events as durable store rows; users appear only as keyed hashes. */
export interface AuditWriter {
  record(type: string, outcome: AuditOutcome, entry?: AuditEntry): Promise<void>;
  /** The keyed hash used for a user id in audit rows, logs and traces. */
  userRef(userId: string): string;
}

export function createAuditWriter({ store, clock, logger, userKey }: { store: Store; clock: Clock; logger: Logger; userKey: Buffer }): AuditWriter {
  const userRef = (id: string) => keyedHash(userKey, id);
  return {
    userRef,
    async record(type, outcome, e = {}) {
      const row = {
        at: clock.now(),
        type,
        outcome,
        actor: e.userId ? userRef(e.userId) : null,
        clientId: e.clientId ?? null,
        ip: e.ip ?? null,
        reason: e.reason ?? null,
        details: e.details ?? {},
      };
      try {
        await store.audit.append(row);
      } catch (err) {
        logger.error({ err, audit_type: type }, 'could not write audit event');
      }
      logger.info({ audit: { type, outcome, actor: row.actor, client_id: row.clientId, reason: row.reason } }, 'audit');
    },
  };
}
