/**
 * The one place that imports cedar-wasm. The bare package import fails on Node 20;
 * the `nodejs` build is the one that loads there.
 */
import './wasm_compile_threads.js';
import './js_wasm_inlining.js';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

export { cedar };
export type {
  DetailedError,
  EntityJson,
  EntityUidJson,
  PolicyJson,
  CedarValueJson,
  SchemaJson,
  Context as CedarContext,
} from '@cedar-policy/cedar-wasm/nodejs';

import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs';

/** `file:line:col message` for each error; `offset` places policy-relative locations inside the file. */
export function describeCedarErrors(file: string, source: string, errors: DetailedError[], offset = 0): string[] {
  return errors.map((e) => {
    const start = e.sourceLocations?.[0]?.start;
    const where = start === undefined ? `${file}` : `${file}:${lineCol(source, offset + start)}`;
    const label = e.sourceLocations?.[0]?.label;
    const help = e.help ? ` (${e.help})` : '';
    return `${where} ${e.message}${label ? `: ${label}` : ''}${help}`;
  });
}

export function lineCol(source: string, offset: number): string {
  let line = 1;
  let col = 1;
  const end = Math.min(offset, source.length);
  for (let i = 0; i < end; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  return `${line}:${col}`;
}

/** Canonical string of an entity uid, used as a map key. */
export function uidKey(type: string, id: string): string {
  return `${type}::${JSON.stringify(id)}`;
}
