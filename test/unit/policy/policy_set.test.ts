import { describe, expect, it } from 'vitest';
import { isPortcullisError } from '../../../src/lib/errors.js';
import { checkPolicies, parsePolicyFile, type PolicyRecord } from '../../../src/policy/policy_set.js';

const SCHEMA = `entity User;
entity Document { owner: User };
action read appliesTo { principal: [User], resource: [Document], context: { mfa: Bool } };
`;

function loadError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isPortcullisError(err, 'ERR_POLICY_LOAD')) return err.message;
    throw err;
  }
  throw new Error('expected ERR_POLICY_LOAD');
}

/** Parses and checks the files; `schema: null` checks without a schema. */
const check = (files: Record<string, string>, schema: string | null = SCHEMA) => {
  const policies: PolicyRecord[] = Object.entries(files).flatMap(([file, text]) => parsePolicyFile(file, text));
  checkPolicies(policies, schema ?? undefined, new Map(Object.entries(files)));
  return policies;
};

describe('parsePolicyFile', () => {
  const text = `// header comment
@id("first")
permit (
  principal, // who
  action == Action::"read",
  resource
);

permit(principal, action, resource is Document)
when { context.mfa && resource.owner == principal };
`;

  it('takes ids from @id annotations and names unannotated policies <file>#<n>', () => {
    expect(parsePolicyFile('docs.cedar', text).map((p) => p.id)).toEqual(['first', 'docs.cedar#1']);
  });

  it('records file, line:col and the policy text', () => {
    const [first, second] = parsePolicyFile('docs.cedar', text);
    expect(first).toMatchObject({ file: 'docs.cedar', position: '2:1' });
    expect(first!.text).toContain('action == Action::"read"');
    expect(second).toMatchObject({ file: 'docs.cedar', position: '9:1' });
    expect(text.slice(second!.offset)).toMatch(/^permit\(principal, action, resource is Document\)/);
  });

  it('keeps the scope and the context attributes each policy reads', () => {
    const [first, second] = parsePolicyFile('docs.cedar', text);
    expect(first!.scope).toEqual({ effect: 'permit', principal: { op: 'All' }, action: { op: '==', entity: { type: 'Action', id: 'read' } }, resource: { op: 'All' } });
    expect(second!.scope.resource).toEqual({ op: 'is', entity_type: 'Document' });
    expect([...(first!.contextKeys as Set<string>)]).toEqual([]);
    expect([...(second!.contextKeys as Set<string>)]).toEqual(['mfa']);
  });

  it('numbers unannotated policies and places them by their order in the file, even past ten policies', () => {
    const many = Array.from({ length: 12 }, (_, i) => `permit(principal, action, resource is T${i});`).join('\n');
    const parsed = parsePolicyFile('many.cedar', many);
    expect(parsed.map((p) => [p.id, p.position, p.text])).toEqual(
      Array.from({ length: 12 }, (_, i) => [`many.cedar#${i}`, `${i + 1}:1`, `permit(principal, action, resource is T${i});`]),
    );
  });

  it('reads an empty file as no policies', () => {
    expect(parsePolicyFile('empty.cedar', '// nothing here\n')).toEqual([]);
  });

  it('reports a syntax error as file:line:col', () => {
    const msg = loadError(() => parsePolicyFile('broken.cedar', 'permit(principal, action, resource);\n\npermit(principal action, resource);\n'));
    expect(msg).toMatch(/^broken\.cedar:3:18 /);
    expect(msg).toContain('unexpected token `action`');
  });

  it('refuses policy templates', () => {
    expect(loadError(() => parsePolicyFile('t.cedar', 'permit(principal == ?principal, action, resource);'))).toContain('t.cedar: policy templates are not supported');
  });
});

describe('checkPolicies', () => {
  it('accepts unique ids and policies that validate against the schema', () => {
    expect(check({ 'a.cedar': '@id("ok") permit(principal, action == Action::"read", resource) when { context.mfa };' })).toHaveLength(1);
  });

  it('rejects duplicate ids naming both positions', () => {
    const msg = loadError(() => check({ 'one.cedar': '@id("same") permit(principal, action, resource);', 'two.cedar': '\n\n@id("same") forbid(principal, action, resource);' }, null));
    expect(msg).toBe('two.cedar:3:1 duplicate policy id "same" (first at one.cedar:1:1)');
  });

  it('rejects an @id that collides with a generated <file>#<n> id', () => {
    const msg = loadError(() => check({ 'a.cedar': 'permit(principal, action, resource);\n@id("a.cedar#0") permit(principal, action, resource);' }, null));
    expect(msg).toContain('duplicate policy id "a.cedar#0"');
  });

  it('reports strict-mode validation errors at the policy file and line', () => {
    const text = '// c\n@id("x")\npermit(principal, action == Action::"read", resource)\nwhen { resource.nope == 1 };\n';
    const msg = loadError(() => check({ 'ok.cedar': '@id("fine") permit(principal, action, resource);', 'bad.cedar': text }));
    expect(msg).toMatch(/^bad\.cedar:4:8 /);
    expect(msg).toContain('`nope`');
  });

  it('places validation errors of a later policy in a file correctly', () => {
    const text = '@id("a") permit(principal, action, resource);\n\n@id("b")\npermit(principal, action == Action::"read", resource)\nwhen { context.nope };\n';
    expect(loadError(() => check({ 'p.cedar': text }))).toMatch(/^p\.cedar:5:8 .*`nope`/);
  });

  it('places validation errors on the right line of a file holding more than ten policies', () => {
    const lines = Array.from({ length: 12 }, (_, i) => `@id("p${i}") permit(principal, action == Action::"read", resource);`);
    lines[2] = '@id("p2") permit(principal, action == Action::"read", resource) when { resource.nope == 1 };';
    const text = `${lines.join('\n')}\n`;
    expect(loadError(() => check({ 'big.cedar': text }))).toMatch(/^big\.cedar:3:72 .*`nope`/);
  });

  it('rejects an action the schema does not declare', () => {
    expect(loadError(() => check({ 'p.cedar': '\npermit(principal, action == Action::"fly", resource);' }))).toMatch(/^p\.cedar:2:\d+ .*fly/);
  });

  it('reports an unparsable schema against schema.cedarschema', () => {
    expect(loadError(() => check({ 'p.cedar': 'permit(principal, action, resource);' }, 'entity User'))).toMatch(/^schema\.cedarschema:1:\d+ /);
  });

  it('skips validation without a schema', () => {
    expect(check({ 'p.cedar': 'permit(principal, action == Action::"fly", resource) when { resource.whatever };' }, null)).toHaveLength(1);
  });
});
