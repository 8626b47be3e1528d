import type { Clock } from '../lib/clock.js';

export interface StoreWatchdogOptions {
  /** The store's health ping (`Store.ping`): resolves while the store answers. */
  ping: () => Promise<void>;
  clock: Clock;
  /** How often to ping; a ping that has not answered within this long counts as a failure. */
  intervalMs: number;
  /** Give up once every ping has failed for this long; 0 never gives up. */
  giveUpAfterMs: number;
  /** The first failed ping after a healthy one. */
  onDown(err: unknown): void;
  /** A ping succeeded again after `downMs` of failures. */
  onUp(downMs: number): void;
  /** Called once, when the store has been down for `giveUpAfterMs`. */
  onGiveUp(downMs: number, err: unknown): void;
}

export interface StoreWatchdog {
  /** One ping and its bookkeeping (the timer calls this; tests call it with a manual clock). */
  check(): Promise<void>;
  /** Whether the last ping succeeded. */
  up(): boolean;
  start(): void;
  stop(): void;
}

/**
 * Watches the store from the side: the decision path never waits for it. Outages are reported on
 * their edges (down, up) rather than on every failed ping, and a store gone for longer than the
 * limit is handed to `onGiveUp` (the CLI exits so the orchestrator restarts the process).
 */
export function createStoreWatchdog(o: StoreWatchdogOptions): StoreWatchdog {
  let downSince: number | undefined;
  let gaveUp = false;
  let busy = false;
  let timer: NodeJS.Timeout | undefined;

  const pingWithin = (ms: number) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`store ping did not answer within ${ms} ms`)), ms);
      o.ping().then(
        () => (clearTimeout(t), resolve()),
        (err: unknown) => (clearTimeout(t), reject(err)),
      );
    });

  const check = async () => {
    if (busy) return;
    busy = true;
    try {
      await pingWithin(o.intervalMs);
      if (downSince !== undefined) o.onUp(o.clock.now() - downSince);
      downSince = undefined;
    } catch (err) {
      const now = o.clock.now();
      if (downSince === undefined) {
        downSince = now;
        o.onDown(err);
      }
      if (!gaveUp && o.giveUpAfterMs > 0 && now - downSince >= o.giveUpAfterMs) {
        gaveUp = true;
        o.onGiveUp(now - downSince, err);
      }
    } finally {
      busy = false;
    }
  };

  return {
    check,
    up: () => downSince === undefined,
    start() {
      timer ??= setInterval(() => void check(), o.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
