import type { Command } from 'commander';
import qrcode from 'qrcode-terminal';
import { addUser, enrollTotp, resetMfa, setDisabled, setPassword } from '../issuer/users.js';
import { action } from './fail.js';
import { readSecret } from './secret_input.js';
import { withTokenModule } from './token_module.js';

const list = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

export function registerUsers(program: Command): void {
  const users = program.command('users').description('token module accounts (passwords are read from stdin or prompted, never from arguments)');
  users
    .command('add <username>')
    .description('create a user; the password is prompted (or read from the first line of stdin)')
    .option('--role <role>', 'role (repeat or comma-separate)', list, [])
    .option('--name <name>', 'display name')
    .option('--email <email>', 'e-mail address')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (username: string, opts: { role: string[]; name?: string; email?: string; config?: string }) => {
        const password = await readSecret(`Password for ${username}: `, true);
        await withTokenModule(opts.config, async ({ ctx }) => {
          const user = await addUser(ctx, { username, password, roles: opts.role, name: opts.name, email: opts.email });
          process.stdout.write(`${JSON.stringify({ id: user.id, username: user.username, roles: user.roles })}\n`);
        });
      }),
    );
  users
    .command('list')
    .description('list users (JSON lines)')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (opts: { config?: string }) => {
        await withTokenModule(opts.config, async ({ ctx }) => {
          for (const u of await ctx.store.users.list()) {
            const mfa = (await ctx.store.users.totp(u.id)) !== undefined;
            process.stdout.write(`${JSON.stringify({ id: u.id, username: u.username, roles: u.roles, disabled: u.disabled, mfa, locked_until: u.lockedUntil ? new Date(u.lockedUntil).toISOString() : null })}\n`);
          }
        });
      }),
    );
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    users
      .command(`${name} <username>`)
      .description(`${name} an account`)
      .option('-c, --config <file>', 'YAML config file')
      .action(action(async (username: string, opts: { config?: string }) => withTokenModule(opts.config, ({ ctx }) => setDisabled(ctx, username, disabled))));
  }
  users
    .command('set-password <username>')
    .description('set a new password (prompted or read from stdin); also clears a lockout')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (username: string, opts: { config?: string }) => {
        const password = await readSecret(`New password for ${username}: `, true);
        await withTokenModule(opts.config, ({ ctx }) => setPassword(ctx, username, password));
      }),
    );
  users
    .command('enroll-totp <username>')
    .description('enrol TOTP: prints the otpauth:// URI, a terminal QR code and ten one-time backup codes')
    .option('--no-qr', 'do not print the QR code')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (username: string, opts: { qr: boolean; config?: string }) => {
        await withTokenModule(opts.config, async ({ ctx }) => {
          const r = await enrollTotp(ctx, username, 'Portcullis');
          process.stdout.write(`${r.uri}\n`);
          if (opts.qr) qrcode.generate(r.uri, { small: true }, (qr) => process.stdout.write(`${qr}\n`));
          process.stdout.write(`Backup codes (each works once; store them safely):\n${r.backupCodes.join('\n')}\n`);
        });
      }),
    );
  users
    .command('reset-mfa <username>')
    .description('remove TOTP and backup codes (the user logs in with the password alone)')
    .option('-c, --config <file>', 'YAML config file')
    .action(action(async (username: string, opts: { config?: string }) => void (await withTokenModule(opts.config, ({ ctx }) => resetMfa(ctx, username)))));
}
