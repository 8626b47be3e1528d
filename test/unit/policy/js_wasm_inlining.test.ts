import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { inliningCrashes } from '../../../src/policy/js_wasm_inlining.js';

const FIXTURE = new URL('../../fixtures/js_wasm_lazy_deopt.mjs', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, ['--allow-natives-syntax', FIXTURE, ...args], { encoding: 'utf8', timeout: 60_000 });
const affected = inliningCrashes(process.versions.v8);
if (!affected) console.warn(`V8 ${process.versions.v8} deoptimizes inlined JS→Wasm calls correctly: the crash control below is not expected here`);

describe('V8 JS→Wasm inlining (the crash seen under saturating uncached Checks)', () => {
  it('knows which V8 versions crash', () => {
    expect(['11.3.244.8-node.33', '12.4.254.21-node.33'].map(inliningCrashes)).toEqual([true, true]);
    expect(['13.6.233.10-node.24', '14.1.0'].map(inliningCrashes)).toEqual([false, false]);
  });

  it.runIf(affected)('kills a plain Node process with SIGTRAP when an inlined Wasm call is deoptimized while it runs', () => {
    const r = run();
    expect(r.signal).toBe('SIGTRAP');
    expect(r.stderr).toContain('Deoptimizer::DoComputeBuiltinContinuation');
  });

  it('survives once the policy engine is loaded (cedar.ts turns the inlining off on affected V8)', () => {
    const r = run(new URL('../../../dist/policy/cedar.js', import.meta.url).href);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('survived: string\n');
  });
});
