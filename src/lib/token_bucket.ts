import type { Clock } from './clock.js';

/** A token bucket: `ratePerSecond` tokens a second, holding at most `burst`. `take()` spends one if it can. */
export function createTokenBucket(ratePerSecond: number, burst: number, clock: Clock): { take(): boolean } {
  let tokens = burst;
  let last = clock.now();
  return {
    take() {
      const now = clock.now();
      if (now > last) {
        tokens = Math.min(burst, tokens + ((now - last) / 1000) * ratePerSecond);
        last = now;
      }
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}
