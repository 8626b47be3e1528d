import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { PortcullisError } from '../lib/errors.js';
import { configSchema, type Config } from './schema.js';
import { upstreamSecretEnv } from './upstream_schema.js';

export interface LoadConfigOptions {
  /** Path of the YAML file; falls back to env `PORTCULLIS_CONFIG`; none means all defaults. */
  file?: string | undefined;
  /** Environment to read overrides from (injected for tests). */
  env?: NodeJS.ProcessEnv;
}

/** Environment variables that override keys of the file. Only this module reads the environment. */
const ENV_OVERRIDES: ReadonlyArray<[string, string[], ((value: string) => unknown)?]> = [
  ['PORTCULLIS_MODE', ['mode']],
  ['PORTCULLIS_GRPC_ADDRESS', ['grpc', 'address']],
  ['PORTCULLIS_ADMIN_ADDRESS', ['admin', 'address']],
  ['PORTCULLIS_ADMIN_API_KEY', ['admin', 'api_key']],
  ['PORTCULLIS_HTTP_AUTHZ_ADDRESS', ['http_authz', 'address']],
  ['PORTCULLIS_LOG_LEVEL', ['observability', 'logging', 'level']],
  ['PORTCULLIS_HTTP_ADDRESS', ['http', 'address']],
  ['PORTCULLIS_KEK', ['token_module', 'kek']],
  ['PORTCULLIS_SQLITE_FILE', ['store', 'sqlite_file']],
  ['PORTCULLIS_CACHE_URL', ['cache', 'url']],
  ['PORTCULLIS_STORE_URL', ['store', 'url']],
  ['PORTCULLIS_POLICIES_DIR', ['policies', 'dir']],
  ['PORTCULLIS_WORKERS', ['workers'], (v) => (/^\d+$/.test(v) ? Number(v) : v)],
];

/** Every environment variable the configuration reads (`PORTCULLIS_CONFIG` names the file). */
export const CONFIG_ENV_VARS: readonly string[] = ['PORTCULLIS_CONFIG', ...ENV_OVERRIDES.map(([name]) => name)];

/** Loads, validates and freezes the configuration; throws ERR_CONFIG_INVALID naming every bad key path. */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<Config> {
  const env = options.env ?? process.env;
  const file = options.file ?? env.PORTCULLIS_CONFIG;
  const raw = file ? readYaml(file) : {};
  for (const [name, path, convert] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, path, convert ? convert(value) : value);
  }
  upstreamSecretsFromEnv(raw, env);
  return parseConfig(raw, file ?? '(defaults)');
}

export function parseConfig(raw: unknown, source = '(inline)'): Readonly<Config> {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}${movedKeyHint(i)}`);
    throw new PortcullisError('ERR_CONFIG_INVALID', `invalid configuration in ${source}:\n${lines.join('\n')}`);
  }
  return deepFreeze(result.data);
}

/** Keys that moved keep a pointer to their new place in the error. */
function movedKeyHint(issue: { code: string; path: PropertyKey[]; keys?: string[] }): string {
  return issue.code === 'unrecognized_keys' && issue.path.length === 0 && issue.keys?.includes('log') ? ' (`log.level` moved to `observability.logging.level`)' : '';
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new PortcullisError('ERR_CONFIG_INVALID', `cannot read config file ${file}: ${(cause as Error).message}`, { cause });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (cause) {
    throw new PortcullisError('ERR_CONFIG_INVALID', `config file ${file} is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PortcullisError('ERR_CONFIG_INVALID', `config file ${file} must hold a mapping at the top level`);
  }
  // An empty section (`grpc:` with nothing under it) means its defaults.
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== null));
}

/** `PORTCULLIS_UPSTREAM_<ID>_CLIENT_SECRET` sets the client secret of the upstream provider with that id. */
function upstreamSecretsFromEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  if (!Array.isArray(raw.upstream_providers)) return;
  for (const p of raw.upstream_providers as unknown[]) {
    if (!p || typeof p !== 'object' || typeof (p as { id?: unknown }).id !== 'string') continue;
    const value = env[upstreamSecretEnv((p as { id: string }).id)];
    if (value !== undefined && value !== '') (p as Record<string, unknown>).client_secret = value;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
