import { isUtf8 } from 'node:buffer';
import { withoutStack } from '../lib/errors.js';
/** A compact JWS split and decoded once: the protected header and payload as JSON objects. */
export interface CompactJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** ASCII `header.payload`, what the signature covers. */
  signingInput: Buffer;
  signature: Buffer;
}

/** Three base64url segments: the cheap shape check run before any decoding. */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Why a compact JWS could not be decoded (the caller maps it to its own error). */
export class UndecodableJws extends Error {}

/** Undecodable input is an expected outcome (garbage tokens and proofs): no stack trace is captured. */
const undecodable = (message: string, cause?: unknown): UndecodableJws => withoutStack(() => new UndecodableJws(message, cause === undefined ? undefined : { cause }));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits `token` (already known to be three base64url segments) and decodes its header and
 * payload: strict base64url (a segment of length 4n+1 cannot be base64 at all and is refused, so
 * no two token strings carry the same signature bytes), strict UTF-8, and JSON objects only.
 */
export function decodeCompactJws(token: string): CompactJws {
  const first = token.indexOf('.');
  const last = token.lastIndexOf('.');
  if (first <= 0 || last === first || last === token.length - 1) throw undecodable('not three non-empty segments');
  return {
    header: jsonObject(token.slice(0, first), 'header'),
    payload: jsonObject(token.slice(first + 1, last), 'payload'),
    signingInput: Buffer.from(token.slice(0, last), 'latin1'),
    signature: base64url(token.slice(last + 1), 'signature'),
  };
}

function base64url(segment: string, what: string): Buffer {
  if (segment.length % 4 === 1) throw undecodable(`${what} is not base64url`);
  return Buffer.from(segment, 'base64url');
}

function jsonObject(segment: string, what: string): Record<string, unknown> {
  const bytes = base64url(segment, what);
  // Checked first, so that the fatal decoder never throws (an exception with a stack per garbage token).
  if (!isUtf8(bytes)) throw undecodable(`${what} is not UTF-8`);
  let value: unknown;
  try {
    value = withoutStack(() => JSON.parse(utf8.decode(bytes)) as unknown);
  } catch (cause) {
    throw undecodable(`${what} is not JSON`, cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw undecodable(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
