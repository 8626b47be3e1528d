/**
 * Compiles cedar-wasm's module with one V8 background task instead of one per platform thread.
 * Imported by cedar.ts before the module itself (the package compiles its 4 MB of WebAssembly when
 * it is imported). Each parallel compilation task grows its own malloc arena that glibc keeps after
 * the compilation ends: with the default, a freshly started sidecar held ~180 MB RSS (peak ~199 MB),
 * with one task ~130-140 MB (peak ~148 MB), with the same code afterwards (functions still tier up
 * to optimized code when hot); time to "serving" measured the same both ways. The flag is read when a
 * compilation starts, so setting it at run time before the import is enough (Node refuses it in
 * NODE_OPTIONS). docs/performance.md ("Memory") has the measurements.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--wasm-num-compilation-tasks=1');
