import { describe, expect, it } from 'vitest';
import { usableCpus } from '../../../src/cluster/cpus.js';

const files = (entries: Record<string, string>) => (path: string) => entries[path];

describe('usableCpus (workers: auto)', () => {
  it.each([
    ['no cgroup files', {}, 8, 8],
    ['cgroup v2 without a quota', { '/sys/fs/cgroup/cpu.max': 'max 100000\n' }, 8, 8],
    ['cgroup v2 quota of 2 CPUs', { '/sys/fs/cgroup/cpu.max': '200000 100000\n' }, 64, 2],
    ['cgroup v2 quota of 1.5 CPUs rounds up', { '/sys/fs/cgroup/cpu.max': '150000 100000' }, 64, 2],
    ['cgroup v2 quota above the CPUs it may run on', { '/sys/fs/cgroup/cpu.max': '800000 100000' }, 2, 2],
    ['cgroup v2 quota of 0.25 CPU', { '/sys/fs/cgroup/cpu.max': '25000 100000' }, 4, 1],
    ['cgroup v1 quota of 3 CPUs', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }, 16, 3],
    ['cgroup v1 without a quota (-1)', { '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }, 16, 16],
    ['garbage in cpu.max', { '/sys/fs/cgroup/cpu.max': 'lots of cpus' }, 4, 4],
  ])('%s', (_name, entries, parallelism, expected) => {
    expect(usableCpus(files(entries), parallelism)).toBe(expected);
  });
});
