import type { Clock } from '../lib/clock.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Store } from '../store/index.js';
import type { DpopNonces, DpopVerifier } from '../tokens/index.js';
import type { AuditWriter } from './audit.js';
import type { FanOut } from './fanout.js';
import type { Kek } from './kek.js';
import type { Keyring } from './keyring.js';
import type { RevocationList } from './revocation_list.js';
import type { UpstreamProviders } from './upstream/registry.js';

/** The token module's settings in the units the code uses (seconds), resolved from config. */
export interface IssuerSettings {
  audience: string;
  /** Audiences a client may ask for with `resource` (RFC 8707), besides `audience`. */
  resources: readonly string[];
  accessTokenTtl: number;
  idTokenTtl: number;
  codeTtl: number;
  refreshIdle: number;
  refreshAbsolute: number;
  mfaTokenTtl: number;
  interactionTtl: number;
  lockout: { maxFailures: number; baseSeconds: number; maxSeconds: number };
  loginPerMinute: number;
  authorizePerMinute: number;
}

/** DPoP at the token endpoint and `/userinfo`; absent when `dpop.enabled` is false. */
export interface IssuerDpop {
  verify: DpopVerifier;
  /** Server nonces, when `dpop.require_nonce` is on. */
  nonces: DpopNonces | undefined;
  algorithms: readonly string[];
}

/** Everything a grant or endpoint needs, passed explicitly (no service locator). */
export interface IssuerContext {
  /** The issuer URL; known once the public listener is bound when not configured. */
  issuer(): string;
  settings: IssuerSettings;
  store: Store;
  kek: Kek;
  keyring: Keyring;
  revoked: RevocationList;
  /** Tells the other replicas about revocations and key rotations. */
  fanout: FanOut;
  audit: AuditWriter;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** argon2id hash of a random password, verified against for unknown and locked users. */
  dummyHash: string;
  dpop: IssuerDpop | undefined;
  /** External identity providers (`upstream_providers`): login, token exchange, brokered tokens. */
  upstream: UpstreamProviders;
}

export const nowSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);
