import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createPolicyRuntime, validatePolicyFolder } from '../../src/policy/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

/**
 * Arbitrary policy-folder contents through the loader, the validator and the reloading runtime:
 * each answer is a validated set or coded problems — never another exception — and a failed
 * reload leaves the last good set in place, still evaluating.
 */
const RUN = { numRuns: 60, interruptAfterTimeLimit: 8_000, markInterruptAsFailure: false } as const;
const example = Object.fromEntries(readdirSync(EXAMPLE_POLICIES).filter((f) => f.includes('.')).map((f) => [f, readFileSync(join(EXAMPLE_POLICIES, f), 'utf8')]));

/** A text mutated the way an editor (or an attacker) would: a range deleted, something inserted, or both. */
const mutated = (text: string) =>
  fc.record({ at: fc.nat(), len: fc.nat({ max: 40 }), insert: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('{', '}', ';', '"', '@id("x")', '__entity', 'permit(principal, action, resource);', '\u0000', 'ü', '\\', ':', '- ', '{{')) }).map(({ at, len, insert }) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i + len);
  });

/** One file: the example text, a mutation of it, random text, or (for optional files) nothing. */
const fileText = (name: string) => {
  const base = example[name] ?? '';
  return fc.oneof({ weight: 3, arbitrary: fc.constant(base) }, { weight: 4, arbitrary: mutated(base) }, { weight: 1, arbitrary: fc.string({ maxLength: 200 }) }, { weight: 1, arbitrary: fc.constant(undefined) });
};

const structuredRoutes = fc
  .array(
    fc.record(
      {
        match: fc.record({ method: fc.oneof(fc.constantFrom('GET', '*', ['GET', 'PUT']), fc.string({ maxLength: 6 })), path: fc.oneof(fc.constantFrom('/documents/{id}', '/**', '/a/**/b', '/{x}/{x}', '/{bad-name}', 'no-slash'), fc.string({ maxLength: 20 }).map((s) => `/${s}`)) }, { requiredKeys: ['path'] }),
        action: fc.oneof(fc.constantFrom('read', 'update', 'fly'), fc.string({ maxLength: 6 })),
        resource: fc.record({ type: fc.oneof(fc.constantFrom('Document', 'Endpoint', 'Nope'), fc.string({ maxLength: 6 })), id: fc.oneof(fc.constantFrom('{id}', '{missing}', 'x'), fc.string({ maxLength: 6 })) }),
        anonymous: fc.oneof(fc.boolean(), fc.string({ maxLength: 3 })),
      },
      { requiredKeys: ['match', 'action', 'resource'] },
    ),
    { maxLength: 4 },
  )
  .map((routes) => stringify({ routes }));

const anyFolder = fc.record({
  'schema.cedarschema': fileText('schema.cedarschema'),
  'rbac.cedar': fileText('rbac.cedar'),
  'ownership.cedar': fileText('ownership.cedar'),
  'public.cedar': fileText('public.cedar'),
  'routes.yaml': fc.oneof({ weight: 4, arbitrary: fileText('routes.yaml') }, { weight: 2, arbitrary: structuredRoutes }),
  'entities.json': fc.oneof({ weight: 4, arbitrary: fileText('entities.json') }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) }),
  'extra.cedar': fc.option(fc.string({ maxLength: 120 }), { nil: undefined, freq: 2 }),
});

/** The example folder with one file changed (or removed), or with one extra file: often still a valid set. */
const oneChange = fc.oneof(
  fc.constantFrom(...Object.keys(example)).chain((name) => fileText(name).map((text) => ({ ...example, [name]: text }))),
  fc.tuple(fc.stringMatching(/^[a-z]{1,8}\.cedar$/), fc.string({ maxLength: 120 })).map(([name, text]) => ({ ...example, [name]: text })),
);

const folder = fc.oneof({ weight: 1, arbitrary: anyFolder }, { weight: 1, arbitrary: oneChange }) as fc.Arbitrary<Record<string, string | undefined>>;

function writeFolder(dir: string, files: Record<string, string | undefined>): void {
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
  for (const [name, text] of Object.entries(files)) if (text !== undefined) writeFileSync(join(dir, name), text);
}

describe('fuzzing the policy loader', () => {
  it('validates arbitrary folder contents into a set or coded problems, never another exception', () => {
    const dir = tempDir('pc-fuzz-validate');
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(folder, (files) => {
        writeFolder(dir, files);
        const report = validatePolicyFolder(dir);
        if (report.bundle) valid++;
        else {
          invalid++;
          expect(report.problems.length).toBeGreaterThan(0);
          for (const p of report.problems) expect(typeof p).toBe('string');
        }
      }),
      RUN,
    );
    expect(valid).toBeGreaterThan(0);
    expect(invalid).toBeGreaterThan(0);
  });

  it('reloads arbitrary contents over a good set: a success swaps it in, a failure keeps the last good set evaluating', () => {
    const dir = tempDir('pc-fuzz-reload');
    writeFolder(dir, example);
    const runtime = createPolicyRuntime({ dir, warmupChecks: 3, decisionCacheSize: 0, logger: createLogger('silent'), metrics: createMetrics() });
    expect(runtime.reload().ok).toBe(true);
    fc.assert(
      fc.property(folder, (files) => {
        const before = runtime.current()!;
        writeFolder(dir, files);
        const result = runtime.reload();
        const after = runtime.current()!;
        if (result.ok) {
          expect(after).not.toBe(before);
        } else {
          expect(typeof result.error).toBe('string');
          expect(after).toBe(before);
        }
        // Whatever is live still decides a request for each of its routes.
        for (const r of after.bundle.routes.routes.slice(0, 3)) {
          const decision = after.evaluate({ principal: { type: 'User', id: 'alice' }, action: r.action, resource: { type: r.resourceType, id: 'd1' }, context: { mfa: false }, entities: [] });
          expect(typeof decision.allow).toBe('boolean');
        }
      }),
      { ...RUN, numRuns: 40, interruptAfterTimeLimit: 6_000 },
    );
  });
});
