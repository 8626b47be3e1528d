import type { Command } from 'commander';
import { rotateSigningKey } from '../issuer/key_rotation.js';
import { action } from './fail.js';
import { withTokenModule } from './token_module.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('token module signing keys');
  keys
    .command('list')
    .description('list signing keys with their state (pending, active, previous, superseded, retired)')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (opts: { config?: string }) => {
        await withTokenModule(opts.config, async ({ keyring }) => {
          for (const k of keyring.states()) process.stdout.write(`${JSON.stringify({ kid: k.kid, alg: k.alg, state: k.state, created_at: iso(k.createdAt), activates_at: iso(k.activatesAt), retires_at: iso(k.retiresAt) })}\n`);
        });
      }),
    );
  keys
    .command('rotate')
    .description('create a new signing key: published now, signing after token_module.key_rotation.prepublish_seconds; a running server picks it up on SIGHUP or its reload timer')
    .option('--immediate', 'sign with the new key at once; earlier keys stay published until their tokens expire')
    .option('--revoke-previous', 'after a key compromise: sign with the new key at once and withdraw every earlier key now (tokens they signed stop being accepted)')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (opts: { immediate?: boolean; revokePrevious?: boolean; config?: string }) => {
        await withTokenModule(opts.config, async ({ ctx }) => {
          const k = await rotateSigningKey(ctx, 'cli', opts.immediate ?? false, opts.revokePrevious ?? false);
          process.stdout.write(`${JSON.stringify({ rotated: k.kid, activates_at: iso(k.activatesAt) })}\n`);
        });
      }),
    );
}
