import { copyFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/lib/clock.js';
import { createStoreWatchdog, openSqliteStore } from '../../../src/store/index.js';
import { tempDir } from '../../helpers/temp_dir.js';

function harness(giveUpAfterMs: number) {
  const clock = createManualClock();
  const events: string[] = [];
  let failing: Error | undefined;
  let hang = false;
  const watchdog = createStoreWatchdog({
    ping: () => (hang ? new Promise<void>(() => {}) : failing ? Promise.reject(failing) : Promise.resolve()),
    clock,
    intervalMs: 50,
    giveUpAfterMs,
    onDown: (err) => events.push(`down: ${(err as Error).message}`),
    onUp: (ms) => events.push(`up after ${ms}`),
    onGiveUp: (ms, err) => events.push(`give up after ${ms}: ${(err as Error).message}`),
  });
  return { clock, events, watchdog, fail: (e?: Error) => (failing = e), hang: (h: boolean) => (hang = h) };
}

describe('store watchdog', () => {
  it('reports an outage once on each edge, not on every failed ping', async () => {
    const h = harness(0);
    await h.watchdog.check();
    h.fail(new Error('gone'));
    for (let i = 0; i < 3; i++) {
      h.clock.advance(1000);
      await h.watchdog.check();
    }
    expect(h.watchdog.up()).toBe(false);
    h.fail(undefined);
    h.clock.advance(500);
    await h.watchdog.check();
    expect(h.watchdog.up()).toBe(true);
    expect(h.events).toEqual(['down: gone', 'up after 2500']);
  });

  it('gives up once the store has failed every ping for the limit, and only once', async () => {
    const h = harness(10_000);
    h.fail(new Error('gone'));
    await h.watchdog.check();
    h.clock.advance(9_999);
    await h.watchdog.check();
    expect(h.events).toEqual(['down: gone']);
    h.clock.advance(1);
    await h.watchdog.check();
    h.clock.advance(5_000);
    await h.watchdog.check();
    expect(h.events).toEqual(['down: gone', 'give up after 10000: gone']);
  });

  it('starts the clock again after a recovery (a flapping store is not an outage of the summed time)', async () => {
    const h = harness(10_000);
    h.fail(new Error('gone'));
    await h.watchdog.check();
    h.clock.advance(8_000);
    h.fail(undefined);
    await h.watchdog.check();
    h.fail(new Error('again'));
    h.clock.advance(1_000);
    await h.watchdog.check();
    h.clock.advance(8_000);
    await h.watchdog.check();
    expect(h.events).toEqual(['down: gone', 'up after 8000', 'down: again']);
  });

  it('counts a ping that does not answer within the interval as a failure', async () => {
    const h = harness(0);
    h.hang(true);
    await h.watchdog.check();
    expect(h.events).toEqual(['down: store ping did not answer within 50 ms']);
  });

  it('never gives up with a limit of 0', async () => {
    const h = harness(0);
    h.fail(new Error('gone'));
    await h.watchdog.check();
    h.clock.advance(365 * 86_400_000);
    await h.watchdog.check();
    expect(h.events).toEqual(['down: gone']);
  });
});

describe('SQLite store ping', () => {
  it('fails once the database file is deleted or replaced under the open handle', async () => {
    const dir = tempDir('pc-ping');
    const file = join(dir, 'p.db');
    const store = openSqliteStore({ file });
    try {
      await expect(store.ping()).resolves.toBeUndefined();
      copyFileSync(file, join(dir, 'copy.db'));
      renameSync(join(dir, 'copy.db'), file);
      await expect(store.ping()).rejects.toThrow(`SQLite store ${file} was replaced on disk after it was opened`);
      rmSync(file);
      await expect(store.ping()).rejects.toThrow(`SQLite store ${file} is no longer on disk: ENOENT`);
    } finally {
      await store.close();
    }
  });
});
