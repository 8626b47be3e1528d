import { z } from 'zod';
import { DEFAULT_MAX_CONCURRENT_STREAMS } from '../grpc/limits.js';
import { checkUpstreamProviders, upstreamProvidersSchema } from './upstream_schema.js';
import { checkObservability, observabilitySchema } from './observability.js';

/**
 * The whole configuration, declared once. Every key has a default and a doc line
 * (`describe`); `portcullis config schema` prints this as JSON Schema and the README's
 * reference is checked against it by a test.
 */

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port (IPv6 in brackets)');

export const ALLOWED_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
  'Ed25519',
] as const;

const jwksSchema = z
  .object({
    refresh_min_seconds: z.number().int().positive().default(60).describe('Lower bound for the background refresh interval; Cache-Control max-age below it is raised to it.'),
    refresh_max_seconds: z.number().int().positive().default(3600).describe('Upper bound for the background refresh interval; also used when the response has no Cache-Control max-age.'),
    cooldown_seconds: z.number().int().nonnegative().default(30).describe('At most one refetch per this many seconds when a token names an unknown kid.'),
    stale_seconds: z.number().int().nonnegative().default(86400).describe('How long the last good keys keep serving after the endpoint starts failing.'),
    fetch_timeout_ms: z.number().int().positive().default(5000).describe('Timeout of one JWKS or discovery HTTP request.'),
    request_budget_ms: z.number().int().positive().default(250).describe('The longest a Check waits for a JWKS fetch it triggered (first load or unknown kid); past it the Check is denied and the fetch completes in the background.'),
    max_bytes: z.number().int().positive().default(512 * 1024).describe('Largest JWKS or discovery document accepted.'),
  })
  .strict()
  .prefault({});

const issuerSchema = z
  .object({
    issuer: z.string().min(1).describe('The exact `iss` value tokens of this issuer carry; selects the issuer for a token.'),
    jwks_uri: z.url().optional().describe('JWKS endpoint. Either this or `discovery: true`.'),
    discovery: z.boolean().default(false).describe('Read `jwks_uri` from `<issuer>/.well-known/openid-configuration`.'),
    audiences: z.array(z.string().min(1)).default([]).describe('Accepted `aud` values; a token must carry one of them. Empty accepts any audience.'),
    algorithms: z.array(z.enum(ALLOWED_ALGORITHMS)).min(1).default(['ES256', 'RS256', 'EdDSA']).describe('Allow-list of JWS algorithms. `none` and HMAC are never accepted.'),
    clock_skew_seconds: z.number().int().nonnegative().max(300).default(30).describe('Tolerance for `exp`, `nbf` and `iat`.'),
    required_typ: z.string().optional().describe('When set, the JWT header `typ` must equal it (e.g. `at+jwt`, RFC 9068).'),
    roles_claim: z.string().min(1).default('roles').describe('Dotted path of the claim that holds the roles (e.g. `realm_access.roles`).'),
    scope_claim: z.string().min(1).default('scope').describe('Claim holding the scopes (space-separated string or array).'),
    jwks: jwksSchema.describe('JWKS cache behaviour for this issuer.'),
  })
  .strict()
  .refine((i) => Boolean(i.jwks_uri) !== i.discovery, {
    message: 'set exactly one of `jwks_uri` or `discovery: true`',
    path: ['jwks_uri'],
  });

const signingAlgorithms = ['ES256', 'EdDSA', 'RS256'] as const;

const dpopSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Accept DPoP (RFC 9449): the token endpoint binds tokens to the key of a `DPoP` proof (`cnf.jkt`, `token_type: DPoP`), and the ext_authz path, the app API and `/userinfo` accept such tokens only as `Authorization: DPoP` with a valid proof. Off: DPoP-bound tokens are refused everywhere.'),
    algorithms: z.array(z.enum(ALLOWED_ALGORITHMS)).min(1).default(['ES256', 'ES384', 'EdDSA', 'Ed25519', 'PS256', 'RS256']).describe('Algorithms a proof may be signed with (asymmetric only); advertised as `dpop_signing_alg_values_supported`.'),
    iat_window_seconds: z.number().int().min(1).max(600).default(60).describe('A proof is accepted when its `iat` is at most this far from now, either way; its `jti` is remembered for twice as long so it is accepted once.'),
    htu_origins: z.array(z.url()).default([]).describe('Origins (`https://api.example.com`) a proof checked on the ext_authz path may name in `htu`, for deployments behind a proxy that rewrites the host. Empty: the scheme and `:authority` Envoy reports.'),
    require_nonce: z.boolean().default(false).describe('The token endpoint requires a server nonce in every proof (`use_dpop_nonce` error with a `DPoP-Nonce` header, RFC 9449 §8). Replicas sharing the key-encryption key accept each other\'s nonces.'),
    nonce_lifetime_seconds: z.number().int().min(10).max(3600).default(300).describe('A server nonce stays valid between one and two of these periods.'),
    max_proof_bytes: z.number().int().min(256).max(65536).default(8192).describe('Longest `DPoP` header accepted before any parsing.'),
  })
  .strict()
  .prefault({});

const tokenModuleSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Serve the embedded token module (login, OAuth 2.1 / OIDC endpoints) on `http.address`; its keys are trusted in-process by the ext_authz path.'),
    issuer: z.url().optional().describe('`iss` of issued tokens and base URL of the endpoints. Unset: `http://<http.address>` as bound (required in `mode: production`).'),
    audience: z.string().min(1).default('portcullis').describe('`aud` of access tokens when the request names no `resource`.'),
    resources: z.array(z.url()).default([]).describe('Further audiences a client may request with `resource` (RFC 8707); each must also be accepted by the service that checks the token.'),
    signing_alg: z.enum(signingAlgorithms).default('ES256').describe('Algorithm of newly generated signing keys.'),
    access_token_ttl_seconds: z.number().int().min(30).max(86400).default(600).describe('Lifetime of access tokens.'),
    id_token_ttl_seconds: z.number().int().min(30).max(86400).default(600).describe('Lifetime of ID tokens.'),
    authorization_code_ttl_seconds: z.number().int().min(10).max(600).default(60).describe('Lifetime of authorization codes (single use).'),
    refresh_token_idle_seconds: z.number().int().positive().default(7 * 86400).describe('A refresh token unused for this long expires (idle timeout).'),
    refresh_token_absolute_seconds: z.number().int().positive().default(30 * 86400).describe('Absolute lifetime of a refresh-token family, however often it is rotated.'),
    mfa_token_ttl_seconds: z.number().int().min(30).max(1800).default(300).describe('How long the `mfa_token` from `/login` stays usable for `/login/mfa`.'),
    interaction_ttl_seconds: z.number().int().min(60).max(3600).default(600).describe('How long a login page (an authorization request in progress) stays usable.'),
    key_rotation: z
      .object({
        interval_seconds: z.number().int().nonnegative().default(0).describe('Rotate the signing key on this schedule; 0: only by `portcullis keys rotate` or `POST /admin/keys/rotate`.'),
        prepublish_seconds: z.number().int().nonnegative().default(3600).describe('A new key is in the JWKS this long before it signs, so relying parties caching the JWKS know it first.'),
        reload_seconds: z.number().int().positive().default(60).describe('How often keys are re-read from the store (rotations by the CLI or another replica); SIGHUP re-reads at once.'),
      })
      .strict()
      .prefault({})
      .describe('Signing key rotation.'),
    lockout: z
      .object({
        max_failures: z.number().int().positive().default(5).describe('Consecutive failed logins before an account is locked.'),
        base_seconds: z.number().int().positive().default(30).describe('First lock duration; doubles with each further failure.'),
        max_seconds: z.number().int().positive().default(3600).describe('Longest lock duration.'),
      })
      .strict()
      .prefault({})
      .describe('Per-account lockout with exponential back-off.'),
    rate_limit: z
      .object({
        login_per_minute: z.number().int().nonnegative().default(30).describe('Login attempts (`/login`, `/login/mfa`, login pages) per client IP per minute; 0 disables.'),
        authorize_per_minute: z.number().int().nonnegative().default(120).describe('Authorization requests (`/oauth2/authorize`, each stores a login-page interaction) per client IP per minute; 0 disables.'),
      })
      .strict()
      .prefault({})
      .describe('Per-client-IP rate limit of login attempts.'),
    kek: z.string().optional().describe('Key-encryption key (base64url, 32 bytes) for TOTP secrets and private signing keys at rest. Env `PORTCULLIS_KEK`. Unset: read from (or, outside production, generated into) `kek_file`.'),
    kek_file: z.string().min(1).default('./data/kek').describe('Where the key-encryption key is kept when `kek` is unset; generated on first start in development.'),
  })
  .strict()
  .prefault({});

export const configSchema = z
  .object({
    mode: z.enum(['development', 'production']).default('development').describe('`production` refuses unsafe defaults: the development issuer, the in-memory store, a generated key-encryption key, an unset token-module issuer URL.'),
    grpc: z
      .object({
        address: hostPort.default('127.0.0.1:9191').describe('Listen address of the gRPC server (Envoy ext_authz, health). Env `PORTCULLIS_GRPC_ADDRESS`.'),
        max_receive_message_bytes: z.number().int().positive().default(4 * 1024 * 1024).describe('Largest accepted gRPC message (a CheckRequest with a body can be large).'),
        max_concurrent_streams: z
          .number()
          .int()
          .min(1)
          .default(DEFAULT_MAX_CONCURRENT_STREAMS)
          .describe(
            'HTTP/2 streams (calls in flight) one client connection may hold, advertised in SETTINGS_MAX_CONCURRENT_STREAMS. Bounds the memory a burst or an overloaded client can pin; Envoy opens another connection to the cluster when one is full (within its circuit breakers).',
          ),
        warmup_checks: z.number().int().nonnegative().default(200).describe('Synthetic decisions run after each policy load before reporting SERVING (the WASM engine is slow on its first calls).'),
      })
      .strict()
      .prefault({})
      .describe('gRPC listener.'),
    workers: z
      .union([z.literal('auto'), z.number().int().min(1).max(64)], { error: 'must be a whole number from 1 to 64, or auto' })
      .default(1)
      .describe('Processes serving the gRPC listener (Envoy Check, the app API, gRPC health). 1: this process. N > 1 or `auto` (one per CPU it may use, lowered to the cgroup CPU quota of its container): N cluster workers share the port (round-robin over connections), each with its own policy engine and token cache; this process keeps the token module, the store, the admin, public and HTTP ext_authz listeners, and relays policy reloads, signing keys, revocations and the memory cache to the workers. Env `PORTCULLIS_WORKERS`.'),
    admin: z
      .object({
        address: hostPort.default('127.0.0.1:9001').describe('Listen address of the admin HTTP server (`/metrics`, `/health`, `/ready`, `/admin/*`). Env `PORTCULLIS_ADMIN_ADDRESS`.'),
        api_key: z.string().min(16, 'must be at least 16 characters').optional().describe('Key required on `/admin/*` (Bearer, or basic-auth password), compared in constant time. Env `PORTCULLIS_ADMIN_API_KEY`. Unset: `/admin/*` refuses every request.'),
      })
      .strict()
      .prefault({})
      .describe('Admin listener.'),
    http_authz: z
      .object({
        address: hostPort.optional().describe("Listen address of Envoy's HTTP ext_authz protocol (`envoyExtAuthzHttp` in Istio); unset: not served. Env `PORTCULLIS_HTTP_AUTHZ_ADDRESS`."),
        path_prefix: z.string().default('').describe('The `path_prefix` Envoy adds to checked paths; removed before routing.'),
      })
      .strict()
      .prefault({})
      .describe('HTTP ext_authz listener.'),
    http: z
      .object({
        address: hostPort.default('127.0.0.1:9000').describe('Listen address of the public HTTP server: the token module (login, OAuth 2.1 / OIDC endpoints, JWKS) and `/health`, `/ready`. Env `PORTCULLIS_HTTP_ADDRESS`.'),
        trusted_proxy_hops: z.number().int().min(0).max(10).default(0).describe('Proxies in front of this listener that append to `X-Forwarded-For` (e.g. 1 behind one Envoy); the client IP for login rate limits and audit is taken that many hops from the right. 0: the socket address.'),
      })
      .strict()
      .prefault({})
      .describe('Public HTTP listener.'),
    token_module: tokenModuleSchema.describe('Embedded token module: users, login with MFA, OAuth 2.1 / OpenID Connect issuance, signing keys.'),
    store: z
      .object({
        driver: z
          .enum(['sqlite', 'postgres', 'memory'])
          .default('sqlite')
          .describe('Storage of users, clients, keys, refresh tokens and audit events. `sqlite`: one file, one process. `postgres`: one database shared by several replicas (`store.url`). `memory` (an in-memory SQLite database) loses everything on exit and is refused in `mode: production`.'),
        sqlite_file: z.string().min(1).default('./data/portcullis.db').describe('SQLite database file (WAL mode); created with its folder on first start. Env `PORTCULLIS_SQLITE_FILE`.'),
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
          .optional()
          .describe('PostgreSQL connection URL for `driver: postgres`: `postgres://user:password@host:5432/database`, libpq parameters such as `sslmode=verify-full` in the query. Env `PORTCULLIS_STORE_URL`. Shown with its password redacted by `config check`.'),
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case identifier (a-z, 0-9, _)')
          .default('public')
          .describe('PostgreSQL schema holding the tables; created at the first start when missing (needs CREATE on the database then).'),
        pool_size: z.number().int().min(1).max(200).default(10).describe('PostgreSQL connections per process (each replica opens up to this many).'),
        connect_timeout_ms: z.number().int().min(100).max(60000).default(5000).describe('Longest wait for a PostgreSQL connection, and for the retries of a read after a lost connection; past it the request answers 503.'),
        statement_timeout_ms: z.number().int().min(100).max(600000).default(5000).describe('PostgreSQL `statement_timeout` of every query (the client gives up a second later); a timed-out request answers 503.'),
      })
      .strict()
      .prefault({})
      .describe('Durable storage.'),
    cache: z
      .object({
        driver: z.enum(['memory', 'redis']).default('memory').describe('Shared short-lived state: login and authorize rate limits, DPoP proof `jti` replay, revocation and key-rotation fan-out. `memory` holds it in this process (fine for one replica); several replicas need `redis`, so limits count across them and a revocation or new key reaches every replica within a second.'),
        url: z
          .string()
          .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// (TLS) URL')
          .optional()
          .describe('Redis URL, `redis://[user:password@]host:port[/db]` or `rediss://` for TLS; required with `driver: redis`. Env `PORTCULLIS_CACHE_URL`. `config check` redacts its password.'),
        key_prefix: z.string().min(1).max(64).default('portcullis:').describe('Prefix of every Redis key and pub/sub channel, so several deployments can share one Redis.'),
        command_timeout_ms: z.number().int().min(10).max(10000).default(500).describe('Longest wait for one Redis command; past it (or at once while disconnected) the call fails with ERR_CACHE instead of holding the request.'),
        connect_timeout_ms: z.number().int().min(100).max(60000).default(5000).describe('Longest wait for a Redis connection at start (the server refuses to start without one) and for each reconnect attempt.'),
        max_entries: z.number().int().positive().default(1_000_000).describe('`memory` driver: most keys held (one-time values and rate-limit windows); past it the oldest go first.'),
      })
      .strict()
      .prefault({})
      .describe('Shared short-lived state (rate limits, replay cache, fan-out).'),
    policies: z
      .object({
        dir: z.string().min(1).default('./policies').describe('Folder with `schema.cedarschema`, `*.cedar`, `routes.yaml`, `entities.json`. Env `PORTCULLIS_POLICIES_DIR`.'),
        shadow_dir: z.string().min(1).optional().describe('A candidate policy folder evaluated beside the active one on live traffic without affecting answers; disagreements are logged and counted in `auth_policy_shadow_disagreements_total`.'),
        watch: z.boolean().default(true).describe('Reload when a file in the folder changes (debounced). SIGHUP and `POST /admin/policies/reload` always reload.'),
        watch_debounce_ms: z.number().int().positive().default(250).describe('Quiet time after the last change before a watched reload.'),
        max_file_bytes: z.number().int().positive().default(1024 * 1024).describe('Largest file of the policy folder (`.cedar`, schema, `routes.yaml`, `entities.json`); a larger one fails the load with an error naming the file, and the last good set keeps serving.'),
        decision_cache_size: z.number().int().nonnegative().default(10000).describe('Decisions cached per loaded policy set, keyed on every input the evaluated slice can read (principal and its entities, action, resource, the context attributes its policies reference); 0 disables. Emptied on every reload.'),
      })
      .strict()
      .prefault({})
      .describe('Policy folder.'),
    observability: observabilitySchema.describe('Telemetry: logs, metrics, traces, decision log.'),
    issuers: z.array(issuerSchema).default([]).describe('Trusted token issuers.'),
    dpop: dpopSchema.describe('Sender-constrained tokens (DPoP, RFC 9449).'),
    upstream_providers: upstreamProvidersSchema(jwksSchema, ALLOWED_ALGORITHMS).default([]).describe('External OpenID Connect providers for login ("Sign in with …"), token exchange and brokered upstream tokens.'),
    dev_issuer: z
      .object({
        enabled: z.boolean().default(true).describe('Trust a local development issuer whose key is generated on first start (refused in `mode: production`). `portcullis token mint` signs with it.'),
        issuer: z.string().min(1).default('urn:portcullis:dev').describe('`iss` of development tokens.'),
        audience: z.string().min(1).default('portcullis').describe('`aud` of development tokens.'),
        key_file: z.string().min(1).default('./data/dev-issuer-key.json').describe('Where the development signing key (private JWK) is kept.'),
      })
      .strict()
      .prefault({})
      .describe('Development issuer, for trying Portcullis by hand.'),
    request_body: z
      .object({
        max_bytes: z.number().int().positive().default(64 * 1024).describe('Largest forwarded request body (Envoy `with_request_body`) parsed into `context.body` (JSON or form-urlencoded); a larger one is a 400.'),
      })
      .strict()
      .prefault({})
      .describe('Request bodies forwarded by the proxy.'),
    limits: z
      .object({
        max_header_count: z.number().int().positive().default(200).describe('Most headers (pseudo-headers included, each repeated value counted) one checked request may carry; more is a 400 naming the limit.'),
        max_header_bytes: z.number().int().positive().default(64 * 1024).describe('Largest total size (names and values, UTF-8 bytes) of the headers of one checked request; more is a 400 naming the limit.'),
        max_token_bytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024).describe('Longest bearer token accepted; a longer one is refused as `invalid_token` before any parsing or hashing.'),
        max_entities: z.number().int().positive().default(5000).describe('Most entities one call may supply (app API: `entities`, an explicit principal, resources with attributes or parents) and one decision may be evaluated with (principal, its roles and their ancestors, the resource and its ancestors); more is a 400 / INVALID_ARGUMENT naming the limit.'),
      })
      .strict()
      .prefault({})
      .describe('Input limits of checked requests (see also `grpc.max_receive_message_bytes`, `request_body.max_bytes`, `issuers[].jwks.max_bytes`, `policies.max_file_bytes`).'),
    token_cache: z
      .object({
        max_entries: z.number().int().nonnegative().default(10000).describe('Verified tokens kept in memory (0 disables the cache). An entry never outlives the token `exp`.'),
      })
      .strict()
      .prefault({})
      .describe('Verified-token cache.'),
    lifecycle: z
      .object({
        drain_seconds: z.number().min(0).max(300).default(5).describe('After SIGTERM/SIGINT, how long every listener keeps answering while gRPC health reports `NOT_SERVING` and `/ready` 503, so Envoy health checks and Kubernetes endpoints move traffic away first; HTTP answers carry `Connection: close` meanwhile. A second signal exits at once (code 128 + signal number).'),
        shutdown_timeout_seconds: z.number().positive().max(300).default(10).describe('After the drain window the listeners stop accepting; requests still in flight get this long to finish before their connections are cut. Exit code 0 when every request finished, 1 when some were cut.'),
        store_unavailable_exit_seconds: z.number().int().min(0).default(60).describe('In `mode: production`, exit with code 1 (through the drain above) once the store has failed its health ping for this long, so the orchestrator restarts the process; 0 never exits. Outside production a lost store only turns `/health` 503.'),
      })
      .strict()
      .prefault({})
      .describe('Start-up, shutdown and self-healing of the process.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.mode === 'production' && c.dev_issuer.enabled) {
      ctx.addIssue({ code: 'custom', path: ['dev_issuer', 'enabled'], message: 'the development issuer is refused in mode: production (set dev_issuer.enabled: false)' });
    }
    if (c.store.driver === 'postgres' && !c.store.url) {
      ctx.addIssue({ code: 'custom', path: ['store', 'url'], message: 'is required with store.driver: postgres (or env PORTCULLIS_STORE_URL)' });
    }
    if (c.mode === 'production' && c.store.driver === 'memory') {
      ctx.addIssue({ code: 'custom', path: ['store', 'driver'], message: 'the in-memory store is refused in mode: production' });
    }
    if (c.cache.driver === 'redis' && !c.cache.url) {
      ctx.addIssue({ code: 'custom', path: ['cache', 'url'], message: 'is required with cache.driver: redis (env PORTCULLIS_CACHE_URL)' });
    }
    if (c.cache.driver === 'memory' && c.cache.url) {
      ctx.addIssue({ code: 'custom', path: ['cache', 'driver'], message: 'cache.url is set but cache.driver is memory: set cache.driver: redis to use it, or remove the URL' });
    }
    if (c.mode === 'production' && c.token_module.enabled && !c.token_module.issuer) {
      ctx.addIssue({ code: 'custom', path: ['token_module', 'issuer'], message: 'must be set in mode: production (the public https URL of this token module)' });
    }
    if (c.mode === 'production' && c.token_module.enabled && c.token_module.issuer && !c.token_module.issuer.startsWith('https://')) {
      ctx.addIssue({ code: 'custom', path: ['token_module', 'issuer'], message: 'must be an https URL in mode: production' });
    }
    if (c.token_module.kek !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(c.token_module.kek)) {
      ctx.addIssue({ code: 'custom', path: ['token_module', 'kek'], message: 'must be 32 bytes in base64url (43 characters)' });
    }
    if (c.token_module.refresh_token_idle_seconds > c.token_module.refresh_token_absolute_seconds) {
      ctx.addIssue({ code: 'custom', path: ['token_module', 'refresh_token_idle_seconds'], message: 'must not exceed refresh_token_absolute_seconds' });
    }
    if (c.token_module.enabled && c.token_module.issuer && c.issuers.some((i) => i.issuer === c.token_module.issuer)) {
      ctx.addIssue({ code: 'custom', path: ['token_module', 'issuer'], message: 'collides with a configured issuer (the token module is trusted in-process)' });
    }
    const seen = new Set<string>();
    c.issuers.forEach((i, n) => {
      if (seen.has(i.issuer)) ctx.addIssue({ code: 'custom', path: ['issuers', n, 'issuer'], message: `duplicate issuer ${i.issuer}` });
      seen.add(i.issuer);
      if (i.jwks.refresh_min_seconds > i.jwks.refresh_max_seconds) {
        ctx.addIssue({ code: 'custom', path: ['issuers', n, 'jwks', 'refresh_min_seconds'], message: 'must not exceed refresh_max_seconds' });
      }
    });
    checkUpstreamProviders(c.upstream_providers, { production: c.mode === 'production', tokenModuleIssuer: c.token_module.issuer, tokenModuleEnabled: c.token_module.enabled }, ctx);
    if (c.dev_issuer.enabled && seen.has(c.dev_issuer.issuer)) {
      ctx.addIssue({ code: 'custom', path: ['dev_issuer', 'issuer'], message: 'collides with a configured issuer' });
    }
    for (const issue of checkObservability(c.observability)) ctx.addIssue({ code: 'custom', ...issue });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type IssuerConfig = Config['issuers'][number];
export type UpstreamProviderConfig = Config['upstream_providers'][number];

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
