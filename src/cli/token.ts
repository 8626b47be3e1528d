import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { systemClock } from '../lib/clock.js';
import { PortcullisError } from '../lib/errors.js';
import { loadDevIssuer } from '../tokens/index.js';
import { exitWith } from './fail.js';

export function registerToken(program: Command): void {
  const token = program.command('token').description('development tokens');
  token
    .command('mint')
    .description('print an access token signed by the development issuer (dev_issuer; not in production)')
    .requiredOption('--sub <subject>', 'subject (becomes User::"<sub>")')
    .option('--roles <roles>', 'comma-separated roles', '')
    .option('--scope <scope>', 'space-separated scopes', '')
    .option('--mfa', 'mark the token as MFA-authenticated (amr: ["pwd","otp"])')
    .option('--ttl <seconds>', 'lifetime in seconds', '3600')
    .option('-c, --config <file>', 'YAML config file (env PORTCULLIS_CONFIG)')
    .action(async (opts: { sub: string; roles: string; scope: string; mfa?: boolean; ttl: string; config?: string }) => {
      try {
        const config = loadConfig({ file: opts.config });
        if (!config.dev_issuer.enabled) throw new PortcullisError('ERR_CONFIG_INVALID', 'dev_issuer is disabled in this configuration');
        const ttl = Number(opts.ttl);
        if (!Number.isInteger(ttl) || ttl <= 0) throw new PortcullisError('ERR_CONFIG_INVALID', '--ttl must be a positive integer');
        const dev = await loadDevIssuer({ issuer: config.dev_issuer.issuer, audience: config.dev_issuer.audience, keyFile: config.dev_issuer.key_file, clock: systemClock });
        const jwt = await dev.mint({
          sub: opts.sub,
          roles: opts.roles.split(',').map((r) => r.trim()).filter(Boolean),
          scope: opts.scope,
          amr: opts.mfa ? ['pwd', 'otp'] : ['pwd'],
          ttlSeconds: ttl,
        });
        process.stdout.write(`${jwt}\n`);
      } catch (err) {
        exitWith(err);
      }
    });
}
