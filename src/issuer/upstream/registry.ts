import type { UpstreamProviderConfig } from '../../config/index.js';
import { createUpstreamProvider, type UpstreamProvider, type UpstreamProviderDeps } from './provider.js';

/** The configured upstream providers, by id and by issuer. */
export interface UpstreamProviders {
  readonly list: readonly UpstreamProvider[];
  get(id: string): UpstreamProvider | undefined;
  byIssuer(issuer: string): UpstreamProvider | undefined;
  /** True when some provider allows some client to exchange its tokens (discovery advertises the grant). */
  readonly exchangeEnabled: boolean;
  /** Starts each provider's key refresh and discovery in the background; a provider that is down does not hold anything back. */
  start(): void;
  stop(): void;
}

export function createUpstreamProviders(configs: readonly Readonly<UpstreamProviderConfig>[], deps: UpstreamProviderDeps): UpstreamProviders {
  const list = configs.map((c) => createUpstreamProvider(c, deps));
  const byId = new Map(list.map((p) => [p.id, p]));
  const byIssuer = new Map(list.map((p) => [p.issuer, p]));
  return {
    list,
    get: (id) => byId.get(id),
    byIssuer: (issuer) => byIssuer.get(issuer),
    exchangeEnabled: list.some((p) => p.settings.token_exchange_clients.length > 0),
    start() {
      for (const p of list) {
        void p.keys.start();
        // Failures are logged by the provider and retried on first use.
        void p.client().catch(() => undefined);
      }
    },
    stop() {
      for (const p of list) p.keys.stop();
    },
  };
}
