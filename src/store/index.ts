export type * from './store.js';
export { openSqliteStore, openMemoryStore } from './sqlite.js';
export { openPostgresStore, checkPostgresUrl, type PostgresStoreOptions } from './postgres.js';
export { createStoreWatchdog, type StoreWatchdog, type StoreWatchdogOptions } from './watchdog.js';
