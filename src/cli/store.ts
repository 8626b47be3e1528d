import type { Command } from 'commander';
import { PortcullisError } from '../lib/errors.js';
import { redactUrl } from '../lib/redact_url.js';
import { action } from './fail.js';

interface MigrateOptions {
  from: string;
  to: string;
  schema: string;
  force?: boolean;
}

export function registerStore(program: Command): void {
  const store = program.command('store').description('token module storage');
  store
    .command('migrate')
    .description('copy a SQLite store into PostgreSQL (stop the server first): users, credentials, MFA, clients, codes, refresh tokens, keys, challenges, revocations, audit')
    .requiredOption('--from <sqlite:file>', 'the SQLite store, as sqlite:<path> (e.g. sqlite:./data/portcullis.db)')
    .requiredOption('--to <postgres-url>', 'the PostgreSQL database, postgres://user:password@host:5432/database (migrated first; must be empty)')
    .option('--schema <name>', 'PostgreSQL schema of the target (store.schema)', 'public')
    .option('--force', 'empty a target that already holds data before copying')
    .action(
      action(async (opts: MigrateOptions) => {
        if (!opts.from.startsWith('sqlite:') || opts.from.length === 'sqlite:'.length) throw new PortcullisError('ERR_BAD_REQUEST', '--from must be sqlite:<path of the SQLite file>');
        // Loaded here, not at start-up: other commands need neither pg nor the copy.
        const { checkPostgresUrl } = await import('../store/postgres.js');
        const { copySqliteToPostgres } = await import('../store/copy_to_postgres.js');
        checkPostgresUrl(opts.to);
        const file = opts.from.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
        const counts = await copySqliteToPostgres({ sqliteFile: file, target: { url: opts.to, schema: opts.schema }, force: opts.force ?? false });
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        process.stdout.write(`${JSON.stringify({ from: file, to: redactUrl(opts.to), schema: opts.schema, tables: counts, rows: total })}\n`);
      }),
    );
}
