import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { PortcullisError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';

/**
 * The development issuer: one ES256 key kept in a local file, trusted in-process by the
 * server and used by `portcullis token mint`. For trying Portcullis by hand; refused in production.
 */
export interface DevIssuer {
  issuer: string;
  audience: string;
  publicJwk: JWK;
  mint(claims: MintClaims): Promise<string>;
}

export interface MintClaims {
  sub: string;
  roles?: string[];
  scope?: string;
  amr?: string[];
  ttlSeconds?: number;
  extra?: Record<string, unknown>;
}

export interface DevIssuerOptions {
  issuer: string;
  audience: string;
  keyFile: string;
  clock: Clock;
}

export async function loadDevIssuer({ issuer, audience, keyFile, clock }: DevIssuerOptions): Promise<DevIssuer> {
  const privateJwk = existsSync(keyFile) ? readKey(keyFile) : await createKey(keyFile);
  const { d: _d, ...publicJwk } = privateJwk;
  const key = await importJWK(privateJwk, 'ES256');
  return {
    issuer,
    audience,
    publicJwk,
    async mint(c: MintClaims): Promise<string> {
      const now = Math.floor(clock.now() / 1000);
      return new SignJWT({ ...c.extra, roles: c.roles ?? [], scope: c.scope ?? '', amr: c.amr ?? ['pwd'], client_id: 'portcullis-dev' })
        .setProtectedHeader({ alg: 'ES256', kid: privateJwk.kid!, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(c.sub)
        .setIssuedAt(now)
        .setExpirationTime(now + (c.ttlSeconds ?? 3600))
        .setJti(randomUUID())
        .sign(key);
    },
  };
}

function readKey(file: string): JWK {
  try {
    const jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d || !jwk.kid) throw new Error('not an ES256 private JWK with a kid');
    return jwk;
  } catch (cause) {
    throw new PortcullisError('ERR_CONFIG_INVALID', `dev_issuer.key_file ${file}: ${(cause as Error).message}`, { cause });
  }
}

async function createKey(file: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const full: JWK = { ...jwk, alg: 'ES256', use: 'sig', kid: await calculateJwkThumbprint(jwk) };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(full, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
  return full;
}
