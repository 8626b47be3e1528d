export type * from './cache.js';
export { createMemoryCache, type MemoryCacheOptions } from './memory.js';
// The Redis adapter is imported by path (`cache/redis.js`) where it is used, so ioredis loads
// only when `cache.driver` is redis (it costs every CLI command ~0.1–1 s otherwise).
export type { RedisCacheOptions } from './redis.js';
