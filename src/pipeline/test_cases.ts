import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { PortcullisError } from '../lib/errors.js';

/** Policy test files: `policies/tests/*.yaml`, each `{ cases: [...] }`. */
const uid = z.object({ type: z.string().min(1), id: z.string() }).strict();

const principalSchema = z.union([
  z.object({ anonymous: z.literal(true) }).strict(),
  z.object({ claims: z.record(z.string(), z.unknown()).refine((c) => typeof c.sub === 'string' && c.sub !== '', 'claims need a sub') }).strict(),
  z.object({ entity: z.object({ type: z.string().min(1), id: z.string(), attrs: z.record(z.string(), z.unknown()).default({}), parents: z.array(uid).default([]) }).strict() }).strict(),
]);

const caseSchema = z
  .object({
    name: z.string().min(1),
    principal: principalSchema,
    request: z
      .object({
        method: z.string().min(1),
        path: z.string(),
        host: z.string().default('api.example.com'),
        headers: z.record(z.string(), z.string()).default({}),
        source_ip: z.string().default('127.0.0.1'),
        context_extensions: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .optional(),
    cedar: z.object({ action: z.string().min(1), resource: uid, context: z.record(z.string(), z.unknown()).default({}) }).strict().optional(),
    expect: z
      .object({ decision: z.enum(['allow', 'deny']), reasons: z.array(z.string()).optional(), status: z.number().int().optional() })
      .strict(),
  })
  .strict()
  .refine((c) => Boolean(c.request) !== Boolean(c.cedar), { message: 'give exactly one of `request` (HTTP) or `cedar` (a direct Cedar request)' })
  .refine((c) => !('entity' in c.principal) || Boolean(c.cedar), { message: 'an explicit principal entity needs a `cedar` request (HTTP requests authenticate from token claims)' });

const fileSchema = z.object({ cases: z.array(caseSchema).min(1) }).strict();

export type PolicyTestCase = z.infer<typeof caseSchema> & { file: string };

/** Reads every `tests/*.yaml` of a policy folder; throws ERR_POLICY_LOAD naming the file and key path. */
export function loadPolicyTests(dir: string): PolicyTestCase[] {
  const testsDir = join(dir, 'tests');
  let files: string[];
  try {
    files = readdirSync(testsDir).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    return [];
  }
  return files.flatMap((name) => {
    const file = `tests/${name}`;
    const doc = parseDocument(readFileSync(join(testsDir, name), 'utf8'));
    if (doc.errors.length) {
      const e = doc.errors[0]!;
      throw new PortcullisError('ERR_POLICY_LOAD', `${file}:${e.linePos?.[0]?.line ?? 1}:${e.linePos?.[0]?.col ?? 1} ${e.message.split('\n')[0]}`);
    }
    const parsed = fileSchema.safeParse(doc.toJS());
    if (!parsed.success) {
      throw new PortcullisError('ERR_POLICY_LOAD', parsed.error.issues.map((i) => `${file}: ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n'));
    }
    return parsed.data.cases.map((c) => ({ ...c, file }));
  });
}
