import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { CONFIG_ENV_VARS, loadConfig, type Config } from '../../src/config/index.js';

export const ROOT = new URL('../../', import.meta.url).pathname;

/** Every document of a multi-document YAML file, as plain objects; a YAML error fails the test. */
export function loadDocuments(path: string): Array<Record<string, any>> {
  return parseAllDocuments(readFileSync(join(ROOT, path), 'utf8')).map((doc, i) => {
    if (doc.errors.length) throw new Error(`${path} document ${i}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as Record<string, any>;
  });
}

export function loadYaml(path: string): Record<string, any> {
  return parseYaml(readFileSync(join(ROOT, path), 'utf8')) as Record<string, any>;
}

/** Stand-ins for what a Secret supplies through the environment: well-formed, never real. */
const SECRET_STAND_INS: Record<string, string> = {
  PORTCULLIS_STORE_URL: 'postgres://portcullis:stand-in@postgres:5432/portcullis',
  PORTCULLIS_CACHE_URL: 'redis://:stand-in@redis:6379/0',
  PORTCULLIS_KEK: 'A'.repeat(43),
  PORTCULLIS_ADMIN_API_KEY: 'stand-in-admin-key-0000',
};

/**
 * Validates a config file's text with the real loader, as the container sees it: the environment
 * variables its Deployment sets from a Secret get well-formed stand-ins. An unknown or bad key, or a
 * required value neither the file nor the Deployment supplies, fails the test.
 */
export function validateConfig(text: string, where: string, envNames: readonly string[] = []): Readonly<Config> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-deploy-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, text);
    const env = Object.fromEntries(envNames.map((name) => [name, SECRET_STAND_INS[name] ?? 'stand-in']));
    return loadConfig({ file, env });
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The env var names the Portcullis container of these documents sets. */
export function portcullisEnvNames(docs: Array<Record<string, any>>): string[] {
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const container = deployment?.spec.template.spec.containers.find((c: { name: string }) => c.name === 'portcullis');
  return (container?.env ?? []).map((e: { name: string }) => e.name);
}

/** Whether the configuration reads this environment variable (the list the loader itself uses). */
export function knownEnv(name: string): boolean {
  return CONFIG_ENV_VARS.includes(name);
}

export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}
