import type { Command } from 'commander';
import { runPolicyTests } from '../pipeline/test_runner.js';
import { formatPolicyFolder, validatePolicyFolder } from '../policy/index.js';
import { exitWith } from './fail.js';

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
    .command('test')
    .description('run the policy tests in <dir>/tests/*.yaml through the live pipeline; exit 1 on any failure')
    .argument('[dir]', 'policy folder', './policies')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      let report;
      try {
        report = await runPolicyTests(dir);
      } catch (err) {
        exitWith(err);
      }
      if (report.cases.length === 0) process.stderr.write(`no test cases in ${dir}/tests/*.yaml\n`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        for (const c of report.cases) {
          process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'} ${c.file} › ${c.name}\n`);
          if (!c.pass) {
            const want = `${c.expected.decision}${c.expected.status ? ` ${c.expected.status}` : ''}${c.expected.reasons ? ` [${c.expected.reasons.join(', ')}]` : ''}`;
            process.stdout.write(`     expected ${want}\n     actual   ${c.actual.decision} ${c.actual.status} [${c.actual.reasons.join(', ')}]${c.actual.errors.length ? ` errors: ${c.actual.errors.join('; ')}` : ''}\n`);
          }
        }
        process.stdout.write(`\n${report.passed} passed, ${report.failed} failed\n`);
        process.stdout.write(`coverage: policies never determining: ${report.uncoveredPolicies.join(', ') || 'none'}; routes never matched: ${report.uncoveredRoutes.join(', ') || 'none'}\n`);
      }
      process.exit(report.failed || report.cases.length === 0 ? 1 : 0);
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
