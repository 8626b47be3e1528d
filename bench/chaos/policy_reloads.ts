/**
 * The policy folder changes every few seconds under Check load (the file watcher reloads it); every
 * fourth change is a broken file, which must be rejected while the last good set keeps answering.
 * No Check may fail; the latency cost of reloading (parse, warm-up, an emptied decision cache) is reported.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUTHORIZATION_CHECK_PATH } from '../../src/extauthz/service.js';
import { every, metricSum, scrape } from '../lib/long_run.js';
import { startNodeLoad } from '../lib/load_grpc.js';
import { checkBytes, startBenchIssuer } from '../lib/requests.js';
import { startPortcullis } from '../lib/target.js';
import { assertAllowed, describeLoad, type ExperimentResult } from './experiment.js';

const POLICIES = new URL('../../policies', import.meta.url).pathname;

export async function policyReloads(o: { rate: number; windowMs: number; everyMs: number }): Promise<ExperimentResult> {
  const issuer = await startBenchIssuer();
  let dir = '';
  const target = await startPortcullis((folder) => {
    dir = join(folder, 'policies');
    cpSync(POLICIES, dir, { recursive: true });
    return [
      'observability: { logging: { level: info } }',
      `policies: { dir: ${dir}, watch: true, watch_debounce_ms: 100 }`,
      'dev_issuer: { enabled: false }',
      'token_module: { enabled: false }',
      'issuers:',
      `  - { issuer: "${issuer.issuer}", jwks_uri: "${issuer.jwksUri}", audiences: [bench] }`,
      '',
    ].join('\n');
  });
  try {
    const tokens = await issuer.mint('ES256', 32, { sub: 'alice', roles: ['viewer'] });
    const requests = tokens.map((t, i) => checkBytes('GET', `/documents/d${i}`, t));
    await assertAllowed(target.address, requests[0]!);
    const reloads = async () => {
      const text = await scrape(target.admin!);
      return { ok: metricSum(text, 'auth_policy_reload_total', { result: 'success', set: 'active' }), failed: metricSum(text, 'auth_policy_reload_total', { result: 'failure', set: 'active' }) };
    };
    const before = await reloads();
    const original = readFileSync(join(dir, 'rbac.cedar'), 'utf8');
    let writes = 0;
    let broken = 0;
    const load = startNodeLoad({ address: target.address, path: AUTHORIZATION_CHECK_PATH, requests, expect: 'allow', mode: 'open', rate: o.rate, durationMs: o.windowMs });
    // Each valid change adds a permit for a role nobody has: the answers stay the same, the set does not.
    const changes = every(o.everyMs, async () => {
      writes++;
      const bad = writes % 4 === 0;
      if (bad) broken++;
      const extra = bad ? `@id("chaos-${writes}")\npermit (principal, action, resource) when { 1 + };\n` : `@id("chaos-${writes}")\npermit (principal in Role::"chaos-${writes}", action == Action::"read", resource is Document);\n`;
      writeFileSync(join(dir, 'rbac.cedar'), `${original}\n${extra}`);
    });
    const total = await load.done;
    changes.stop();
    // The last change may have been broken: end on a valid set, then let the watcher settle.
    writeFileSync(join(dir, 'rbac.cedar'), original);
    await new Promise((r) => setTimeout(r, 2000));
    const after = await reloads();
    const active = (await (await fetch(`http://${target.admin}/ready`)).json()) as { status: string };

    const valid = writes - broken;
    const failures = [
      ...(total.errors ? [`${total.errors} Checks failed during policy reloads`] : []),
      ...(after.ok - before.ok < valid * 0.5 ? [`only ${after.ok - before.ok} successful reloads for ${valid} valid changes`] : []),
      ...(broken > 0 && after.failed - before.failed < 1 ? ['no broken change was rejected'] : []),
      ...(active.status !== 'ready' ? [`not ready after the reloads: ${active.status}`] : []),
    ];
    return {
      name: 'policy-reloads',
      lines: [
        `Policy folder changed every ${o.everyMs / 1000} s for ${o.windowMs / 1000} s (${writes} changes, ${broken} of them broken), Checks at ${o.rate}/s.`,
        describeLoad('Checks', total),
        `Reloads: ${after.ok - before.ok} succeeded, ${after.failed - before.failed} rejected (the last good set kept answering).`,
      ],
      failures,
      data: { load: total, writes, broken, reloadsOk: after.ok - before.ok, reloadsRejected: after.failed - before.failed },
    };
  } finally {
    await target.stop();
    await issuer.close();
  }
}
