export type * from './store.js';
export { openSqliteStore, openMemoryStore } from './sqlite.js';
export { createStoreWatchdog, type StoreWatchdog, type StoreWatchdogOptions } from './watchdog.js';
