import type { Command } from 'commander';
import { configJsonSchema, configReferenceMarkdown, loadConfig } from '../config/index.js';
import { exitWith } from './fail.js';

/** Keys whose values `config check` shows only as set: the admin key, the key-encryption key, upstream client secrets. */
const SECRET_KEYS = ['api_key', 'kek', 'client_secret'];

export function registerConfig(program: Command): void {
  const config = program.command('config').description('configuration tools');
  config
    .command('schema')
    .description('print the configuration JSON Schema (every key, default and doc line)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
  config
    .command('reference')
    .description('print the configuration reference as a Markdown table')
    .action(() => {
      process.stdout.write(`${configReferenceMarkdown()}\n`);
    });
  config
    .command('check')
    .description('validate a configuration file and print the effective configuration')
    .option('-c, --config <file>', 'YAML config file (env PORTCULLIS_CONFIG)')
    .action((opts: { config?: string }) => {
      try {
        // Secrets are shown as set or not, never printed.
        const redact = (key: string, value: unknown) => (SECRET_KEYS.includes(key) && value !== undefined ? '[redacted]' : value);
        process.stdout.write(`${JSON.stringify(loadConfig({ file: opts.config }), redact, 2)}\n`);
      } catch (err) {
        exitWith(err);
      }
    });
}
