import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../telemetry/logger.js';

/**
 * Calls `onChange` once a burst of changes in the policy folder has settled for `debounceMs`
 * (editors save through temporary files and renames). Returns a stop function.
 */
export function watchPolicyFolder(dir: string, debounceMs: number, onChange: () => void, logger: Logger): () => void {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', (err) => logger.warn({ dir, err: err.message }, 'policy folder watch failed; SIGHUP and the admin endpoint still reload'));
  } catch (err) {
    logger.warn({ dir, err: (err as Error).message }, 'cannot watch the policy folder; SIGHUP and the admin endpoint still reload');
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
