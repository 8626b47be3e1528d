// Preloaded with `node --import` into a real `portcullis serve` by test/integration/fault_isolation.test.ts:
// on SIGUSR2 it raises, from outside any handler, the kind of error named by PC_INJECT. Production code
// has no hook for this; the process-level policy installed by `serve` is what is being tested.
process.on('SIGUSR2', () => {
  if (process.env.PC_INJECT === 'exception') {
    setImmediate(() => {
      throw new Error('injected uncaught exception');
    });
  } else {
    void Promise.reject(new Error('injected unhandled rejection'));
  }
});
