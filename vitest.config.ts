import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default is one fewer worker than cores: one on a 2-core CI machine. Most test files
    // wait on child processes and loopback servers, so two files at a time finish the suite in
    // ~5.5 minutes instead of ~7 there (measured 2026-12-02: 326 s against 420 s).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ['default', './test/reporters/summary.ts'],
  },
});
