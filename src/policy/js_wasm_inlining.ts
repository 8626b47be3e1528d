/**
 * Keeps V8 from inlining JS→Wasm calls into optimized JavaScript where that can kill the process.
 * V8 before 13 (Node 20 and 22) cannot lazily deoptimize optimized code that inlined a call to a
 * Wasm function returning a JS value (externref) while that call is running: the process dies with
 * "Fatal error in , line 0 / unreachable code" from Deoptimizer::DoComputeBuiltinContinuation
 * (SIGTRAP). cedar-wasm's exports take and return JS values, and its imports call back into
 * JavaScript, where a map change can mark the caller for deoptimization. Seen here on Node 20.20.2
 * after 1-7 minutes of saturating uncached Checks (test/unit/policy/js_wasm_inlining.test.ts
 * reproduces it in a few lines). Without the inlining each evaluation makes one call through V8's
 * generic JS→Wasm wrapper. Imported by cedar.ts before the first call; the flag is read when a
 * function is optimized, so setting it at run time is enough (Node refuses it in NODE_OPTIONS).
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Whether V8 `version` gets the inlining turned off: up to V8 12 (Node 22). V8's own tests gained
 * lazy deopts of inlined JS→Wasm calls for every return type in 2024; V8 13 (Node 24, the image's)
 * is trusted with them. Reproduced here on V8 11.3 (Node 20) only.
 */
export function inliningCrashes(version: string): boolean {
  return Number.parseInt(version, 10) < 13;
}

if (inliningCrashes(process.versions.v8)) setFlagsFromString('--no-turbo-inline-js-wasm-calls');
