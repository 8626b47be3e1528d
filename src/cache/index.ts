export type * from './cache.js';
export { createMemoryCache, type MemoryCacheOptions } from './memory.js';
