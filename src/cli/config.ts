import type { Command } from 'commander';
import { configJsonSchema, configReferenceMarkdown, loadConfig } from '../config/index.js';
import { redactUrl } from '../lib/redact_url.js';
import { exitWith } from './fail.js';

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
        // Secrets are shown as set or not, never printed; a connection URL keeps all but its password.
        const redact = (key: string, value: unknown) => {
          if ((key === 'api_key' || key === 'kek') && value !== undefined) return '[redacted]';
          return key === 'url' && typeof value === 'string' ? redactUrl(value) : value;
        };
        process.stdout.write(`${JSON.stringify(loadConfig({ file: opts.config }), redact, 2)}\n`);
      } catch (err) {
        exitWith(err);
      }
    });
}
