import type { ClientRecord, Store } from '../store/index.js';

/**
 * The client `POST /login` issues to when the caller names none: public, first-party, may
 * refresh. Created in the store on first start so refresh, revocation and introspection treat it
 * like any other client.
 */
export const BUILTIN_LOGIN_CLIENT = 'portcullis-login';

export async function ensureBuiltinClient(store: Store, now: number): Promise<void> {
  if (await store.clients.byId(BUILTIN_LOGIN_CLIENT)) return;
  const client: ClientRecord = {
    clientId: BUILTIN_LOGIN_CLIENT,
    name: 'Portcullis first-party login (POST /login)',
    type: 'public',
    authMethod: 'none',
    secretHash: null,
    jwks: null,
    grantTypes: ['refresh_token'],
    redirectUris: [],
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    roles: [],
    firstParty: true,
    createdAt: now,
  };
  try {
    await store.clients.create(client);
  } catch (err) {
    // Replicas starting together against one database: another one created it first.
    if (!(await store.clients.byId(BUILTIN_LOGIN_CLIENT))) throw err;
  }
}
