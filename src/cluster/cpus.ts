import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file's text, or undefined when it is not there (no cgroup, another cgroup version). */
type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * CPUs this process may use, for `workers: auto`: the CPUs it may run on (affinity), lowered to
 * the container's CPU quota when one is set (cgroup v2 `cpu.max`, or v1 `cfs_quota_us` /
 * `cfs_period_us`), rounded up. In Kubernetes a pod limited to 2 CPUs on a 64-core node gets 2
 * workers, not 64 that would be throttled.
 */
export function usableCpus(read: ReadText = readText, parallelism: number = availableParallelism()): number {
  const quota = cgroupQuota(read);
  return Math.max(1, quota === undefined ? parallelism : Math.min(parallelism, Math.ceil(quota)));
}

function cgroupQuota(read: ReadText): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2 && v2.length === 2) {
    const [quota, period] = v2.map(Number);
    return v2[0] === 'max' || !(quota! > 0) || !(period! > 0) ? undefined : quota! / period!;
  }
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim());
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
  return quota > 0 && period > 0 ? quota / period : undefined;
}
