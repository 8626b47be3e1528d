import type { JWK } from 'jose';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/index.js';
import type { IssuerPolicy } from '../tokens/index.js';

/**
 * The IPC protocol between the primary (token module, store, admin and public listeners) and the
 * cluster workers that serve gRPC (`workers: N`). Messages are plain JSON over the cluster channel;
 * every one carries `pc` so messages of other libraries on the same channel are ignored.
 */

/** A published signing key of the embedded token module and when it leaves the JWKS (ms, or null). */
export interface MirroredKey {
  jwk: JWK;
  retiresAt: number | null;
}

/** What a worker needs to trust the embedded token module's tokens without a store of its own. */
export interface MirroredIssuer {
  policy: IssuerPolicy;
  keys: MirroredKey[];
  revoked: string[];
}

export type CacheOp = { op: 'addOnce'; key: string; ttlMs: number } | { op: 'increment'; key: string; windowMs: number } | { op: 'publish'; channel: string; message: string } | { op: 'subscribe'; channel: string } | { op: 'ping' };

export type ToWorker =
  | { pc: 'init'; config: Config; issuer: MirroredIssuer | undefined; subjectKey: string }
  | { pc: 'keys'; keys: MirroredKey[] }
  | { pc: 'revoked'; jtis: string[]; full: boolean }
  | { pc: 'policies.reload'; id: number; set: 'active' | 'shadow' }
  | { pc: 'drain' }
  | { pc: 'shutdown'; timeoutMs: number }
  | { pc: 'metrics.req'; id: number }
  | { pc: 'cache.res'; id: number; ok: true; value: unknown }
  | { pc: 'cache.res'; id: number; ok: false; error: string }
  | { pc: 'cache.msg'; channel: string; message: string };

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

export type FromWorker =
  /** The worker listens for messages now (anything sent before its code ran would be lost). */
  | { pc: 'hello' }
  | { pc: 'ready'; port: number }
  | { pc: 'failed'; error: string }
  | { pc: 'policies.reloaded'; id: number; ok: boolean; revision?: string; error?: string }
  | { pc: 'metrics.res'; id: number; metrics: WorkerMetrics }
  | { pc: 'cache.req'; id: number; request: CacheOp }
  | { pc: 'closed'; clean: boolean };

export function isProtocolMessage(m: unknown): m is { pc: string } {
  return typeof m === 'object' && m !== null && typeof (m as { pc?: unknown }).pc === 'string';
}
