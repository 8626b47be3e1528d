import type { Command } from 'commander';
import { formatPolicyFolder, validatePolicyFolder } from '../policy/index.js';

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('work on a policy folder offline');
  policy
    .command('validate')
    .description('parse and validate every policy, the schema, routes.yaml and entities.json; exit 1 on any problem')
    .argument('[dir]', 'policy folder', './policies')
    .action((dir: string) => {
      const { bundle, problems } = validatePolicyFolder(dir);
      for (const p of problems) process.stderr.write(`${p}\n`);
      if (bundle) {
        const summary = `${bundle.policies.length} policies, ${bundle.routes.routes.length} routes, ${bundle.entities.size} entities, ${bundle.slices.size} slices${bundle.schema ? ', schema-validated' : ', no schema'}`;
        process.stdout.write(`${problems.length ? 'problems found' : 'ok'}: ${summary}\n`);
      }
      process.exit(problems.length ? 1 : 0);
    });
  policy
    .command('fmt')
    .description('format the .cedar files with the Cedar formatter; --check only reports (exit 1 when a file would change)')
    .argument('[dir]', 'policy folder', './policies')
    .option('--check', 'do not write; exit 1 if any file is not formatted')
    .action((dir: string, opts: { check?: boolean }) => {
      const { changed, errors } = formatPolicyFolder(dir, { check: Boolean(opts.check) });
      for (const e of errors) process.stderr.write(`${e}\n`);
      for (const f of changed) process.stdout.write(`${opts.check ? 'would reformat' : 'formatted'} ${f}\n`);
      process.exit(errors.length || (opts.check && changed.length) ? 1 : 0);
    });
}
