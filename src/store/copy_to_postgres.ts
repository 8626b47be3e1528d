import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { PortcullisError } from '../lib/errors.js';
import { openPostgresDb, type PostgresStoreOptions } from './postgres.js';
import type { Exec } from './postgres_db.js';
import { quoteIdent } from './postgres_migrations.js';
import { openSqliteStore } from './sqlite.js';

export interface CopyOptions {
  sqliteFile: string;
  target: PostgresStoreOptions;
  /** Empty a target that already holds rows instead of refusing it. */
  force: boolean;
}

/** Rows copied per table, in copy order. */
export type CopyCounts = Record<string, number>;

const BATCH_PARAMS = 30_000;

/**
 * Copies every table of a SQLite store into a PostgreSQL store (`portcullis store migrate`):
 * the target is migrated first, must be empty (or is emptied with `force`), and receives
 * everything in one transaction, so a failed copy leaves nothing behind. Tables and columns come
 * from the two schemas themselves (parents before children by their foreign keys), so a table
 * both adapters gain later is copied too; a SQLite column PostgreSQL lacks stops the copy.
 */
export async function copySqliteToPostgres(o: CopyOptions): Promise<CopyCounts> {
  if (!existsSync(o.sqliteFile)) throw new PortcullisError('ERR_BAD_REQUEST', `cannot read SQLite store ${o.sqliteFile}: no such file`);
  // Opening it as a store brings an older file to this build's schema (and refuses a newer one).
  await openSqliteStore({ file: o.sqliteFile }).close();
  const source = new Database(o.sqliteFile, { readonly: true, fileMustExist: true });
  const { db } = await openPostgresDb({ ...o.target, poolSize: 1 });
  try {
    return await db.tx(async (q) => {
      const target = await targetColumns(q);
      const tables = copyOrder(source);
      const occupied = [];
      for (const t of target.keys()) if ((await q(`SELECT 1 FROM ${quoteIdent(t)} LIMIT 1`)).rowCount > 0) occupied.push(t);
      if (occupied.length && !o.force) throw new PortcullisError('ERR_BAD_REQUEST', `the target already holds data (${occupied.sort().join(', ')}); refusing to mix stores (--force empties it first)`);
      if (occupied.length) await q(`TRUNCATE ${[...target.keys()].map(quoteIdent).join(', ')} RESTART IDENTITY CASCADE`);
      const counts: CopyCounts = {};
      for (const table of tables) counts[table] = await copyTable(source, q, table, target.get(table));
      if (target.has('audit_events')) await q("SELECT setval(pg_get_serial_sequence('audit_events', 'id'), COALESCE(max(id), 0) + 1, false) FROM audit_events");
      return counts;
    });
  } finally {
    source.close();
    await db.close();
  }
}

/** Columns of every table of the target schema (schema_migrations aside), with their types. */
async function targetColumns(q: Exec): Promise<Map<string, Map<string, string>>> {
  const rows = await q<{ table_name: string; column_name: string; data_type: string }>(
    "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'",
  );
  const tables = new Map<string, Map<string, string>>();
  for (const r of rows.rows) tables.set(r.table_name, (tables.get(r.table_name) ?? new Map()).set(r.column_name, r.data_type));
  return tables;
}

/** SQLite tables, each after the tables its foreign keys point to. */
function copyOrder(source: Database.Database): string[] {
  const names = source.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all().map((r) => r.name);
  const ordered: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (ordered.includes(name) || path.includes(name)) return;
    for (const fk of source.pragma(`foreign_key_list(${quoteIdent(name)})`) as Array<{ table: string }>) visit(fk.table, [...path, name]);
    ordered.push(name);
  };
  for (const name of names) visit(name, []);
  return ordered;
}

async function copyTable(source: Database.Database, q: Exec, table: string, target: Map<string, string> | undefined): Promise<number> {
  if (!target) throw new PortcullisError('ERR_STORE', `the PostgreSQL schema has no table ${table}; is this Portcullis older than the SQLite file?`);
  const columns = (source.pragma(`table_info(${quoteIdent(table)})`) as Array<{ name: string }>).map((c) => c.name);
  const missing = columns.filter((c) => !target.has(c));
  if (missing.length) throw new PortcullisError('ERR_STORE', `the PostgreSQL table ${table} lacks column(s) ${missing.join(', ')}`);
  const booleans = new Set(columns.filter((c) => target.get(c) === 'boolean'));
  const batch = Math.max(1, Math.min(1_000, Math.floor(BATCH_PARAMS / columns.length)));
  // Row order is kept (rowid order is insertion order: signing keys list by it on a tie).
  const page = source.prepare<[number, number], Record<string, unknown>>(`SELECT rowid AS "__rowid", * FROM ${quoteIdent(table)} WHERE rowid > ? ORDER BY rowid LIMIT ?`);
  const insertHead = `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) VALUES `;
  let copied = 0;
  for (let after = 0; ; ) {
    const rows = page.all(after, batch);
    if (rows.length === 0) return copied;
    const params: unknown[] = [];
    const tuples = rows.map((row) => `(${columns.map((c) => `$${params.push(booleans.has(c) ? row[c] === 1 : row[c])}`).join(', ')})`);
    await q(insertHead + tuples.join(', '), params);
    copied += rows.length;
    after = rows[rows.length - 1]!.__rowid as number;
  }
}
