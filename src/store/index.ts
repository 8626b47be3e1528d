// The PostgreSQL adapter is not re-exported here: it loads `pg`, so the composition root imports
// `./postgres.js` only when `store.driver: postgres` is configured.
export type * from './store.js';
export { openSqliteStore, openMemoryStore } from './sqlite.js';
export { createStoreWatchdog, type StoreWatchdog, type StoreWatchdogOptions } from './watchdog.js';
