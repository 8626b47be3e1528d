import type { Command } from 'commander';
import { parseAuditQuery, queryAudit } from '../issuer/audit_query.js';
import { PortcullisError } from '../lib/errors.js';
import { action } from './fail.js';
import { withTokenModule } from './token_module.js';

interface TailOptions {
  kind?: string;
  user?: string;
  since?: string;
  limit: string;
  follow?: boolean;
  interval: string;
  config?: string;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the audit log of the token module (the same rows as GET /admin/audit)');
  audit
    .command('tail')
    .description('print the latest audit events as JSON lines, oldest first; --follow keeps printing new ones')
    .option('--kind <kind>', 'only this event kind (e.g. login.password)')
    .option('--user <username>', "only this user's events")
    .option('--since <iso-time>', 'only events at or after this time')
    .option('-n, --limit <n>', 'how many of the latest events', '20')
    .option('-f, --follow', 'keep polling for new events until interrupted')
    .option('--interval <ms>', 'polling interval with --follow', '2000')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (opts: TailOptions) => {
        await withTokenModule(opts.config, async ({ ctx }) => {
          let userId: string | undefined;
          if (opts.user) {
            const user = await ctx.store.users.byUsername(opts.user);
            if (!user) throw new PortcullisError('ERR_BAD_REQUEST', `no user ${opts.user}`);
            userId = user.id;
          }
          const parsed = parseAuditQuery(ctx, { limit: opts.limit, kind: opts.kind, since: opts.since, user_id: userId });
          if (!parsed.ok) throw new PortcullisError('ERR_BAD_REQUEST', parsed.error.replace('user_id', '--user').replace(/^(\w+):/, '--$1:'));
          let last = 0;
          const print = async () => {
            const { events } = await queryAudit(ctx, parsed.query);
            for (const e of events.filter((e) => e.id > last).reverse()) process.stdout.write(`${JSON.stringify(e)}\n`);
            last = Math.max(last, ...events.map((e) => e.id));
          };
          await print();
          if (!opts.follow) return;
          const interval = Number(opts.interval);
          if (!Number.isInteger(interval) || interval < 100) throw new PortcullisError('ERR_BAD_REQUEST', '--interval must be an integer of at least 100 ms');
          let stop = false;
          process.once('SIGINT', () => (stop = true));
          process.once('SIGTERM', () => (stop = true));
          while (!stop) {
            await new Promise((resolve) => setTimeout(resolve, interval));
            await print();
          }
        });
      }),
    );
}
