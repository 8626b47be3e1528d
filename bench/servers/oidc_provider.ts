/**
 * Peer: panva's node-oidc-provider (npm `oidc-provider`, the certified OpenID provider) issuing
 * client_credentials tokens as ES256 JWT access tokens (RFC 9068) for one resource, the same work
 * as Portcullis' token-client-credentials scenario: authenticate a client_secret_basic client,
 * sign a JWT. Its default in-memory adapter keeps nothing durable (Portcullis also writes an audit
 * row per issuance to SQLite), which the report says beside the ratio.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

/** The one client, `bench`, with the secret the bench process chose (env). */
const BENCH_CLIENT = { id: 'bench', secret: process.env.OIDC_PEER_CLIENT_SECRET ?? '' };
if (BENCH_CLIENT.secret.length < 16) throw new Error('OIDC_PEER_CLIENT_SECRET must be set (16+ characters)');
const RESOURCE = 'urn:bench:api';

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const provider = new Provider(`http://${address}`, {
  clients: [{ client_id: BENCH_CLIENT.id, client_secret: BENCH_CLIENT.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256', scope: 'read' }],
  jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'bench' }] },
  scopes: ['read'],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'read', audience: RESOURCE, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
    },
  },
});
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ msg: 'oidc-provider serving', grpc: address, http: address })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
