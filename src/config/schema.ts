import { z } from 'zod';

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
        warmup_checks: z.number().int().nonnegative().default(200).describe('Synthetic decisions run after each policy load before reporting SERVING (the WASM engine is slow on its first calls).'),
      })
      .strict()
      .prefault({})
      .describe('gRPC listener.'),
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
        driver: z.enum(['sqlite', 'memory']).default('sqlite').describe('Storage of users, clients, keys, refresh tokens and audit events. `memory` (an in-memory SQLite database) loses everything on exit and is refused in `mode: production`.'),
        sqlite_file: z.string().min(1).default('./data/portcullis.db').describe('SQLite database file (WAL mode); created with its folder on first start. Env `PORTCULLIS_SQLITE_FILE`.'),
      })
      .strict()
      .prefault({})
      .describe('Durable storage.'),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level. Env `PORTCULLIS_LOG_LEVEL`.'),
      })
      .strict()
      .prefault({})
      .describe('Logging.'),
    policies: z
      .object({
        dir: z.string().min(1).default('./policies').describe('Folder with `schema.cedarschema`, `*.cedar`, `routes.yaml`, `entities.json`. Env `PORTCULLIS_POLICIES_DIR`.'),
        shadow_dir: z.string().min(1).optional().describe('A candidate policy folder evaluated beside the active one on live traffic without affecting answers; disagreements are logged and counted in `auth_policy_shadow_disagreements_total`.'),
        watch: z.boolean().default(true).describe('Reload when a file in the folder changes (debounced). SIGHUP and `POST /admin/policies/reload` always reload.'),
        watch_debounce_ms: z.number().int().positive().default(250).describe('Quiet time after the last change before a watched reload.'),
        decision_cache_size: z.number().int().nonnegative().default(10000).describe('Decisions cached per loaded policy set, keyed on every input the evaluated slice can read (principal and its entities, action, resource, the context attributes its policies reference); 0 disables. Emptied on every reload.'),
      })
      .strict()
      .prefault({})
      .describe('Policy folder.'),
    observability: z
      .object({
        service_name: z.string().min(1).default('portcullis').describe('`service.name` of exported telemetry.'),
        tracing: z
          .object({
            enabled: z.boolean().default(false).describe('Export traces over OTLP/HTTP (protobuf). Off: no span is created on the Check path at all.'),
            endpoint: z.url().default('http://127.0.0.1:4318/v1/traces').describe('OTLP/HTTP traces endpoint (a collector).'),
            sample_rate: z.number().min(0).max(1).default(0.1).describe('Share of new traces recorded (parent-based: a sampled caller trace, from `traceparent`, is always continued).'),
            export_interval_ms: z.number().int().min(10).max(60000).default(5000).describe('How often batched spans are sent.'),
          })
          .strict()
          .prefault({})
          .describe('OpenTelemetry tracing.'),
      })
      .strict()
      .prefault({})
      .describe('Telemetry export.'),
    issuers: z.array(issuerSchema).default([]).describe('Trusted token issuers.'),
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
    if (c.mode === 'production' && c.store.driver === 'memory') {
      ctx.addIssue({ code: 'custom', path: ['store', 'driver'], message: 'the in-memory store is refused in mode: production' });
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
    if (c.dev_issuer.enabled && seen.has(c.dev_issuer.issuer)) {
      ctx.addIssue({ code: 'custom', path: ['dev_issuer', 'issuer'], message: 'collides with a configured issuer' });
    }
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type IssuerConfig = Config['issuers'][number];

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
