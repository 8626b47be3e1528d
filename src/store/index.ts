export type * from './store.js';
export { openSqliteStore, openMemoryStore } from './sqlite.js';
