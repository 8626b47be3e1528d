import { describe, expect, it } from 'vitest';
import { startFloor } from '../../bench/lib/target.js';

describe('bench targets', () => {
  it('report a server that died under them (signal and all) and stop at once instead of waiting for an exit that came already', { timeout: 60_000 }, async () => {
    const target = await startFloor();
    expect(target.exited!()).toBeUndefined();
    process.kill(target.pid, 'SIGKILL');
    await expect.poll(() => target.exited!(), { timeout: 5_000 }).toMatch(/^killed by SIGKILL; stderr: .*; last log lines: .*floor serving/);
    const stopped = await Promise.race([target.stop().then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve('hung'), 3_000))]);
    expect(stopped).toBe('stopped');
  });
});
